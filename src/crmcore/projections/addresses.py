"""``address_reports``: per address, every report the bounce policy reads and every decision recorded on it.

One row per address, keyed by its matching key (a lower-cased e-mail address, an E.164 phone number), so
that the reports about an address and the decisions about it land in the same row. It folds:

- the party's delivery ledger (``Party.DeliveryRecorded``: delivered, soft and hard bounces with their raw
  codes), each report named ``party:<party id>:<version>``;
- the engagement reports of campaigns that say something about the address (delivered, opened, clicked,
  soft and hard bounces, complaints), each named by its external id;
- the decisions (``AddressStatus.Suppressed`` / ``Reinstated``).

Rows are compact and JSON-native: ``reports`` as ``[effective time (UTC text), log position, outcome, raw
code, evidence]`` in reading order (effective time, then position); ``decisions`` in recording order;
``suppressed`` the decision in force after all of them (effective-time order, ties in recording order).

``address_decisions`` (:class:`AddressDecisionsView`) keeps only the decisions, one small row per decided
address (keyed by its ``AddressStatus`` id, :func:`~crmcore.aggregates.engagement.address_status_id`): what
the party facts join to say whether a primary address is suppressed, now or - folded from the decision
events alone, a cheap read - as of any past moment.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from eventsourcing.utils import get_topic

from crmcore.aggregates.engagement import EVENT_OF_KIND, AddressStatus
from crmcore.aggregates.party import Party
from crmcore.policies.suppression import BOUNCE_KINDS, address_key_of, in_force, recorded_of_row
from crmcore.projections.asof import utc_text
from crmcore.projections.base import RecordView, Row
from crmcore.projections.records import StoredRecord

__all__ = [
    "REPORT_EVENTS", "AddressDecisionsView", "AddressReportsView", "add_decision", "decision_in_force",
    "report_of_record", "suppressed_by_key",
]

#: The engagement events the view reads (what proves a delivery, bounces, complaints).
REPORT_EVENTS: tuple[type[Any], ...] = tuple(EVENT_OF_KIND[k] for k in sorted(BOUNCE_KINDS))
_KIND_OF_TOPIC = {get_topic(EVENT_OF_KIND[k]): k.value for k in BOUNCE_KINDS}
_DELIVERY_TOPIC = get_topic(Party.DeliveryRecorded)
_TRACKED = get_topic(AddressStatus.Tracked)
_DECISIONS = {get_topic(AddressStatus.Suppressed): True, get_topic(AddressStatus.Reinstated): False}


def _plain(value: Any) -> Any:
    """A value as the record decoder gives it, whether the record was decoded or only parsed (skimmed)."""
    return value["_data_"] if type(value) is dict else value


def report_of_record(record: StoredRecord) -> tuple[str, str, list[Any]] | None:
    """``(address key, address, report)`` for a report record the view reads, else None."""
    topic, data = record.topic, record.data
    if topic == _DELIVERY_TOPIC:
        evidence = f"party:{record.originator_id}:{record.version}"
        return data["address_key"], data["address"], [
            utc_text(data["effective_at"]), record.position, data["outcome"], data.get("raw_code"), evidence]
    kind = _KIND_OF_TOPIC.get(topic)
    address = data.get("address") if kind is not None else None
    if kind is None or not address:
        return None
    at = utc_text(_plain(data["effective_at"]))
    return address_key_of(address), address, [at, record.position, kind, data.get("raw_code"),
                                              data["external_id"]]


class AddressReportsView(RecordView):
    """Per address: the reports the bounce policy reads and the decisions recorded (module docstring)."""

    name: ClassVar[str] = "address_reports"
    version: ClassVar[int] = 1
    event_classes: ClassVar[tuple[type[Any], ...]] = (
        Party.DeliveryRecorded, *REPORT_EVENTS, AddressStatus.Tracked, AddressStatus.Suppressed,
        AddressStatus.Reinstated,
    )
    #: Campaign reports are only parsed: the view reads their plain fields and the effective time.
    skimmed_topics: ClassVar[frozenset[str]] = frozenset(_KIND_OF_TOPIC)

    def __init__(self) -> None:
        #: the last record read by :meth:`record_key` and its report, which :meth:`evolve_record` reuses
        self._last: tuple[StoredRecord | None, tuple[str, str, list[Any]] | None] = (None, None)

    def record_key(self, record: StoredRecord) -> str:
        if record.topic in _DECISIONS or record.topic == _TRACKED:
            return str(record.data["address_key"])
        found = report_of_record(record)
        self._last = (record, found)
        return found[0] if found is not None else record.originator_id

    def _report(self, record: StoredRecord) -> tuple[str, str, list[Any]] | None:
        last, found = self._last
        if last is not record:
            return report_of_record(record)
        self._last = (None, None)
        return found

    def evolve_record(self, row: Row | None, record: StoredRecord) -> Row | None:
        data = record.data
        if record.topic == _TRACKED:
            row = row or _empty(data["address_key"], data["address"])
            row["address"] = row["address"] or data["address"]
            return row
        suppress = _DECISIONS.get(record.topic)
        if suppress is not None:
            row = row or _empty(data["address_key"], None)
            decision = {
                "suppressed": suppress, "effective_at": utc_text(data["effective_at"]),
                "recorded_at": utc_text(data["timestamp"]), "position": record.position, "rule": data["rule"],
                "reason": data["reason"], "policy": data["policy"], "evidence": list(data["evidence"]),
                "actor": data["actor"],
            }
            row["decisions"] = [*row["decisions"], decision]
            index = in_force(recorded_of_row(row))
            row["suppressed"] = index is not None and row["decisions"][index]["suppressed"]
            row["decided"] = True
            return row
        found = self._report(record)
        if found is None:
            return row
        key, address, report = found
        row = row or _empty(key, address)
        row["address_key"] = row["address_key"] or key
        row["address"] = row["address"] or address
        reports = list(row["reports"])
        if not reports or reports[-1][:2] <= report[:2]:
            reports.append(report)
        else:
            insort(reports, report, key=lambda r: (r[0], r[1]))
        row["reports"] = reports
        return row


def _empty(address_key: str | None, address: str | None) -> Row:
    return {"address_key": address_key, "address": address, "reports": [], "decisions": [],
            "suppressed": False, "decided": False}


# ---------------------------------------------------------------------------------------------- decisions


def add_decision(decisions: Sequence[list[Any]], record: StoredRecord) -> list[list[Any]]:
    """``decisions`` (``[effective time (UTC text), log position, suppressed?]`` in effective-time, then
    recording order) with the decision of ``record`` (an ``AddressStatus.Suppressed`` or ``Reinstated``)
    in its place, as a new list."""
    entry = [utc_text(record.data["effective_at"]), record.position, _DECISIONS[record.topic]]
    result = list(decisions)
    if not result or result[-1][:2] <= entry[:2]:
        result.append(entry)
    else:
        insort(result, entry, key=lambda d: (d[0], d[1]))
    return result


def decision_in_force(decisions: Sequence[Sequence[Any]]) -> bool | None:
    """Whether the decision in force after all of ``decisions`` (as :func:`add_decision` keeps them: the
    last effective, of those effective at the same moment the last recorded) suppresses the address; None
    when there is none."""
    return bool(decisions[-1][2]) if decisions else None


def suppressed_by_key(rows: Iterable[Row]) -> dict[str, bool]:
    """Of ``address_decisions`` rows: each address key with whether its decision in force suppresses it."""
    return {row["address_key"]: bool(row["suppressed"]) for row in rows}


class AddressDecisionsView(RecordView):
    """Per decided address: its suppression decisions, compact (``decisions`` as :func:`add_decision` keeps
    them) and whether the one in force suppresses it (``suppressed``). Keyed by the address's
    ``AddressStatus`` id; folded as of a moment, it holds the decisions effective (and known) by then."""

    name: ClassVar[str] = "address_decisions"
    version: ClassVar[int] = 1
    event_classes: ClassVar[tuple[type[Any], ...]] = (AddressStatus.Suppressed, AddressStatus.Reinstated)

    def evolve_record(self, row: Row | None, record: StoredRecord) -> Row | None:
        decisions = add_decision(row["decisions"] if row is not None else (), record)
        return {"address_key": str(record.data["address_key"]), "decisions": decisions,
                "suppressed": bool(decision_in_force(decisions))}
