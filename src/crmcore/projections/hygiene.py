"""What the hygiene report reads, gathered in bulk from the views: now, as of one moment, or at many.

:class:`HygieneReader` gives :class:`~crmcore.hygiene.HygieneInputs` — every standing party's facts (the
``party_facts`` rows joined with the ``pipeline`` rows), the engagement of each surviving party
(``party_engagement``, merged parties' combined), the ``address_reports`` rows of their addresses and the
required fields — from the stored rows caught up now, from the views folded in one read of the log as of a
moment (``at``, ``known_at``), or from each view folded once at many moments (``ViewRunner.fold_at``: the
quarterly trend). It never loads an aggregate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime

from crmcore.hygiene import HygieneInputs
from crmcore.policies.suppression import address_key_of
from crmcore.projections.addresses import AddressDecisionsView, AddressReportsView, suppressed_by_key
from crmcore.projections.base import Row
from crmcore.projections.campaigns import PartyEngagementView, engagement_by_survivor
from crmcore.projections.facts import PartyFactsView, facts_of
from crmcore.projections.pipeline import PipelineView
from crmcore.projections.runner import ViewRunner
from crmcore.projections.storage import ViewStorage
from crmcore.segments import Facts
from crmcore.values import utc_now

__all__ = ["VIEWS", "HygieneReader", "RequiredAt"]

#: The views a report reads.
VIEWS = (PartyFactsView.name, PipelineView.name, PartyEngagementView.name, AddressReportsView.name,
         AddressDecisionsView.name)

#: The required fields (name -> section) of the catalog as it stood at a moment (None: now), as known at
#: another (None: everything recorded); ``strictly``: from what was effective strictly before the moment.
RequiredAt = Callable[[datetime | None, datetime | None, bool], Mapping[str, str]]


class HygieneReader:
    """Gathers a report's inputs from the views of ``runner`` (stored in ``storage``)."""

    def __init__(self, runner: ViewRunner, storage: ViewStorage, required_at: RequiredAt) -> None:
        self.runner, self.storage, self.required_at = runner, storage, required_at

    def inputs(self, at: datetime | None, known_at: datetime | None) -> HygieneInputs:
        """The inputs now (``at`` None: the stored rows, caught up, read as at the moment after that) or as
        of ``at`` as known at ``known_at`` (the four views folded in one read of the log)."""
        if at is None:
            for name in VIEWS:
                self.runner.catch_up(name)
            now = utc_now()
            rows = {r["party_id"]: r for r in self.storage.rows(PartyFactsView.name, {})}
            pipeline = self.storage.rows(PipelineView.name, {})
            facts = facts_of(rows.values(), pipeline,
                             suppressed_by_key(self.storage.rows(AddressDecisionsView.name, {})))
            engagement = engagement_by_survivor(self.storage.rows(PartyEngagementView.name, {}),
                                                self._engagement_view())
            addresses = self.storage.load(AddressReportsView.name, _address_keys(facts.values()))
            return HygieneInputs(now, facts, engagement, addresses, self.required_at(None, None, False),
                                 rows=rows, pipeline=pipeline)
        folds = self.runner.fold_together_as_of(VIEWS, at, known_at)
        return self._of(at, folds[PartyFactsView.name], folds[PipelineView.name],
                        folds[PartyEngagementView.name], folds[AddressReportsView.name],
                        folds[AddressDecisionsView.name], self.required_at(at, known_at, False))

    def inputs_at(self, moments: Sequence[datetime]) -> list[HygieneInputs]:
        """The inputs just before each of ``moments`` (strictly ascending): each view folded once, at all of
        them (what was effective strictly before each moment; the moment is the one flags are read at)."""
        folds = {name: self.runner.fold_at(name, moments) for name in VIEWS}
        return [
            self._of(moment, folds[PartyFactsView.name][i], folds[PipelineView.name][i],
                     folds[PartyEngagementView.name][i], folds[AddressReportsView.name][i],
                     folds[AddressDecisionsView.name][i], self.required_at(moment, None, True))
            for i, moment in enumerate(moments)
        ]

    def engagement(self, at: datetime | None, known_at: datetime | None) -> dict[str, Row]:
        """Every surviving party's engagement now (``at`` None) or as of ``at`` (and ``known_at``)."""
        if at is None:
            self.runner.catch_up(PartyEngagementView.name)
            rows: Iterable[Row] = self.storage.rows(PartyEngagementView.name, {})
        else:
            rows = self.runner.fold_as_of(PartyEngagementView.name, at, known_at).values()
        return engagement_by_survivor(rows, self._engagement_view())

    def addresses(
        self, facts: Mapping[str, Facts], at: datetime | None, known_at: datetime | None,
    ) -> dict[str, Row]:
        """The ``address_reports`` rows of the addresses of ``facts`` now, or all as of ``at`` (and
        ``known_at``)."""
        if at is None:
            self.runner.catch_up(AddressReportsView.name)
            return self.storage.load(AddressReportsView.name, _address_keys(facts.values()))
        return self.runner.fold_as_of(AddressReportsView.name, at, known_at)

    def _of(
        self, at: datetime, facts_rows: Mapping[str, Row], pipeline_rows: Mapping[str, Row],
        engagement_rows: Mapping[str, Row], address_rows: Mapping[str, Row],
        decision_rows: Mapping[str, Row], required: Mapping[str, str],
    ) -> HygieneInputs:
        suppressed = suppressed_by_key(decision_rows.values())
        facts = facts_of(facts_rows.values(), pipeline_rows.values(), suppressed)
        engagement = engagement_by_survivor(engagement_rows.values(), self._engagement_view())
        return HygieneInputs(at, facts, engagement, address_rows, required, rows=facts_rows,
                             pipeline=pipeline_rows.values())

    def _engagement_view(self) -> PartyEngagementView:
        view = self.runner.view(PartyEngagementView.name)
        assert isinstance(view, PartyEngagementView)
        return view


def _address_keys(facts: Iterable[Facts]) -> set[str]:
    keys: set[str] = set()
    for row in facts:
        for address in [*(row.get("emails") or ()), *(row.get("phones") or ())]:
            keys.add(address_key_of(address))
    return keys
