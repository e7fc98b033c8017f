"""Segments: their definitions (the ``segments`` view), the evaluation of criteria over party facts, and the
``segment_members`` projection that keeps every segment's members and their entries and exits.

**Definitions.** :class:`SegmentsView` folds the segment events into one row per segment (name, canonical
criteria, retired or not); folded as of a moment it gives the definitions in force then.

**Evaluation.** :func:`memberships_of` evaluates segments over a set of party facts at one moment, in an
order where a segment another one refers to (``{"segment": id}``) comes first.

**Membership.** :class:`SegmentMembership` reads party, opportunity, suppression-decision and segment
events in log order and keeps, in the view storage under one name (so a batch commits atomically with its
position):

- ``f:<party>`` the party's facts (the ``party_facts`` row, its opportunities, the parties merged into it,
  and ``deliverable`` joined from the decisions, :func:`~crmcore.projections.facts.deliverable_of`),
- ``o:<opportunity>`` the party an opportunity belongs to,
- ``a:<address status id>`` an address (by its ``AddressStatus`` id): its key, the parties whose primary
  e-mail address or phone number it is, and the decisions recorded about it (as
  :func:`~crmcore.projections.addresses.add_decision` keeps them),
- ``d:<segment>`` the segment's definition,
- ``m:<segment>:<party>`` a member, since when and through which event,
- ``c:<segment>:<position>:<party>`` a change of membership: ``entered`` or ``left``, its effective time
  and the event that caused it.

After each party or opportunity event the segments are evaluated again for that party (its survivor, for an
event on a party merged away); after a decision that changes whether an address is suppressed, the
segments reading ``deliverable`` are evaluated again for the parties whose primary address it is; after a
segment event, that segment and those referring to it are evaluated again for every party. Criteria are
evaluated at the effective time of the event that changed the facts (a decision's, for a decision).
Time-relative criteria (``last_interaction``) also change with the mere passage of time, which is no event:
the stored members of such a segment are those of the last event, and reads evaluate it afresh (see
``CRM.segment_members``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any, ClassVar, cast

from eventsourcing.utils import get_topic

from crmcore.aggregates.engagement import AddressStatus, address_status_id
from crmcore.aggregates.opportunity import Opportunity
from crmcore.aggregates.party import Party
from crmcore.aggregates.segment import SEGMENT_EVENTS, Segment
from crmcore.policies.suppression import address_key_of
from crmcore.projections.addresses import add_decision, decision_in_force
from crmcore.projections.base import RecordView, Row
from crmcore.projections.facts import (
    PartyFactsView,
    deliverable_of,
    opportunity_facts,
    primary_address_keys,
    survivor_of,
)
from crmcore.projections.records import RecordReader, StoredRecord
from crmcore.projections.runner import paused_gc
from crmcore.projections.storage import PositionMoved, ViewStorage
from crmcore.segments import (
    Context,
    Criterion,
    Facts,
    HygieneFlags,
    is_time_relative,
    parse_criteria,
    referenced_segments,
)

__all__ = [
    "SegmentMembership", "SegmentsView", "evaluation_order", "memberships_of", "referred_closure",
    "time_relative_segments",
]


class SegmentsView(RecordView):
    """Every segment: name, description, canonical criteria, whether retired, and when it was defined and
    last changed (effective times)."""

    name: ClassVar[str] = "segments"
    version: ClassVar[int] = 1
    event_classes: ClassVar[tuple[type[Any], ...]] = SEGMENT_EVENTS

    def __init__(self) -> None:
        self._defined = get_topic(Segment.Defined)
        self._changed, self._renamed = get_topic(Segment.CriteriaChanged), get_topic(Segment.Renamed)

    def evolve_record(self, row: Row | None, record: StoredRecord) -> Row | None:
        data = record.data
        at = data["effective_at"]
        if record.topic == self._defined:
            return {
                "segment_id": record.originator_id, "name": data["name"], "description": data["description"],
                "criteria": data["criteria"], "retired": False, "retired_reason": None, "defined_at": at,
                "changed_at": at, "version": record.version,
            }
        if row is None:
            return None
        if record.topic == self._changed:
            row["criteria"] = data["criteria"]
        elif record.topic == self._renamed:
            row["name"], row["description"] = data["name"], data["description"]
        else:
            row["retired"], row["retired_reason"] = True, data["reason"]
        row["changed_at"], row["version"] = at, record.version
        return row


def evaluation_order(criteria: Mapping[str, Criterion]) -> list[str]:
    """Segment ids ordered so that a segment comes after every segment its criteria refer to (references to
    unknown segments are ignored; definitions are checked for cycles when saved)."""
    order: list[str] = []
    placed: set[str] = set()

    def place(segment: str, path: frozenset[str]) -> None:
        if segment in placed or segment in path:
            return
        for other in sorted(referenced_segments(criteria[segment])):
            if other in criteria:
                place(other, path | {segment})
        placed.add(segment)
        order.append(segment)

    for segment in sorted(criteria):
        place(segment, frozenset())
    return order


def memberships_of(
    criteria: Mapping[str, Criterion], facts: Mapping[str, Facts], now: datetime,
    wanted: Iterable[str] | None = None, *, hygiene: HygieneFlags | None = None,
) -> dict[str, set[str]]:
    """The members of each segment (of ``wanted`` and the segments they refer to; default all) among the
    parties whose ``facts`` are given, at ``now`` (``hygiene``: what hygiene flags read)."""
    needed = set(criteria if wanted is None else referred_closure(criteria, wanted))
    members: dict[str, set[str]] = {}
    context = Context(now=now, in_segment=lambda segment, party: party in members.get(segment.lower(), ()),
                      hygiene=hygiene)
    for segment in evaluation_order({s: c for s, c in criteria.items() if s in needed}):
        node = criteria[segment]
        members[segment] = {party for party, row in facts.items() if node.evaluate(row, context)}
    return members


def referred_closure(criteria: Mapping[str, Criterion], wanted: Iterable[str]) -> set[str]:
    """The segments of ``wanted`` (among ``criteria``) and every segment they refer to, directly or not."""
    found: set[str] = set()
    stack = [s.lower() for s in wanted]
    while stack:
        segment = stack.pop()
        if segment in found or segment not in criteria:
            continue
        found.add(segment)
        stack.extend(referenced_segments(criteria[segment]))
    return found


# ---------------------------------------------------------------------------------------------- membership

_O = Opportunity
_OPPORTUNITY_EVENTS = (_O.Opened, _O.ValueReestimated, _O.Won, _O.Lost, _O.Reopened)
#: The facts an opportunity event may change.
_OPPORTUNITY_FACTS = frozenset({"open_opportunities", "won_value", "wins", "last_won_at"})
#: The facts a suppression decision may change.
_DECISION_FACTS = frozenset({"deliverable"})
_DECISION_EVENTS = (AddressStatus.Suppressed, AddressStatus.Reinstated)
#: The fields of party event data that may name addresses (registration, identity changes, merges, unmerges).
_ADDRESS_SECTIONS = ("identity", "changes", "values")


class SegmentMembership:
    """Keeps every segment's members and the changes of membership up to date (see the module docstring).

    ``catch_up`` reads the events recorded since the last call in pages, loads the stored rows they touch,
    applies them in order and commits the changed rows with the new position in batches of about
    ``row_batch`` rows; another process committing first only means reading again from its position.
    """

    name: ClassVar[str] = "segment_members"
    #: 2: the party facts' deliverability under bounce policy version 2; 3: deliverability reads the
    #: recorded suppression decisions too (``a:`` rows); 4: party facts with stages
    version: ClassVar[int] = 4

    def __init__(self, reader: RecordReader, storage: ViewStorage, *, row_batch: int = 300_000) -> None:
        self.reader, self.storage, self.row_batch = reader, storage, row_batch
        self._facts = PartyFactsView()
        self._party_topics = frozenset(PartyFactsView.topics())
        self._merged, self._unmerged = get_topic(Party.Merged), get_topic(Party.Unmerged)
        #: Party events after which every segment is evaluated (the facts are rebuilt, or the party's
        #: opportunities change hands).
        self._rebuilding = frozenset({self._merged, self._unmerged, get_topic(Party.MergedInto)})
        self._opened = get_topic(_O.Opened)
        self._opportunity = {get_topic(c): c.__name__ for c in _OPPORTUNITY_EVENTS}
        self._segment_topics = frozenset(get_topic(c) for c in SEGMENT_EVENTS)
        self._defined, self._retired = get_topic(Segment.Defined), get_topic(Segment.Retired)
        self._criteria_changed = get_topic(Segment.CriteriaChanged)
        self._decision_topics = frozenset(get_topic(c) for c in _DECISION_EVENTS)
        self.topics = sorted(self._party_topics | set(self._opportunity) | self._segment_topics
                             | self._decision_topics)

    # ------------------------------------------------------------------ running

    def catch_up(self) -> int:
        """Apply every new event. Returns how many were applied."""
        applied = 0
        with paused_gc():
            while True:
                start = self.storage.position(self.name, self.version)
                batch = _Batch(self, start)
                end = start
                more = False
                for page in self.reader.pages(self.topics, after=start):
                    batch.prefetch(page)
                    for record in page:
                        batch.apply(record)
                    end, more = page[-1].position, True
                    if len(batch.changed) >= self.row_batch:
                        break
                else:
                    more = False
                if batch.count == 0:
                    return applied
                try:
                    self.storage.commit_page(self.name, start, end, batch.changes())
                except PositionMoved:
                    continue
                applied += batch.count
                if not more:
                    return applied

    def rebuild(self) -> int:
        """Forget everything and apply every event again from the first."""
        self.storage.reset(self.name, self.version)
        return self.catch_up()

    # ------------------------------------------------------------------ reading

    def members(self, segment_id: str) -> dict[str, Row]:
        """The stored member rows of a segment, by party id."""
        prefix = f"m:{segment_id}:"
        return {k[len(prefix):]: r for k, r in self.storage.with_prefix(self.name, prefix).items()}

    def changes(self, segment_id: str) -> list[Row]:
        """The stored changes of a segment's membership, in log order."""
        return list(self.storage.with_prefix(self.name, f"c:{segment_id}:").values())

    def primary_holders(self, address_keys: Iterable[str]) -> dict[str, Row]:
        """The stored facts rows (by party id) of the parties not merged away whose primary e-mail address or
        phone number has one of ``address_keys``: two batch reads, whatever the number of keys."""
        keys = set(address_keys)
        index = self.storage.load(self.name, {f"a:{address_status_id(k)}" for k in keys})
        parties = {p for row in index.values() for p in row["parties"]}
        rows = self.storage.load(self.name, [f"f:{p}" for p in sorted(parties)])
        return {k[2:]: r for k, r in rows.items()
                if r["merged_into"] is None and keys.intersection(primary_address_keys(r))}


class _Batch:
    """The rows one catch-up batch has loaded and changed."""

    def __init__(self, owner: SegmentMembership, start: int) -> None:
        self.owner = owner
        self.stored = start > 0  # from zero nothing is stored: nothing to load
        self.rows: dict[str, Row] = {}
        self.loaded: set[str] = set()
        self.changed: set[str] = set()
        self.count = 0
        self._everything = not self.stored
        self._criteria: dict[str, Criterion] | None = None
        self._order: list[str] = []
        self._reads: dict[str, frozenset[str] | None] = {}
        self._refers: dict[str, frozenset[str]] = {}
        self._watched: frozenset[str] | None = None
        if self.stored:
            self._load_prefix("d:")

    # ------------------------------------------------------------------ loading

    def _load(self, keys: Iterable[str]) -> None:
        wanted = [k for k in keys if k not in self.loaded]
        if not wanted or self._everything:
            return
        self.loaded.update(wanted)
        for key, row in self.owner.storage.load(self.owner.name, wanted).items():
            self.rows.setdefault(key, row)

    def _load_prefix(self, prefix: str) -> None:
        for key, row in self.owner.storage.with_prefix(self.owner.name, prefix).items():
            if key not in self.loaded:
                self.rows.setdefault(key, row)
                self.loaded.add(key)

    def prefetch(self, page: list[StoredRecord]) -> None:
        """Load the stored rows the page's records read: one round trip per kind of row."""
        if self._everything:
            return
        o = self.owner
        if any(r.topic in o._segment_topics for r in page):
            for prefix in ("f:", "o:", "m:", "a:"):
                self._load_prefix(prefix)
            self._everything = True
            return
        parties: set[str] = set()
        opportunities: set[str] = set()
        addresses: set[str] = set()  # ``a:`` keys
        named: set[str] = set()  # addresses the records name
        for record in page:
            if record.topic in o._party_topics:
                parties.add(record.originator_id)
                for key in ("loser_id", "other_id"):
                    if key in record.data:
                        parties.add(str(record.data[key]))
                _addresses_named(record.data, named)
            elif record.topic == o._opened:
                parties.add(str(record.data["party_id"]))
            elif record.topic in o._decision_topics:
                addresses.add(_index_key(str(record.data["address_key"])))
            else:
                opportunities.add(record.originator_id)
        if addresses:  # the parties whose primary address a decision is about
            self._load(addresses)
            parties.update(p for key in addresses if key in self.rows for p in self.rows[key]["parties"])
        self._load(f"o:{i}" for i in opportunities)
        parties.update(str(self.rows[f"o:{i}"]["party_id"]) for i in opportunities if f"o:{i}" in self.rows)
        # The parties these stand for, and the parties merged into those (whose opportunities count).
        frontier = parties
        while frontier:
            self._load(f"f:{p}" for p in frontier)
            found: set[str] = set()
            for party in frontier:
                row = self.rows.get(f"f:{party}")
                if row is not None:
                    found.update(row["merged_from"])
                    if row["merged_into"]:
                        found.add(str(row["merged_into"]))
            frontier = found - parties
            parties |= found
        for party in parties:  # the primary addresses their deliverability reads, and the records name
            row = self.rows.get(f"f:{party}")
            if row is not None:
                named.update(primary_address_keys(row))
        self._load(_index_key(k) for k in named)
        self._load(f"m:{s}:{p}" for s in self._definitions() for p in parties)

    # ------------------------------------------------------------------ applying

    def apply(self, record: StoredRecord) -> None:
        o = self.owner
        self.count += 1
        topic = record.topic
        if topic in o._party_topics:
            party = record.originator_id
            old = self.rows.get(f"f:{party}")
            new = o._facts.evolve_record(None if old is None else dict(old), record)
            if new is None:
                return
            merged_from = list(old["merged_from"]) if old else []
            if topic == o._merged:
                merged_from.append(str(record.data["loser_id"]))
            elif topic == o._unmerged:
                merged_from = [p for p in merged_from if p != str(record.data["other_id"])]
            new["merged_from"], new["opportunities"] = merged_from, old["opportunities"] if old else {}
            self._index(party, primary_address_keys(old) if old else [], primary_address_keys(new))
            new["deliverable"] = deliverable_of(new, self._suppressed)
            self._put(f"f:{party}", new)
            changed: frozenset[str] | None = None
            if old is not None and self._watched is not None and topic not in o._rebuilding:
                changed = frozenset(k for k in self._watched if old.get(k) != new.get(k))
            self._evaluate([party], self._definitions_order(), record, changed)
        elif topic in o._segment_topics:
            self._segment(record)
        elif topic in o._decision_topics:
            self._decision(record)
        else:
            self._opportunity(record)

    # ------------------------------------------------------------------ addresses

    def _address(self, address_key: str) -> Row:
        """The ``a:`` row of an address (loaded if it was not; a new, empty one if none is stored)."""
        key = _index_key(address_key)
        self._load([key])
        return self.rows.get(key) or {"address_key": address_key, "parties": [], "decisions": []}

    def _index(self, party: str, before: list[str], after: list[str]) -> None:
        """Move ``party`` in the address index from its primary addresses ``before`` to those ``after``."""
        if before == after:
            return
        for address_key in set(before) - set(after):
            row = self._address(address_key)
            parties = [p for p in row["parties"] if p != party]
            self._put(_index_key(address_key), {**row, "parties": parties} if parties or row["decisions"]
                      else None)
        for address_key in set(after) - set(before):
            row = self._address(address_key)
            if party not in row["parties"]:
                self._put(_index_key(address_key), {**row, "parties": sorted([*row["parties"], party])})

    def _suppressed(self, address_key: str) -> bool | None:
        """What the decision in force about an address says (True: suppressed; None: no decision)."""
        return decision_in_force(self._address(address_key)["decisions"])

    def _decision(self, record: StoredRecord) -> None:
        """A suppression decision: record it; if it changes the decision in force, the parties whose primary
        address it is may change their deliverability, and the segments reading it are evaluated again."""
        address_key = str(record.data["address_key"])
        row = self._address(address_key)
        before = decision_in_force(row["decisions"])
        decisions = add_decision(row["decisions"], record)
        self._put(_index_key(address_key), {**row, "decisions": decisions})
        if decision_in_force(decisions) == before:
            return
        moved = []
        for party in row["parties"]:
            facts = self.rows.get(f"f:{party}")
            if facts is None:
                continue
            deliverable = deliverable_of(facts, self._suppressed)
            if deliverable != facts.get("deliverable"):
                self._put(f"f:{party}", {**facts, "deliverable": deliverable})
                moved.append(party)
        if moved:
            self._evaluate(moved, self._definitions_order(), record, _DECISION_FACTS)

    def _opportunity(self, record: StoredRecord) -> None:
        data, opportunity = record.data, record.originator_id
        if record.topic == self.owner._opened:
            party = str(data["party_id"])
            self._put(f"o:{opportunity}", {"party_id": party})
            value = data["value"]
            entry = ["open", value["amount"], value["currency"], None]
        else:
            link = self.rows.get(f"o:{opportunity}")
            if link is None:
                return
            party = link["party_id"]
            row = self.rows.get(f"f:{party}")
            held = row["opportunities"].get(opportunity) if row is not None else None
            if held is None:
                return
            entry = list(held)
            name = self.owner._opportunity[record.topic]
            if name == "ValueReestimated":
                entry[1], entry[2] = data["value"]["amount"], data["value"]["currency"]
            elif name in ("Won", "Lost"):
                entry[0], entry[3] = name.lower(), data["effective_at"]
            else:
                entry[0], entry[3] = "open", None
        row = self.rows.get(f"f:{party}")
        if row is None:
            return
        self._put(f"f:{party}", {**row, "opportunities": {**row["opportunities"], opportunity: entry}})
        survivor = survivor_of(party, lambda p: self.rows.get(f"f:{p}"))
        self._evaluate([survivor], self._definitions_order(), record, _OPPORTUNITY_FACTS)

    def _segment(self, record: StoredRecord) -> None:
        segment = record.originator_id
        old = self.rows.get(f"d:{segment}")
        data = record.data
        o = self.owner
        if record.topic == o._defined:
            row: Row = {"segment_id": segment, "criteria": data["criteria"], "retired": False}
        elif old is None:
            return
        elif record.topic == o._criteria_changed:
            row = {**old, "criteria": data["criteria"]}
        elif record.topic == o._retired:
            row = {**old, "retired": True}
        else:
            return  # renamed: membership unchanged
        self._put(f"d:{segment}", row)
        self._criteria = None
        order = self._definitions_order()
        affected = _dependents(self._definitions(), {segment})
        parties = sorted(k[2:] for k in self.rows if k.startswith("f:"))
        self._evaluate(parties, ([segment] if row["retired"] else []) + [s for s in order if s in affected],
                       record, None)

    def _evaluate(
        self, parties: list[str], segments: list[str], record: StoredRecord, changed: frozenset[str] | None,
    ) -> None:
        """Evaluate ``segments`` (in order) for ``parties`` and record every change of membership.

        ``changed`` names the facts the record changed (``None``: any may have): a segment reading none of
        them, and referring to no segment whose membership just changed, keeps its answer.
        """
        if not segments:
            return
        at = record.data["effective_at"]
        criteria = self._definitions()
        reads, refers = self._reads, self._refers
        context: Context | None = None
        cause = record.topic.split(":", 1)[-1]  # e.g. Party.FieldsUpdated
        for party in parties:
            row = self.rows.get(f"f:{party}")
            if row is None:
                continue
            facts: Facts | None = None
            moved: set[str] = set()
            for segment in segments:
                node = criteria.get(segment)
                if changed is not None and node is not None:
                    read = reads[segment]
                    if read is not None and not (read & changed) and not (refers[segment] & moved):
                        continue
                key = f"m:{segment}:{party}"
                inside = False
                if node is not None and row["merged_into"] is None:
                    if facts is None:
                        facts = self._joined(party, row)
                    if context is None:
                        context = Context(now=datetime.fromisoformat(at),
                                          in_segment=lambda s, p: f"m:{s.lower()}:{p}" in self.rows)
                    inside = node.evaluate(facts, context)
                if inside == (key in self.rows):
                    continue
                moved.add(segment)
                if inside:
                    self._put(key, {"segment_id": segment, "party_id": party, "since": at, "cause": cause,
                                    "position": record.position})
                else:
                    self._put(key, None)
                self._put(f"c:{segment}:{record.position:012d}:{party}", {
                    "segment_id": segment, "party_id": party, "change": "entered" if inside else "left",
                    "at": at, "cause": cause, "position": record.position,
                })

    def _joined(self, party: str, row: Row) -> Facts:
        """The party's facts with the opportunity facts of it and of the parties merged into it."""
        entries: list[Any] = []
        stack, seen = [party], set()
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            held = row if current == party else self.rows.get(f"f:{current}")
            if held is not None:
                entries.extend(tuple(e) for e in held["opportunities"].values())
                stack.extend(held["merged_from"])
        return cast(Facts, {**row, **opportunity_facts(entries)})

    # ------------------------------------------------------------------ definitions and rows

    def _definitions(self) -> dict[str, Criterion]:
        if self._criteria is None:
            self._criteria = {
                k[2:]: parse_criteria(r["criteria"], check=False)
                for k, r in self.rows.items() if k.startswith("d:") and not r["retired"]
            }
            self._order = evaluation_order(self._criteria)
            self._reads = {sid: node.facts_read() for sid, node in self._criteria.items()}
            self._refers = {sid: frozenset(referenced_segments(node)) for sid, node in self._criteria.items()}
            read = list(self._reads.values())
            self._watched = None if None in read else frozenset().union(*read)  # type: ignore[arg-type]
        return self._criteria

    def _definitions_order(self) -> list[str]:
        self._definitions()
        return self._order

    def _put(self, key: str, row: Row | None) -> None:
        if row is None:
            self.rows.pop(key, None)
        else:
            self.rows[key] = row
        self.changed.add(key)

    def changes(self) -> dict[str, Row | None]:
        return {k: self.rows.get(k) for k in self.changed}


@lru_cache(maxsize=1 << 16)
def _index_key(address_key: str) -> str:
    """The storage key of an address's ``a:`` row: by its ``AddressStatus`` id (ASCII, whatever the
    address)."""
    return f"a:{address_status_id(address_key)}"


def _addresses_named(data: Mapping[str, Any], found: set[str]) -> None:
    """Add to ``found`` the keys of the e-mail addresses and phone numbers a party event's data names (as
    lists, or as list changes: ``add`` and ``first``), so that their ``a:`` rows are read in one batch."""
    sections = [data.get(name) for name in _ADDRESS_SECTIONS]
    restored = data.get("restored")
    if isinstance(restored, Mapping):
        sections.append(restored.get("identity"))
    for section in sections:
        if not isinstance(section, Mapping):
            continue
        for field in ("emails", "phones"):
            value = section.get(field)
            if isinstance(value, Mapping):
                value = [*value.get("add", ()), *([value["first"]] if value.get("first") else [])]
            if isinstance(value, list):
                found.update(address_key_of(str(v)) for v in value if v)


def _dependents(criteria: Mapping[str, Criterion], segments: Iterable[str]) -> set[str]:
    """``segments`` and every segment whose criteria refer to one of them, directly or not."""
    found = set(segments)
    grew = True
    while grew:
        grew = False
        for other, node in criteria.items():
            if other not in found and referenced_segments(node) & found:
                found.add(other)
                grew = True
    return found


def time_relative_segments(criteria: Mapping[str, Criterion]) -> set[str]:
    """The segments whose membership may change with time alone: their own criteria, or a segment they
    refer to, hold a time window."""
    return _dependents(criteria, {s for s, node in criteria.items() if is_time_relative(node)})
