"""Predictive lead scoring (pure): naive Bayes over the values of chosen variables in won and lost deals.

The approach of Odoo's predictive lead scoring. Training counts, for each chosen variable, how many won and
how many lost deals had each value (the party's facts as they stood when the deal was decided); the score
of a lead is the naive Bayes estimate of the chance it is won, in percent::

    prior * Π P(v | won) / (prior * Π P(v | won) + (1 - prior) * Π P(v | lost))

- ``prior`` is won / (won + lost) over the training deals;
- ``P(v | won) = (won with v + alpha) / (won with the variable set + alpha * k)``, Laplace smoothing
  (:data:`ALPHA`, alpha = 1), ``k`` the number of distinct values of the variable seen in training;
  alike for lost;
- a value never seen in training contributes nothing (its factor is left out), and so does a variable the
  lead has no value for: a missing value is not a value. Fields are defined and filled progressively, so
  "missing" on deals decided before a field existed says nothing about the leads of today;
- a multi-choice value counts each of its items as one value of the variable;
- numbers are bucketed by the quartiles of the training deals' values (the edges are kept in the model, so
  a lead is bucketed as the training deals were): ``< 1000``, ``1000 to < 5000``, ..., ``≥ 20000``.

Variables are the built-in :data:`BUILT_IN_VARIABLES` (the party's ``channel`` - where its interest came
from -, its ``kind``, its ``owner``) or custom fields and profile traits of the kinds in
:data:`SCORABLE_KINDS`. The stage is not a variable: the training deals' parties and the scored leads are at
different stages by construction. Every score explains itself (:class:`~crmcore.models.ScoreReason`).

:func:`auc` and :func:`top_decile` measure a ranking against outcomes (used by the scoring backtest).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from crmcore.exceptions import FieldNotDefined, InvalidInput
from crmcore.fields import FieldKind, FieldSet
from crmcore.models import ScoreReason

__all__ = [
    "ALPHA",
    "BUILT_IN_VARIABLES",
    "NUMBER_BUCKETS",
    "SCORABLE_KINDS",
    "ScoringModel",
    "ScoringVariable",
    "ValueCounts",
    "auc",
    "bucket_edges",
    "concordance",
    "percent",
    "rounded",
    "scoring_variables",
    "top_decile",
    "train",
    "values_of",
]

#: Laplace smoothing: every value of a variable counts as if seen once more among won and among lost deals.
ALPHA = 1

#: Variables read from the party itself rather than from a custom field or profile trait.
BUILT_IN_VARIABLES: tuple[str, ...] = ("channel", "kind", "owner")

#: The field kinds a variable may have: values from a closed list, flags, and numbers (bucketed).
SCORABLE_KINDS: frozenset[FieldKind] = frozenset({
    FieldKind.CHOICE, FieldKind.MULTI_CHOICE, FieldKind.LABEL, FieldKind.BOOLEAN, FieldKind.NUMBER,
})

#: How many buckets a number variable is cut into (by the quantiles of the training values).
NUMBER_BUCKETS = 4

_SCORE_PLACES = Decimal("0.1")
_RATIO_PLACES = Decimal("0.001")

#: A party's facts: a ``party_facts`` row (``crmcore.projections.facts``) or the joined facts.
Row = Mapping[str, Any]


class ScoringVariable(BaseModel):
    """One variable of a model: where its value is read (``party``: a built-in; ``custom`` / ``profile``:
    a field of that section), the kind of its values, and for numbers the bucket edges (ascending)."""

    model_config = ConfigDict(frozen=True)

    name: str
    source: Literal["party", "custom", "profile"]
    kind: str
    edges: tuple[Decimal, ...] = ()


class ValueCounts(BaseModel):
    """How many won and lost training deals had one value of a variable."""

    model_config = ConfigDict(frozen=True)

    won: int = 0
    lost: int = 0


class ScoringModel(BaseModel):
    """A trained model, immutable: its ``version`` among the store's models, when it was trained (effective
    time) and by whom, the moment its deals were decided before (None: all deals then), the variables and,
    per variable and value, the won and lost counts; ``won`` and ``lost`` count the training deals."""

    model_config = ConfigDict(frozen=True)

    version: int
    trained_at: datetime
    trained_on_until: datetime | None
    actor: str
    variables: tuple[ScoringVariable, ...]
    counts: dict[str, dict[str, ValueCounts]]
    won: int
    lost: int

    @property
    def decisions(self) -> int:
        """How many deals the model was trained on."""
        return self.won + self.lost

    @property
    def prior(self) -> Fraction:
        """The share of won deals among the training deals."""
        return Fraction(self.won, self.decisions)

    def score(self, row: Row) -> tuple[Decimal, list[ScoreReason]]:
        """The chance in percent (one decimal, halves to even) that a party with the facts ``row`` is won,
        and the reasons: one per value the party has, strongest first, unseen values last."""
        values = tuple(tuple(values_of(variable, row)) for variable in self.variables)
        known = self.scored.get(values)
        if known is None:
            known = self.scored[values] = self._score_of(values)
        return known[0], list(known[1])

    @cached_property
    def scored(self) -> dict[tuple[tuple[str, ...], ...], tuple[Decimal, tuple[ScoreReason, ...]]]:
        """Scores already computed, by the values of each variable (leads share a few combinations)."""
        return {}

    @cached_property
    def factors(self) -> dict[str, dict[str, tuple[Fraction, Fraction]]]:
        """Per variable and value seen: P(value | won) and P(value | lost), smoothed."""
        result: dict[str, dict[str, tuple[Fraction, Fraction]]] = {}
        for variable in self.variables:
            table = self.counts.get(variable.name, {})
            k = len(table)
            won_total = sum(c.won for c in table.values())
            lost_total = sum(c.lost for c in table.values())
            result[variable.name] = {
                value: (Fraction(c.won + ALPHA, won_total + ALPHA * k),
                        Fraction(c.lost + ALPHA, lost_total + ALPHA * k))
                for value, c in table.items()
            }
        return result

    def _score_of(self, values: tuple[tuple[str, ...], ...]) -> tuple[Decimal, tuple[ScoreReason, ...]]:
        won_side, lost_side = self.prior, 1 - self.prior
        weighed: list[tuple[Fraction, ScoreReason]] = []
        for variable, given in zip(self.variables, values, strict=True):
            table, factors = self.counts.get(variable.name, {}), self.factors[variable.name]
            for value in given:
                counts = table.get(value)
                if counts is None:
                    weighed.append((Fraction(0), ScoreReason(
                        variable=variable.name, value=value, won=0, lost=0, likelihood_ratio=None,
                        effect="unseen")))
                    continue
                if_won, if_lost = factors[value]
                won_side *= if_won
                lost_side *= if_lost
                ratio = if_won / if_lost
                effect: Literal["up", "down", "neutral"] = (
                    "up" if ratio > 1 else "down" if ratio < 1 else "neutral")
                weighed.append((max(ratio, 1 / ratio), ScoreReason(
                    variable=variable.name, value=value, won=counts.won, lost=counts.lost,
                    likelihood_ratio=rounded(ratio, _RATIO_PLACES), effect=effect)))
        weighed.sort(key=lambda pair: -pair[0])  # stable: equal strengths keep the variables' order
        chance = won_side / (won_side + lost_side)
        return rounded(chance * 100, _SCORE_PLACES), tuple(reason for _, reason in weighed)

    def stored(self) -> dict[str, Any]:
        """The model as the JSON-native data a ``ModelTrained`` event holds (see ``from_stored``)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> ScoringModel:
        """The model from its stored data."""
        return cls.model_validate(dict(data))


def scoring_variables(names: Sequence[str], fields: FieldSet) -> tuple[ScoringVariable, ...]:
    """The variables named (built-ins or active fields of :data:`SCORABLE_KINDS`), in the order given.

    Raises :class:`InvalidInput` for no names, a name given twice or a field of another kind, and
    :class:`FieldNotDefined` for a name that is neither a built-in nor an active field.
    """
    if isinstance(names, str) or not isinstance(names, Sequence) or not names:
        raise InvalidInput("variables: give one or more variable names",
                           [{"loc": ("variables",), "msg": "empty", "type": "too_short"}])
    chosen: list[ScoringVariable] = []
    for index, name in enumerate(names):
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput(f"variables.{index}: give a variable name",
                               [{"loc": ("variables", index), "msg": "not a name", "type": "string_type"}])
        name = name.strip()
        if any(v.name == name for v in chosen):
            raise InvalidInput(f"variables: {name!r} is named twice",
                               [{"loc": ("variables", index), "msg": "named twice", "type": "duplicate"}])
        if name in BUILT_IN_VARIABLES:
            chosen.append(ScoringVariable(name=name, source="party", kind=FieldKind.CHOICE.value))
            continue
        if name not in fields:
            raise FieldNotDefined(name, f"a scoring variable is one of {', '.join(BUILT_IN_VARIABLES)} "
                                        "or an active custom field or profile trait")
        definition = fields[name]
        if definition.kind not in SCORABLE_KINDS:
            kinds = ", ".join(sorted(k.value for k in SCORABLE_KINDS))
            message = (f"variables.{index}: {name} is a {definition.kind.value} field; "
                       f"scoring reads fields of the kinds {kinds}")
            raise InvalidInput(message, [{"loc": ("variables", index), "msg": message, "type": "field_kind"}])
        chosen.append(ScoringVariable(name=name, source=definition.section, kind=definition.kind.value))
    return tuple(chosen)


def values_of(variable: ScoringVariable, row: Row) -> list[str]:
    """The values (as text) ``row`` has for ``variable``: none when missing, each item of a multi-choice,
    ``true`` / ``false`` for a flag, the bucket label for a number."""
    if variable.source == "party":
        raw = row.get(variable.name)
    else:
        raw = (row.get("fields" if variable.source == "custom" else "profile") or {}).get(variable.name)
    if raw is None or raw == "" or raw == []:
        return []
    if isinstance(raw, bool):
        return ["true" if raw else "false"]
    if variable.kind == FieldKind.NUMBER.value:
        return [_bucket(Decimal(str(raw)), variable.edges)]
    if isinstance(raw, list | tuple):
        return list(dict.fromkeys(str(item) for item in raw))
    return [str(raw)]


def bucket_edges(values: Iterable[Decimal], buckets: int = NUMBER_BUCKETS) -> tuple[Decimal, ...]:
    """The edges cutting ``values`` into ``buckets`` by their quantiles (fewer when values repeat): a value
    below the first edge is in the first bucket, at or above the last edge in the last."""
    ordered = sorted(values)
    if not ordered:
        return ()
    cuts = {ordered[len(ordered) * i // buckets] for i in range(1, buckets)}
    return tuple(sorted(c for c in cuts if c > ordered[0]))


def _bucket(value: Decimal, edges: tuple[Decimal, ...]) -> str:
    if not edges:
        return "all"
    if value < edges[0]:
        return f"< {_plain(edges[0])}"
    for low, high in itertools.pairwise(edges):
        if value < high:
            return f"{_plain(low)} to < {_plain(high)}"
    return f"≥ {_plain(edges[-1])}"


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")


def train(
    samples: Iterable[tuple[Row, bool]],
    variables: Sequence[ScoringVariable],
    *,
    version: int,
    trained_at: datetime,
    trained_on_until: datetime | None,
    actor: str,
) -> ScoringModel:
    """A model from ``samples``: each a decided deal's party facts as they stood at the decision, and
    whether it was won. Number variables get their bucket edges from the samples first.

    Raises :class:`InvalidInput` when the samples hold no won or no lost deal (nothing to learn from).
    """
    rows = list(samples)
    won = sum(1 for _, outcome in rows if outcome)
    lost = len(rows) - won
    if not won or not lost:
        missing = "won" if not won else "lost"
        message = (f"no {missing} deal to learn from ({won} won, {lost} lost): a model needs both won "
                   "and lost decided deals")
        raise InvalidInput(message, [{"loc": ("until",), "msg": message, "type": "no_training_data"}])
    edged: list[ScoringVariable] = []
    for variable in variables:
        if variable.kind == FieldKind.NUMBER.value:
            numbers = [Decimal(str(v)) for row, _ in rows if (v := _raw(variable, row)) is not None]
            variable = variable.model_copy(update={"edges": bucket_edges(numbers)})
        edged.append(variable)
    counts: dict[str, dict[str, list[int]]] = {v.name: {} for v in edged}
    for row, outcome in rows:
        for variable in edged:
            table = counts[variable.name]
            for value in values_of(variable, row):
                tally = table.setdefault(value, [0, 0])
                tally[0 if outcome else 1] += 1
    return ScoringModel(
        version=version, trained_at=trained_at, trained_on_until=trained_on_until, actor=actor,
        variables=tuple(edged), won=won, lost=lost,
        counts={name: {value: ValueCounts(won=w, lost=lo) for value, (w, lo) in sorted(table.items())}
                for name, table in counts.items()},
    )


def _raw(variable: ScoringVariable, row: Row) -> Any:
    section = row.get("fields" if variable.source == "custom" else "profile") or {}
    value = section.get(variable.name)
    return None if value in (None, "") or isinstance(value, bool) else value


# ---------------------------------------------------------------------------------- measuring a ranking


def auc(scored: Iterable[tuple[Decimal, bool]]) -> Fraction | None:
    """The chance that a converting item (``True``) outranks a non-converting one, ties counting half
    (the area under the ROC curve, by ranks); None unless both kinds are present."""
    items = sorted(scored, key=lambda pair: pair[0])
    positives = sum(1 for _, converted in items if converted)
    negatives = len(items) - positives
    if not positives or not negatives:
        return None
    return Fraction(concordance(items), positives * negatives)


def concordance(items: Sequence[tuple[Decimal, bool]]) -> Fraction:
    """The number of (converting, non-converting) pairs where the converting one is scored higher, ties
    counting half; ``items`` sorted by score."""
    pairs = Fraction(0)
    below = 0  # non-converting items scored strictly lower than the current group
    index = 0
    while index < len(items):
        end = index
        while end < len(items) and items[end][0] == items[index][0]:
            end += 1
        group = items[index:end]
        group_positives = sum(1 for _, converted in group if converted)
        group_negatives = len(group) - group_positives
        pairs += group_positives * below + Fraction(group_positives * group_negatives, 2)
        below += group_negatives
        index = end
    return pairs


def top_decile(ranked: Sequence[tuple[Decimal, str, bool]]) -> tuple[int, int]:
    """How many items are in the top tenth (rounded up) of ``ranked`` (score, tie-breaking key, converted)
    by score, best first, ties broken by the key - and how many of those converted."""
    if not ranked:
        return 0, 0
    size = math.ceil(len(ranked) / 10)
    best = sorted(ranked, key=lambda item: (-item[0], item[1]))[:size]
    return size, sum(1 for _, _, converted in best if converted)


def percent(part: int | Fraction, whole: int | Fraction) -> Decimal | None:
    """``part`` of ``whole`` in percent, one decimal (halves to even); None when ``whole`` is zero."""
    if not whole:
        return None
    return rounded(Fraction(part) * 100 / Fraction(whole), _SCORE_PLACES)


def rounded(value: Fraction, places: Decimal) -> Decimal:
    """``value`` as a decimal rounded to ``places`` (halves to even)."""
    with localcontext() as context:
        context.prec = 60
        exact = Decimal(value.numerator) / Decimal(value.denominator)
        return exact.quantize(places, rounding=ROUND_HALF_EVEN)
