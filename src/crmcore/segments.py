"""Segment criteria: a small JSON language over a party's facts, checked when saved, evaluated purely.

A criterion is a JSON object naming one test by its key — ``{"stage": ["prospect", "customer"]}``,
``{"field": "region", "eq": "Lombardy"}`` — or combining others: ``{"all": [...]}``, ``{"any": [...]}``,
``{"not": {...}}``. :func:`parse_criteria` turns JSON into a tree of :class:`Criterion` nodes, checking every
value against the rules in force (an unknown field raises :class:`FieldNotDefined`, a value that breaks a
field's rules :class:`FieldRuleViolation` with the closest allowed value), and stores the canonical values
(``"lombardia"`` under a synonym becomes ``"Lombardy"``). ``node.evaluate(facts, context)`` answers for one
party from its **facts** row (the shape is :class:`Facts`), at the context's moment; ``node.to_json()`` gives
the canonical JSON back, so criteria round-trip through storage.

Later capabilities add their own tests with :func:`register_criterion` (the hygiene flags of
:mod:`crmcore.hygiene`): a node is a frozen pydantic model with a ``tag`` (the key that names it) and an
``evaluate`` method.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Literal, Protocol, TypedDict
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from crmcore.exceptions import FieldNotDefined, InvalidInput
from crmcore.fields import FieldDefinition, FieldKind, FieldSet
from crmcore.values import ConsentChannel, PartyKind, Stage

__all__ = [
    "Context",
    "Criterion",
    "Facts",
    "HygieneFlags",
    "is_time_relative",
    "parse_criteria",
    "referenced_segments",
    "register_criterion",
]

#: Criteria nested deeper than this are refused (they are written by people, or by screens for people).
MAX_DEPTH = 12


class Facts(TypedDict, total=False):
    """What a criterion may read about one party (a row of the ``party_facts`` view with what is joined to
    it on read, JSON-native).

    ``fields`` and ``profile`` hold canonical field values (numbers and dates as text); ``consent`` maps a
    channel to ``subscribed`` / ``unsubscribed``; ``deliverable`` a channel to whether its primary address
    may be sent to (the recorded suppression decision in force about it, else the party's own ledger:
    :func:`crmcore.projections.facts.deliverable_of`); ``won_value`` a currency to a decimal text;
    ``wins`` lists ``[closed_at, amount, currency]``; ``interactions`` the latest interaction times; times
    are ISO text (UTC where the view compares them).
    """

    party_id: str
    stage: str
    kind: str
    owner: str | None
    organization_id: str | None
    fields: dict[str, Any]
    profile: dict[str, Any]
    consent: dict[str, str]
    deliverable: dict[str, bool]
    last_interaction_at: str | None
    open_opportunities: int
    won_value: dict[str, str]
    wins: list[list[str]]
    last_won_at: str | None
    name: str
    channel: str | None
    stage_since: str
    stages: list[list[str]]
    registered_at: str
    converted_at: str | None
    set_aside: bool
    merged_into: str | None
    emails: list[str]
    phones: list[str]
    vat_number: str | None
    interactions: list[str]


class HygieneFlags(Protocol):
    """What hygiene flag criteria read besides a party's facts (see :mod:`crmcore.hygiene`)."""

    def holds(self, flag: str, facts: Facts, now: datetime) -> bool:
        """Whether the party of ``facts`` carries ``flag`` at ``now``."""
        ...


@dataclass(frozen=True)
class Context:
    """What an evaluation knows besides the party's facts: the moment, other segments' members, and what
    hygiene flags read (``hygiene``; None: flags other than ``set_aside`` do not hold, see
    :mod:`crmcore.hygiene`)."""

    now: datetime
    in_segment: Callable[[str, str], bool] = field(default=lambda segment, party: False)
    hygiene: HygieneFlags | None = None


class Criterion(BaseModel):
    """One node of a criteria tree."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: The JSON key that names this kind of node.
    tag: ClassVar[str]
    #: Whether the node's answer changes with the passage of time alone (a window before the moment asked).
    time_relative: ClassVar[bool] = False
    #: The keys of the facts row the node reads (``None``: any of them). Lets a projection skip evaluating
    #: criteria an event cannot have changed the answer of.
    reads: ClassVar[frozenset[str] | None] = None

    def evaluate(self, facts: Facts, context: Context) -> bool:
        """Whether the party whose facts these are meets this criterion at ``context.now``."""
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        """The canonical JSON form (what :func:`parse_criteria` reads back to an equal node)."""
        return self.model_dump(mode="json", exclude_none=True)

    def check(self, fields: FieldSet) -> Criterion:
        """This node with its values checked and made canonical against ``fields`` (default: unchanged)."""
        return self

    def children(self) -> Sequence[Criterion]:
        """The nodes this one combines (none for a test)."""
        return ()

    def facts_read(self) -> frozenset[str] | None:
        """The keys of the facts row this tree reads (``None``: it may read any)."""
        if self.reads is None:
            return None
        keys = set(self.reads)
        for child in self.children():
            read = child.facts_read()
            if read is None:
                return None
            keys |= read
        return frozenset(keys)


class All(Criterion):
    """Every one of the criteria holds (an empty list always holds)."""

    tag: ClassVar[str] = "all"
    reads: ClassVar[frozenset[str] | None] = frozenset()
    all: list[Criterion]

    def evaluate(self, facts: Facts, context: Context) -> bool:
        return all(c.evaluate(facts, context) for c in self.all)

    def to_json(self) -> dict[str, Any]:
        return {"all": [c.to_json() for c in self.all]}

    def children(self) -> Sequence[Criterion]:
        return self.all


class AnyOf(Criterion):
    """At least one of the criteria holds (an empty list never holds)."""

    tag: ClassVar[str] = "any"
    reads: ClassVar[frozenset[str] | None] = frozenset()
    any: list[Criterion]

    def evaluate(self, facts: Facts, context: Context) -> bool:
        return any(c.evaluate(facts, context) for c in self.any)

    def to_json(self) -> dict[str, Any]:
        return {"any": [c.to_json() for c in self.any]}

    def children(self) -> Sequence[Criterion]:
        return self.any


class Not(Criterion):
    """The criterion does not hold."""

    tag: ClassVar[str] = "not"
    reads: ClassVar[frozenset[str] | None] = frozenset()
    not_: Criterion = Field(alias="not")

    def evaluate(self, facts: Facts, context: Context) -> bool:
        return not self.not_.evaluate(facts, context)

    def to_json(self) -> dict[str, Any]:
        return {"not": self.not_.to_json()}

    def children(self) -> Sequence[Criterion]:
        return (self.not_,)


class StageIn(Criterion):
    """The party's lifecycle stage is one of these (one stage may be given alone)."""

    tag: ClassVar[str] = "stage"
    reads: ClassVar[frozenset[str] | None] = frozenset({"stage"})
    stage: list[Stage] = Field(min_length=1)

    def evaluate(self, facts: Facts, context: Context) -> bool:
        return facts.get("stage") in self.stage


class KindIs(Criterion):
    """The party is a person or an organization."""

    tag: ClassVar[str] = "kind"
    reads: ClassVar[frozenset[str] | None] = frozenset({"kind"})
    kind: PartyKind

    def evaluate(self, facts: Facts, context: Context) -> bool:
        return facts.get("kind") == self.kind


class OwnerIn(Criterion):
    """The party is assigned to one of these owners; ``null`` (alone) means unassigned."""

    tag: ClassVar[str] = "owner"
    reads: ClassVar[frozenset[str] | None] = frozenset({"owner"})
    owner: list[str] | None

    def evaluate(self, facts: Facts, context: Context) -> bool:
        owner = facts.get("owner")
        return owner is None if self.owner is None else owner in self.owner

    def to_json(self) -> dict[str, Any]:
        return {"owner": self.owner}


_ORDERED = frozenset({FieldKind.NUMBER, FieldKind.DATE})
_OPS = ("eq", "in_", "lt", "le", "gt", "ge", "contains", "present")


class FieldTest(Criterion):
    """A custom field or profile trait: equal to (``eq``), one of (``in``), compared with (``lt``, ``le``,
    ``gt``, ``ge``: number and date fields), containing (``contains``: text, or one of a multi-choice's
    values) or filled in (``present``). Exactly one test per node."""

    tag: ClassVar[str] = "field"
    reads: ClassVar[frozenset[str] | None] = frozenset({"fields", "profile"})
    field: str
    eq: Any = None
    in_: list[Any] | None = Field(default=None, alias="in")
    lt: Any = None
    le: Any = None
    gt: Any = None
    ge: Any = None
    contains: Any = None
    present: bool | None = None
    section: Literal["custom", "profile"] = "custom"

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def _op(self) -> tuple[str, Any]:
        given = [(op, getattr(self, op)) for op in _OPS if getattr(self, op) is not None]
        if len(given) != 1:
            raise _invalid(f"field {self.field!r}: give exactly one of eq, in, lt, le, gt, ge, contains, "
                           f"present (got {len(given)})", "field")
        return given[0]

    def check(self, fields: FieldSet) -> Criterion:
        definition = fields.get(self.field)
        if definition is None:
            raise FieldNotDefined(self.field, "a segment can only test defined fields")
        op, value = self._op()
        if op in ("lt", "le", "gt", "ge") and definition.kind not in _ORDERED:
            raise _invalid(f"field {self.field!r} is a {definition.kind.value} field: {op} compares numbers "
                           "and dates only", "field")
        if op == "contains" and definition.kind not in (FieldKind.TEXT, FieldKind.MULTI_CHOICE):
            raise _invalid(f"field {self.field!r}: contains reads text and multi-choice fields", "field")
        if op == "present":
            canonical: Any = value
        elif op == "in_":
            canonical = [_canonical(definition, v) for v in value]
        elif op == "contains" and definition.kind is FieldKind.TEXT:
            canonical = str(value)
        elif op == "contains" or (op == "eq" and definition.kind is FieldKind.MULTI_CHOICE):
            canonical = _one_choice(definition, value) if op == "contains" else _canonical(definition, value)
        else:
            canonical = _canonical(definition, value)
        return self.model_copy(update={op: canonical, "section": definition.section})

    def evaluate(self, facts: Facts, context: Context) -> bool:
        values = (facts.get("profile") if self.section == "profile" else facts.get("fields")) or {}
        actual = values.get(self.field)
        op, wanted = self._op()
        if op == "present":
            return (actual is not None) is bool(wanted)
        if actual is None:
            return False
        if op == "eq":
            return bool(actual == wanted)
        if op == "in_":
            return bool(actual in wanted)
        if op == "contains":
            if isinstance(actual, list):
                return wanted in actual
            return str(wanted).casefold() in str(actual).casefold()
        left: Any = _ordered(actual)
        right: Any = _ordered(wanted)
        return bool({"lt": left < right, "le": left <= right, "gt": left > right, "ge": left >= right}[op])

    def to_json(self) -> dict[str, Any]:
        op, value = self._op()
        given = {"field": self.field, "in" if op == "in_" else op: value}
        return {**given, "section": "profile"} if self.section == "profile" else given


class ConsentIs(Criterion):
    """The party's consent on a channel now: ``subscribed``, ``unsubscribed`` or ``unknown`` (never asked)."""

    tag: ClassVar[str] = "consent"
    reads: ClassVar[frozenset[str] | None] = frozenset({"consent"})
    consent: ConsentChannel
    is_: Literal["subscribed", "unsubscribed", "unknown"] = Field(alias="is")

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def evaluate(self, facts: Facts, context: Context) -> bool:
        return (facts.get("consent") or {}).get(self.consent.value, "unknown") == self.is_

    def to_json(self) -> dict[str, Any]:
        return {"consent": self.consent.value, "is": self.is_}


class Deliverable(Criterion):
    """The party's primary address on the channel may be sent to (not suppressed by the bounce policy's
    decision in force, see :class:`Facts`)."""

    tag: ClassVar[str] = "deliverable"
    reads: ClassVar[frozenset[str] | None] = frozenset({"deliverable"})
    deliverable: ConsentChannel

    def evaluate(self, facts: Facts, context: Context) -> bool:
        return bool((facts.get("deliverable") or {}).get(self.deliverable.value, False))


class Window(BaseModel):
    """Days before the evaluation's moment: ``within_days`` (at most that long ago), ``older_than_days``
    (longer ago, or never), or ``never``. Exactly one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    within_days: int | None = Field(default=None, ge=0, le=36_500)
    older_than_days: int | None = Field(default=None, ge=0, le=36_500)
    never: bool | None = None

    def holds(self, moment: str | None, now: datetime) -> bool:
        given = [v for v in (self.within_days, self.older_than_days, self.never) if v is not None]
        if len(given) != 1:
            raise _invalid("give exactly one of within_days, older_than_days, never", "window")
        if self.never is not None:
            return (moment is None) == self.never
        if moment is None:
            return self.older_than_days is not None
        age = now - datetime.fromisoformat(moment)
        if self.within_days is not None:
            return age <= timedelta(days=self.within_days)
        return age > timedelta(days=self.older_than_days or 0)


class LastInteraction(Criterion):
    """When the party last interacted (an engagement, a completed call or meeting, ...)."""

    tag: ClassVar[str] = "last_interaction"
    reads: ClassVar[frozenset[str] | None] = frozenset({"last_interaction_at"})
    time_relative: ClassVar[bool] = True
    last_interaction: Window

    def check(self, fields: FieldSet) -> Criterion:
        self.last_interaction.holds(None, datetime.now().astimezone())  # exactly one bound, or refused
        return self

    def evaluate(self, facts: Facts, context: Context) -> bool:
        return self.last_interaction.holds(facts.get("last_interaction_at"), context.now)


class Count(BaseModel):
    """A whole-number range, ``min`` and/or ``max`` inclusive."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)


class OpenOpportunities(Criterion):
    """How many open opportunities the party has: ``{"open_opportunities": {"min": 1}}``."""

    tag: ClassVar[str] = "open_opportunities"
    reads: ClassVar[frozenset[str] | None] = frozenset({"open_opportunities"})
    open_opportunities: Count

    def evaluate(self, facts: Facts, context: Context) -> bool:
        count = facts.get("open_opportunities") or 0
        low, high = self.open_opportunities.min, self.open_opportunities.max
        return (low is None or count >= low) and (high is None or count <= high)


class Amount(BaseModel):
    """An amount in one currency, bounded by ``ge`` and/or ``lt``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    currency: str = Field(pattern=r"^[A-Z]{3}$")
    ge: Decimal | None = Field(default=None, ge=0)
    lt: Decimal | None = Field(default=None, ge=0)


class WonValue(Criterion):
    """The value of the party's won opportunities in one currency: ``{"won_value": {"currency": "EUR",
    "ge": "10000"}}``."""

    tag: ClassVar[str] = "won_value"
    reads: ClassVar[frozenset[str] | None] = frozenset({"won_value"})
    won_value: Amount

    def evaluate(self, facts: Facts, context: Context) -> bool:
        won = Decimal((facts.get("won_value") or {}).get(self.won_value.currency, "0"))
        low, high = self.won_value.ge, self.won_value.lt
        return (low is None or won >= low) and (high is None or won < high)


class MemberOf(Criterion):
    """The party belongs to this organization (or target), by id."""

    tag: ClassVar[str] = "member_of"
    reads: ClassVar[frozenset[str] | None] = frozenset({"organization_id"})
    member_of: str = Field(pattern=r"^[0-9a-fA-F-]{32,36}$")

    def evaluate(self, facts: Facts, context: Context) -> bool:
        return str(facts.get("organization_id") or "").lower() == self.member_of.lower()


class InSegment(Criterion):
    """The party is a member of another saved segment, by id."""

    tag: ClassVar[str] = "segment"
    reads: ClassVar[frozenset[str] | None] = frozenset()
    segment: str = Field(min_length=1)

    @field_validator("segment")
    @classmethod
    def _canonical_id(cls, value: str) -> str:
        try:
            return str(UUID(value))
        except ValueError:
            raise ValueError("a segment id (a UUID)") from None

    def evaluate(self, facts: Facts, context: Context) -> bool:
        return context.in_segment(self.segment, str(facts.get("party_id", "")))


_NODES: dict[str, type[Criterion]] = {}


def register_criterion(node: type[Criterion]) -> type[Criterion]:
    """Make ``node`` (a :class:`Criterion` subclass with its own ``tag``) known to :func:`parse_criteria`."""
    tag = getattr(node, "tag", None)
    if not isinstance(tag, str) or not tag:
        raise ValueError(f"{node.__name__} needs a tag")
    if _NODES.get(tag, node) is not node:
        raise ValueError(f"a criterion named {tag!r} is registered already")
    _NODES[tag] = node
    return node


for _node in (All, AnyOf, Not, StageIn, KindIs, OwnerIn, FieldTest, ConsentIs, Deliverable, LastInteraction,
              OpenOpportunities, WonValue, MemberOf, InSegment):
    register_criterion(_node)


def parse_criteria(
    data: Mapping[str, Any], fields: FieldSet | None = None, *, check: bool = True,
) -> Criterion:
    """The criteria tree of ``data``, checked against ``fields`` (the custom fields and profile in force).

    Raises :class:`InvalidInput` (naming where, e.g. ``all.1.stage``) for a malformed tree,
    :class:`FieldNotDefined` and :class:`FieldRuleViolation` for field tests that cannot hold. With
    ``check=False`` the field tests are read as given (criteria read back from storage, checked when saved).
    """
    return _parse(data, fields if fields is not None else FieldSet(), (), 0, check)


def referenced_segments(node: Criterion) -> set[str]:
    """The ids of the segments the criteria test membership of (``{"segment": id}`` nodes), lower-cased."""
    found = {node.segment.lower()} if isinstance(node, InSegment) else set()
    for child in node.children():
        found |= referenced_segments(child)
    return found


def is_time_relative(node: Criterion) -> bool:
    """Whether the criteria's answer may change with the passage of time alone (not counting the segments
    they refer to)."""
    return node.time_relative or any(is_time_relative(child) for child in node.children())


def _parse(data: Any, fields: FieldSet, where: tuple[Any, ...], depth: int, check: bool) -> Criterion:
    if depth > MAX_DEPTH:
        raise _invalid(f"criteria nested deeper than {MAX_DEPTH} levels", "depth", where)
    if not isinstance(data, Mapping):
        raise _invalid("a criterion is a JSON object", "type", where)
    tags = [key for key in data if key in _NODES]
    if len(tags) != 1:
        known = ", ".join(sorted(_NODES))
        raise _invalid(f"a criterion names exactly one of {known}: got {sorted(data)}", "tag", where)
    tag = tags[0]
    node = _NODES[tag]
    values = dict(data)
    if node is All or node is AnyOf:
        children = values[tag]
        if not isinstance(children, list):
            raise _invalid(f"{tag} takes a list of criteria", "type", (*where, tag))
        values[tag] = [_parse(c, fields, (*where, tag, i), depth + 1, check) for i, c in enumerate(children)]
    elif node is Not:
        values[tag] = _parse(values[tag], fields, (*where, tag), depth + 1, check)
    elif node in (StageIn, OwnerIn) and isinstance(values[tag], str):
        values[tag] = [values[tag]]  # one value given alone
    try:
        parsed = node.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        raise _invalid(f"{'.'.join(map(str, (*where, *first['loc'])))}: {first['msg']}", first["type"],
                       (*where, *first["loc"])) from None
    return parsed.check(fields) if check else parsed


def _canonical(definition: FieldDefinition, value: Any) -> Any:
    if value is None:
        raise _invalid(f"field {definition.name!r}: test for no value with present=false", "field")
    return definition.normalise(value)


def _one_choice(definition: FieldDefinition, value: Any) -> Any:
    canonical = definition.normalise([value])
    return canonical[0] if isinstance(canonical, list) else canonical


def _ordered(value: Any) -> Decimal | date:
    if isinstance(value, Decimal | date):
        return value
    text = str(value)
    try:
        return Decimal(text)
    except ArithmeticError:
        return date.fromisoformat(text)


def _invalid(message: str, kind: str, where: tuple[Any, ...] = ()) -> InvalidInput:
    return InvalidInput(f"criteria: {message}", [{"loc": ("criteria", *where), "msg": message, "type": kind}])
