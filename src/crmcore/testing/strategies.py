"""Hypothesis strategies for crmcore inputs: valid command fields, deliberately bad ones, and event histories.

Valid strategies only produce values every crmcore command accepts, so a failure they provoke is a bug.
Names may carry surrounding spaces (crmcore strips them); use :func:`normalised` to get what is stored.
The ``invalid_*`` strategies produce values crmcore must refuse with a typed error.

This module needs ``hypothesis`` (``pip install 'crmcore[test]'``).
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from string import ascii_lowercase, digits
from typing import Any, Final
from uuid import UUID

from eventsourcing.utils import get_topic
from hypothesis import strategies as st

from crmcore.aggregates.party import Party
from crmcore.values import Channel, PartyKind, Stage

__all__ = [
    "ALL_STAGES",
    "OWNERS",
    "REGISTRABLE_STAGES",
    "TYPED_TRAITS",
    "actors",
    "channels",
    "future_datetimes",
    "invalid_names",
    "kinds",
    "naive_datetimes",
    "names",
    "non_uuid_ids",
    "normalised",
    "owners",
    "party_event_histories",
    "past_datetimes",
    "profile_changes",
    "profiles",
    "reasons",
    "references",
    "registrable_stages",
    "registrations",
    "trait_names",
    "trait_values",
]

#: Every lifecycle stage, as the plain strings crmcore stores.
ALL_STAGES: Final = ("suspect", "lead", "prospect", "target", "customer", "disqualified")

#: The stages a party of each kind may be registered at (the domain brief's table, written out here
#: rather than read from ``crmcore.policies`` so tests built on it check the rules instead of echoing them).
REGISTRABLE_STAGES: Final[Mapping[str, tuple[str, ...]]] = {
    "person": ("suspect", "lead", "prospect", "customer"),
    "organization": ("suspect", "lead", "target", "customer"),
}

#: A small pool of sales reps, so that owners repeat and counts by owner are interesting.
OWNERS: Final = ("rep-ada", "rep-bruno", "rep-chiara")

#: The longest name, actor id or reference crmcore accepts.
MAX_NAME = 200
#: The longest reason or trait text crmcore accepts.
MAX_TEXT = 500

_WORD_CHARS = st.characters(categories=("L", "N", "P", "S"))
_FAMILIAR_NAMES = (
    "Ada Lovelace", "Acme S.p.A.", "Bruno Rossi", "Chiara Bianchi", "Globex Srl", "O'Brien & Sons",
    "Zoë Ångström", "株式会社テスト",
)


def normalised(value: str) -> str:
    """What crmcore stores for a name, actor, reason or trait text drawn here: the value without the
    spaces these strategies may put around it."""
    return value.strip(" ")


@st.composite
def _words(draw: st.DrawFn, max_size: int) -> str:
    words = draw(st.lists(st.text(_WORD_CHARS, min_size=1, max_size=20), min_size=1, max_size=6))
    return " ".join(words)[:max_size].rstrip(" ")


@st.composite
def _padded(draw: st.DrawFn, core: st.SearchStrategy[str], pad: bool) -> str:
    text = draw(core)
    if not pad:
        return text
    return draw(st.sampled_from(("", " ", "  "))) + text + draw(st.sampled_from(("", " ")))


@cache
def _longest(max_size: int) -> st.SearchStrategy[str]:
    # A short word repeated to exactly ``max_size`` characters: as long as allowed, and cheap to draw.
    word = st.text(_WORD_CHARS, min_size=1, max_size=8)
    return word.map(lambda w: (w * (max_size // len(w) + 1))[:max_size])


@cache
def names(*, max_size: int = MAX_NAME, pad: bool = True) -> st.SearchStrategy[str]:
    """Valid display names: 1 to ``max_size`` letters, digits, punctuation and symbols in words.

    With ``pad``, some carry spaces around them, which crmcore strips (see :func:`normalised`).
    """
    core = st.one_of(
        st.sampled_from([n for n in _FAMILIAR_NAMES if len(n) <= max_size]),
        _words(max_size),
        _longest(max_size),
    )
    return _padded(core, pad)


@cache
def actors() -> st.SearchStrategy[str]:
    """Valid actor ids (who did something): a few familiar ones and arbitrary names."""
    return st.one_of(st.sampled_from(("alice", "bob", "importer", "crm-sync")), names(max_size=60))


@cache
def owners() -> st.SearchStrategy[str]:
    """Sales rep ids from the small :data:`OWNERS` pool."""
    return st.sampled_from(OWNERS)


@cache
def channels() -> st.SearchStrategy[Channel]:
    """Any channel a party may interact through."""
    return st.sampled_from(Channel)


@cache
def kinds() -> st.SearchStrategy[PartyKind]:
    """Person or organization."""
    return st.sampled_from(PartyKind)


@cache
def registrable_stages(kind: PartyKind | str) -> st.SearchStrategy[Stage]:
    """A stage a party of ``kind`` may be registered at."""
    return st.sampled_from([Stage(s) for s in REGISTRABLE_STAGES[PartyKind(kind).value]])


@cache
def reasons() -> st.SearchStrategy[str]:
    """Valid reasons (for disqualifying, setting aside): short free text, never blank."""
    return names(max_size=120, pad=False)


@cache
def references() -> st.SearchStrategy[str]:
    """Valid purchase references, such as an order number."""
    numbers = st.builds("{}-{}".format, st.sampled_from(("ORD", "INV")), st.integers(0, 10**8))
    return st.one_of(numbers, names(max_size=60, pad=False))


# ---------------------------------------------------------------------------------------- profiles

@cache
def trait_names() -> st.SearchStrategy[str]:
    """Valid trait names: lower-case identifiers of at most 64 characters."""
    return st.builds(operator.add, st.sampled_from(ascii_lowercase),
                     st.text(ascii_lowercase + digits + "_", max_size=20))


@cache
def _trait_texts() -> st.SearchStrategy[str]:
    return names(max_size=80, pad=False)


@cache
def _tag_lists() -> st.SearchStrategy[list[str]]:
    return st.lists(names(max_size=30, pad=False), min_size=0, max_size=4)


_INTS = st.integers(min_value=-(2**63), max_value=2**63 - 1)

#: Installation-defined traits with one value type each, as a CRM's custom fields have: a trait never
#: switches between, say, a number and a flag.
TYPED_TRAITS: Final[Mapping[str, st.SearchStrategy[Any]]] = {
    "interest": _trait_texts(),
    "segment": st.sampled_from(("smb", "enterprise", "public", "non-profit")),
    "score": _INTS,
    "newsletter": st.booleans(),
    "tags": _tag_lists(),
    "preferred_channel": st.sampled_from([c.value for c in Channel]),
}


@cache
def trait_values() -> st.SearchStrategy[Any]:
    """Any valid, present trait value: text, a flag, a 64-bit integer, or a list of texts."""
    return st.one_of(_trait_texts(), st.booleans(), _INTS, _tag_lists())


@st.composite
def _changes(draw: st.DrawFn, min_size: int, max_size: int, typed: bool, removals: bool) -> dict[str, Any]:
    keys = draw(st.lists(st.one_of(st.sampled_from(sorted(TYPED_TRAITS)), trait_names()),
                         min_size=min_size, max_size=max_size, unique=True))
    changes: dict[str, Any] = {}
    for key in keys:
        if removals and draw(st.integers(0, 4)) == 0:
            changes[key] = None
        elif not typed:
            changes[key] = draw(trait_values())
        else:
            changes[key] = draw(TYPED_TRAITS.get(key, _trait_texts()))
    return changes


@cache
def profile_changes(
    *, min_size: int = 1, max_size: int = 4, typed: bool = True,
) -> st.SearchStrategy[dict[str, Any]]:
    """Valid ``changes`` for :meth:`crmcore.CRM.update_profile`: traits to set, and some (``None``) to remove.

    With ``typed`` (the default) each trait in :data:`TYPED_TRAITS` keeps its value type and other traits
    hold text; without it any trait may take any type of value.
    """
    return _changes(min_size, max_size, typed, True)


@cache
def profiles(*, max_size: int = 3, typed: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """A valid starting profile for a new party (no removals)."""
    return _changes(0, max_size, typed, False)


# ---------------------------------------------------------------------------------------- registrations

@cache
def registrations(
    kind: PartyKind | str | None = None, stage: Stage | str | None = None,
) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments for :meth:`crmcore.CRM.register_party` that it must accept.

    A person may name its company (``organization_name``), an organization its contact person
    (``contact_name``); channel, owner and profile are sometimes given.
    """
    return _registrations(PartyKind(kind) if kind is not None else None,
                          Stage(stage) if stage is not None else None)


@st.composite
def _registrations(draw: st.DrawFn, kind: PartyKind | None, stage: Stage | None) -> dict[str, Any]:
    party_kind = kind if kind is not None else draw(kinds())
    party_stage = stage if stage is not None else draw(registrable_stages(party_kind))
    fields: dict[str, Any] = {
        "kind": draw(st.sampled_from((party_kind, party_kind.value))),
        "stage": party_stage.value,
        "name": draw(names()),
        "actor": draw(actors()),
    }
    counterpart = "organization_name" if party_kind is PartyKind.PERSON else "contact_name"
    if draw(st.booleans()):
        fields[counterpart] = draw(names())
    if draw(st.booleans()):
        fields["channel"] = draw(channels())
    if draw(st.booleans()):
        fields["owner"] = draw(owners())
    if draw(st.booleans()):
        fields["profile"] = draw(profiles())
    return fields


# ---------------------------------------------------------------------------------------- times and ids

def past_datetimes(
    *, min_value: datetime = datetime(1990, 1, 1), max_value: datetime | None = None,
) -> st.SearchStrategy[datetime]:
    """Timezone-aware moments between ``min_value`` and ``max_value`` (naive bounds, read as UTC;
    default: an hour ago), in assorted fixed offsets."""
    upper = max_value or (datetime.now(UTC) - timedelta(hours=1)).replace(tzinfo=None)
    offsets = st.sampled_from((UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))))
    return st.builds(
        lambda at, tz: at.replace(tzinfo=UTC).astimezone(tz),
        st.datetimes(min_value=min_value, max_value=upper),
        offsets,
    )


def future_datetimes(*, margin: timedelta = timedelta(minutes=30)) -> st.SearchStrategy[datetime]:
    """Timezone-aware moments at least ``margin`` after now (beyond any allowed clock skew)."""
    return st.builds(
        lambda delta, tz: (datetime.now(UTC) + margin + delta).astimezone(tz),  # now: when drawn
        st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=365 * 50)),
        st.sampled_from((UTC, timezone(timedelta(hours=9)), timezone(timedelta(hours=-8)))),
    )


def naive_datetimes() -> st.SearchStrategy[datetime]:
    """Datetimes without a timezone, which crmcore must refuse."""
    return st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1))


def non_uuid_ids() -> st.SearchStrategy[Any]:
    """Values that are not party ids: malformed strings, numbers, containers, None."""
    return st.one_of(
        st.text(max_size=40).filter(_not_a_uuid),
        st.from_regex(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{11}\Z"),
        st.integers(),
        st.floats(allow_nan=False),
        st.lists(st.integers(), max_size=3),
        st.none(),
    )


def _not_a_uuid(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return True
    return False


def invalid_names() -> st.SearchStrategy[Any]:
    """Names crmcore must refuse: blank, over 200 characters, or not text at all."""
    return st.one_of(
        st.sampled_from(("", " ", "   ", "\t\n")),
        st.text(_WORD_CHARS, min_size=MAX_NAME + 1, max_size=MAX_NAME + 40),
        st.integers(),
        st.floats(allow_nan=False),
        st.booleans(),
        st.lists(st.text(max_size=3), max_size=2),
        st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
    )


# ---------------------------------------------------------------------------------------- event histories

_PARTY_TOPIC = get_topic(Party)
_SHORT_NAMES = st.sampled_from(_FAMILIAR_NAMES) | st.text(_WORD_CHARS, min_size=1, max_size=12)


@st.composite
def party_event_histories(draw: st.DrawFn, *, max_parties: int = 5, max_events: int = 40) -> list[Any]:
    """Streams of ``Party`` events as the log would hold them, for testing views with no database.

    Each party's events have consecutive versions and non-decreasing times; parties interleave. Events
    follow no lifecycle rule (a view must not care), and a few belong to parties never registered.
    """
    count = draw(st.integers(1, max_parties))
    ids = [UUID(int=draw(st.integers(1, 2**122))) for _ in range(count)]
    registered = {party_id: draw(st.integers(0, 9)) > 0 for party_id in ids}
    versions = dict.fromkeys(ids, 0)
    clock = datetime(2024, 1, 1, tzinfo=UTC)
    events: list[Any] = []
    for party_id in ids:
        if registered[party_id]:
            versions[party_id] = 1
            events.append(_registered(draw, party_id, clock))
    for _ in range(draw(st.integers(0, max_events))):
        party_id = draw(st.sampled_from(ids))
        clock += draw(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)))
        versions[party_id] += 1
        events.append(_later_event(draw, party_id, versions[party_id], clock, ids))
    return events


def _registered(draw: st.DrawFn, party_id: UUID, at: datetime) -> Any:
    kind = draw(kinds())
    registered: Any = Party.Registered  # its fields come from eventsourcing's dataclass machinery
    return registered(
        originator_id=party_id, originator_version=1, timestamp=at, originator_topic=_PARTY_TOPIC,
        actor="history", effective_at=at, kind=kind.value, stage=draw(registrable_stages(kind)).value,
        name=draw(_SHORT_NAMES), organization_name=None, contact_name=None,
        channel=None, owner=draw(st.none() | owners()), profile={}, qualified_from=None, identity={},
    )


def _later_event(draw: st.DrawFn, party_id: UUID, version: int, at: datetime, ids: list[UUID]) -> Any:
    common: dict[str, Any] = {
        "originator_id": party_id, "originator_version": version, "timestamp": at,
        "actor": "history", "effective_at": at,
    }
    choice = draw(st.sampled_from((
        "Engaged", "Qualified", "Disqualified", "Reopened", "Converted", "Assigned", "Linked",
        "ProfileUpdated", "SetAside", "Restored",
    )))
    extra: dict[str, Any] = {}
    no_policy = {"policy_name": None, "policy_version": None, "assessment": None}
    if choice == "Engaged":
        extra = {"channel": draw(channels()).value}
    elif choice == "Qualified":
        extra = {"stage": draw(st.sampled_from(("prospect", "target"))), **no_policy}
    elif choice == "Disqualified":
        extra = {"reason": draw(_SHORT_NAMES), **no_policy}
    elif choice == "SetAside":
        extra = {"reason": draw(_SHORT_NAMES)}
    elif choice in ("Reopened", "Restored"):
        extra = {"reason": draw(st.none() | _SHORT_NAMES)}
    elif choice == "Converted":
        extra = {"reference": draw(st.none() | _SHORT_NAMES), "caused_by": None}
    elif choice == "Assigned":
        extra = {"owner": draw(st.none() | owners())}
    elif choice == "Linked":
        extra = {"organization_id": draw(st.sampled_from(ids))}
    elif choice == "ProfileUpdated":
        extra = {"changes": draw(profile_changes())}
    event_class = getattr(Party, choice)
    return event_class(**common, **extra)
