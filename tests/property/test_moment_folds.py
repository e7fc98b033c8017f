"""Folding a view at many moments in one read gives, at each moment, the view folded at that moment alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from hypothesis import given
from hypothesis import strategies as st

from crmcore.projections.asof import fold_at_moments, records_effective_by
from crmcore.projections.base import RecordView, Row, fold_records
from crmcore.projections.records import StoredRecord

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Trail(RecordView):
    """Per key, the values set so far, in order; a drop deletes the row."""

    name: ClassVar[str] = "trail"
    event_classes: ClassVar[tuple[type[Any], ...]] = ()

    @classmethod
    def topics(cls) -> list[str]:
        return ["t:set", "t:drop"]

    def evolve_record(self, row: Row | None, record: StoredRecord) -> Row | None:
        if record.topic == "t:drop":
            return None
        if row is None:
            return {"values": [record.data["v"]], "at": record.data["effective_at"]}
        row["values"] = [*row["values"], record.data["v"]]  # the row is the fold's own: change it in place
        row["at"] = record.data["effective_at"]
        return row


def _at(minutes: int, seconds: int) -> str:
    return (T0 + timedelta(minutes=minutes, seconds=seconds)).isoformat()


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[StoredRecord], bool]:
    """Records of a few keys; with ``in_order``, each key's effective and recorded times never go back."""
    in_order = draw(st.booleans())
    count = draw(st.integers(0, 40))
    latest: dict[str, tuple[int, int]] = {}
    records = []
    for position in range(1, count + 1):
        key = draw(st.sampled_from(["a", "b", "c"]))
        effective, recorded = draw(st.integers(0, 100)), draw(st.integers(0, 100))
        if in_order:
            last = latest.get(key, (0, 0))
            effective, recorded = max(effective, last[0]), max(recorded, last[1])
            latest[key] = (effective, recorded)
        topic = draw(st.sampled_from(["t:set", "t:set", "t:set", "t:drop", "t:other"]))
        data = {"effective_at": _at(effective, draw(st.sampled_from([0, 0, 30]))),
                "timestamp": _at(recorded, 0), "v": position}
        records.append(StoredRecord(position, key, position, topic, data))
    return records, in_order


@given(
    history=histories(),
    minutes=st.lists(st.integers(-5, 110), unique=True, min_size=1, max_size=8),
    page_size=st.integers(1, 7),
    as_known=st.booleans(),
)
def test_every_moment_equals_a_fold_at_that_moment_alone(
    history: tuple[list[StoredRecord], bool], minutes: list[int], page_size: int, as_known: bool,
) -> None:
    records, _ = history
    moments = [T0 + timedelta(minutes=m) for m in sorted(minutes)]
    view = Trail()

    def pages() -> list[list[StoredRecord]]:
        return [records[i:i + page_size] for i in range(0, len(records), page_size)]

    folded = fold_at_moments(view, pages, moments, as_known=as_known)
    for moment, rows in zip(moments, folded, strict=True):
        accept = records_effective_by(moment, moment if as_known else None, strictly=True)
        assert rows == fold_records(view, records, accept=accept), moment
