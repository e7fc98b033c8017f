"""Folding a record view on several processes, each over its share of the aggregates.

A view whose rows are keyed by the aggregate id (a :class:`RecordView` that keeps the default
``record_key``) can be folded share by share: the events of one aggregate only ever change that
aggregate's row, so folding the aggregates whose ids end in one set of characters, then another, and
putting the rows together gives exactly the fold of the whole log. A view whose rows gather several
aggregates' events can too when its fold is commutative and it says how to combine two rows of one key
(:meth:`RecordView.combine`): the rows of a key folded in different shares are then combined.
:class:`SharedReplay` runs the shares at once: this process folds the first while ``workers - 1`` freshly
started processes (``spawn``: no state is inherited) each open the same store and fold one more. Every
share reads the log up to the same position, so the result stands at one position. Only SQLite and
PostgreSQL stores can be shared; decoding is the cost that grows with the log, and it is what the
processes split.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from crmcore.projections.asof import fold_at_moments, records_effective_by
from crmcore.projections.base import RecordView, Row, apply_records
from crmcore.projections.records import RecordReader

if TYPE_CHECKING:
    from crmcore.stores import StoreSettings

__all__ = ["SHARE_FROM", "FoldTask", "SharedReplay", "can_share"]


def can_share(view: object) -> bool:
    """Whether ``view`` can be folded share by share: a record view keyed by the aggregate id, or one whose
    rows of a key folded in different shares can be combined (:meth:`RecordView.combine`)."""
    return isinstance(view, RecordView) and (
        type(view).record_key is RecordView.record_key or view.combines())


@dataclass(frozen=True)
class FoldTask:
    """What each share computes: the rows now (``at`` None), as of ``at`` (and ``known_at``), or at each of
    ``moments`` (strictly before each; ``as_known``: recorded before it too)."""

    at: datetime | None = None
    known_at: datetime | None = None
    moments: Sequence[datetime] = field(default_factory=tuple)
    as_known: bool = False

    def run(self, reader: RecordReader, view: RecordView, share: tuple[int, int], stop: int) -> Any:
        """This task over one share of the log up to ``stop``: ``(events read, rows)`` or a list of rows."""
        topics = view.topics()
        if self.moments:
            return fold_at_moments(view, lambda: reader.pages(topics, stop=stop, share=share), self.moments,
                                   as_known=self.as_known)
        accept = None if self.at is None else records_effective_by(self.at, self.known_at)
        rows: dict[str, Row] = {}
        count = 0
        for page in reader.pages(topics, stop=stop, share=share):
            apply_records(view, page, rows, set(), accept=accept)
            count += len(page)
        return count, rows


#: Below this many stored events, starting processes (about a second each) costs more than it saves.
SHARE_FROM = 100_000


class SharedReplay:
    """Runs a :class:`FoldTask` over ``workers`` shares of a store's log at once (this process does one),
    once the log holds ``share_from`` events or more."""

    def __init__(self, settings: StoreSettings, workers: int, *, share_from: int = SHARE_FROM) -> None:
        self.settings = settings
        self.workers = workers
        self.share_from = share_from

    def run(self, reader: RecordReader, view: RecordView, task: FoldTask, stop: int) -> list[Any]:
        """Each share's result, the first from this process."""
        shares = self.workers
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(shares - 1, mp_context=context) as pool:
            others = [pool.submit(_fold_share, self.settings, view, task, (i, shares), stop)
                      for i in range(1, shares)]
            mine = task.run(reader, view, (0, shares), stop)
            return [mine, *(other.result() for other in others)]


def _fold_share(
    settings: StoreSettings, view: RecordView, task: FoldTask, share: tuple[int, int], stop: int,
) -> Any:
    """In a worker process: open the store and fold one share."""
    from crmcore.application import _Ledger
    from crmcore.projections.runner import paused_gc

    ledger = _Ledger(settings)
    try:
        with paused_gc():
            return task.run(RecordReader(ledger.recorder, ledger.mapper), view, share, stop)
    finally:
        ledger.close()
