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
"""

from __future__ import annotations

from bisect import insort
from typing import Any, ClassVar

from eventsourcing.utils import get_topic

from crmcore.aggregates.engagement import EVENT_OF_KIND, AddressStatus
from crmcore.aggregates.party import Party
from crmcore.policies.suppression import BOUNCE_KINDS, address_key_of, in_force, recorded_of_row
from crmcore.projections.asof import utc_text
from crmcore.projections.base import RecordView, Row
from crmcore.projections.records import StoredRecord

__all__ = ["REPORT_EVENTS", "AddressReportsView", "report_of_record"]

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
