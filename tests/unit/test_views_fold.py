"""The ``parties`` view is a pure fold: no database, same input same output, inputs untouched, and
folding a stream in two halves (incremental) gives what folding it at once (from scratch) gives."""

from __future__ import annotations

import copy
import dataclasses
from itertools import pairwise
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from crmcore.aggregates.party import Party
from crmcore.projections import PartiesView, Row, fold
from crmcore.testing.strategies import party_event_histories

histories = party_event_histories(max_parties=4, max_events=25)

#: Histories are costly to draw; half the default budget keeps this module quick.
FOLD = settings(max_examples=50)


def _snapshot(events: list[Any]) -> list[dict[str, Any]]:
    return [copy.deepcopy(dataclasses.asdict(e)) for e in events]


@FOLD
@given(events=histories)
def test_folding_the_same_events_twice_gives_the_same_rows(events: list[Any]) -> None:
    assert fold(PartiesView(), events) == fold(PartiesView(), events)


@FOLD
@given(events=histories, split=st.integers(0, 100))
def test_folding_does_not_change_the_events_or_the_rows_it_starts_from(events: list[Any], split: int) -> None:
    cut = min(split, len(events))
    start = fold(PartiesView(), events[:cut])
    start_before = copy.deepcopy(start)
    events_before = _snapshot(events)
    fold(PartiesView(), events[cut:], start)
    assert start == start_before
    assert _snapshot(events) == events_before


@FOLD
@given(events=histories, split=st.integers(0, 100))
def test_folding_in_two_halves_equals_folding_from_scratch(events: list[Any], split: int) -> None:
    cut = min(split, len(events))
    view = PartiesView()
    assert fold(view, events[cut:], fold(view, events[:cut])) == fold(view, events)


@FOLD
@given(events=histories, cuts=st.lists(st.integers(0, 100), max_size=4))
def test_folding_page_by_page_equals_folding_from_scratch(events: list[Any], cuts: list[int]) -> None:
    view = PartiesView()
    bounds = sorted({0, len(events), *(min(c, len(events)) for c in cuts)})
    rows: dict[str, Row] = {}
    for lo, hi in pairwise(bounds):
        rows = fold(view, events[lo:hi], rows)
    assert rows == fold(view, events)


@FOLD
@given(events=histories)
def test_evolving_a_row_is_pure(events: list[Any]) -> None:
    view = PartiesView()
    rows: dict[str, Row] = {}
    for event in events:
        if not isinstance(event, view.event_classes):
            continue
        key = view.key(event)
        row = rows.get(key)
        row_before = copy.deepcopy(row)
        first, second = view.evolve(row, event), view.evolve(row, event)
        assert first == second
        assert row == row_before
        if first is None:
            rows.pop(key, None)
        else:
            rows[key] = first


@FOLD
@given(events=histories)
def test_events_the_view_does_not_read_leave_it_unchanged(events: list[Any]) -> None:
    read = [e for e in events if isinstance(e, PartiesView.event_classes)]
    assert fold(PartiesView(), events) == fold(PartiesView(), read)


@FOLD
@given(events=histories)
def test_only_registered_parties_have_rows(events: list[Any]) -> None:
    registered = {str(e.originator_id) for e in events if isinstance(e, Party.Registered)}
    assert set(fold(PartiesView(), events)) == registered
