"""What the benchmarks share: the event store's own decode-and-replay, measured as the baseline."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from crmcore import CRM


def replay_baseline(crm: CRM, topics: Sequence[str]) -> tuple[int, float]:
    """The event store's own decode-and-replay of ``topics``' events: ``select_notifications`` pages of
    2,000 and ``mapper.to_domain_event`` on each, building the events and nothing else. Returns the number
    of events and the seconds taken."""
    app = crm._app
    recorder, mapper = app.recorder, app.mapper
    started = time.perf_counter()
    position, count = 0, 0
    while True:
        page = recorder.select_notifications(start=position, limit=2000, topics=list(topics),
                                             inclusive_of_start=False)
        if not page:
            break
        for notification in page:
            mapper.to_domain_event(notification)
        count += len(page)
        position = page[-1].id
    return count, time.perf_counter() - started


def timed(action: Callable[[], Any]) -> float:
    """Seconds ``action()`` took."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started
