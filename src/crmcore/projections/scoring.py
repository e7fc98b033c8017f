"""The data predictive scoring learns from and is judged against, from the ``pipeline`` and ``party_facts``
views folded at past moments (``ViewRunner.fold_at``), and the scoring backtest (pure).

**No hindsight.** A decided deal (won or lost) teaches the model with its party's facts *as they stood when
the deal was decided*, never as they stand today: a field filled in after the decision, a later
engagement, a later merge change nothing of what the deal teaches. To keep the number of moments the
``party_facts`` view is folded at small (one fold per distinct moment, all in one read of the log), a
decision reads its party's facts **as they stood at the start of its day (UTC)** - what was known before
that day, never anything later - unless the party was registered that same day: then its facts just
before the decision itself. A party merged into another before the decision is read through the party it
was merged into (as it stood then); one merged away later is read as it was then.

**Backtest.** At each cut-off: a model is trained on the deals decided before it (as the ``pipeline`` view
stood at the cut-off), the leads are the parties in the chosen stages at the cut-off (not merged away, not
set aside) with their facts as they stood then, and a lead *converted* when, after the cut-off and before
the window's end (the cut-off plus the horizon, at most the backtest's end), it reached the customer stage
or won a deal (followed to the party it was merged into, if it was merged since).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

from crmcore.models import ScoringBacktest, ScoringCutoff, ScoringFigures
from crmcore.policies.scoring import (
    ScoringModel,
    ScoringVariable,
    concordance,
    percent,
    rounded,
    top_decile,
    train,
)
from crmcore.projections.asof import utc_text
from crmcore.projections.base import Row
from crmcore.projections.facts import PartyFactsView, survivor_of
from crmcore.projections.runner import ViewRunner
from crmcore.projections.storage import ViewStorage
from crmcore.values import Stage

__all__ = [
    "Decision",
    "cutoff_label",
    "decisions_in",
    "fact_moment",
    "facts_at",
    "leads_in",
    "live_row",
    "scoring_backtest_of",
    "training_samples",
]

_AUC_PLACES = Decimal("0.001")
_LIFT_PLACES = Decimal("0.01")


@dataclass(frozen=True)
class Decision:
    """A decided deal: its party, when it was decided (UTC text) and whether it was won."""

    party_id: str
    closed_at: str
    won: bool


def decisions_in(pipeline_rows: Iterable[Row]) -> list[Decision]:
    """The won and lost deals among ``pipeline`` rows, in order of decision (then party)."""
    found = [Decision(str(r["party_id"]), utc_text(r["closed_at"]), r["status"] == "won")
             for r in pipeline_rows if r["status"] in ("won", "lost") and r.get("closed_at")]
    found.sort(key=lambda d: (d.closed_at, d.party_id, not d.won))
    return found


def fact_moment(decision: Decision, registered_at: str | None) -> datetime:
    """The moment the facts of ``decision``'s party are read at: the start of its day (UTC), or the decision
    itself when the party was registered that day (or is unknown)."""
    decided = datetime.fromisoformat(decision.closed_at).astimezone(UTC)
    day = decided.replace(hour=0, minute=0, second=0, microsecond=0)
    if registered_at is not None and utc_text(registered_at) < utc_text(day):
        return day
    return decided


def facts_at(
    runner: ViewRunner, storage: ViewStorage, decisions: Iterable[Decision], extra: Iterable[datetime] = (),
) -> tuple[dict[Decision, datetime], dict[str, dict[str, Row]]]:
    """The moment each decision's facts are read at (:func:`fact_moment`), and the ``party_facts`` view
    folded at all of them and at the ``extra`` moments, by moment as UTC text: one read of the log."""
    runner.catch_up(PartyFactsView.name)
    registered = {str(r["party_id"]): r.get("registered_at")
                  for r in storage.rows(PartyFactsView.name, {})}
    moments = {d: fact_moment(d, registered.get(d.party_id)) for d in decisions}
    wanted = sorted({utc_text(m) for m in (*moments.values(), *extra)})
    if not wanted:
        return moments, {}
    folds = runner.fold_at(PartyFactsView.name, [datetime.fromisoformat(t) for t in wanted])
    return moments, dict(zip(wanted, folds, strict=True))


def cutoff_label(every: str | None, moment: datetime) -> str:
    """A cut-off's label: ``YYYY-MM`` / ``YYYY-Qn`` for the period it starts, else its ISO date-time."""
    if every == "month":
        return f"{moment.year:04d}-{moment.month:02d}"
    if every == "quarter":
        return f"{moment.year:04d}-Q{(moment.month - 1) // 3 + 1}"
    return moment.isoformat()


def live_row(fold: Mapping[str, Row], party_id: str) -> Row | None:
    """The ``party_facts`` row ``party_id`` stands for in ``fold``: its own, or that of the party it was
    merged into (through chains of merges); None when it did not exist."""
    return fold.get(survivor_of(party_id, fold.get))


def training_samples(
    decisions: Iterable[Decision], moments: Mapping[Decision, datetime],
    folds: Mapping[str, Mapping[str, Row]],
) -> list[tuple[Row, bool]]:
    """Each decision's party facts at its moment (``folds`` by moment as UTC text) and whether it was won;
    decisions whose party did not exist then are left out."""
    samples: list[tuple[Row, bool]] = []
    for decision in decisions:
        row = live_row(folds[utc_text(moments[decision])], decision.party_id)
        if row is not None:
            samples.append((row, decision.won))
    return samples


def leads_in(fold: Mapping[str, Row], stages: Sequence[str]) -> list[Row]:
    """The parties of ``fold`` in ``stages``, neither merged away nor set aside, by party id."""
    wanted = set(stages)
    rows = [r for r in fold.values()
            if r.get("merged_into") is None and not r.get("set_aside") and r["stage"] in wanted]
    rows.sort(key=lambda r: str(r["party_id"]))
    return rows


def scoring_backtest_of(
    *,
    variables: Sequence[ScoringVariable],
    cutoffs: Sequence[datetime],
    labels: Sequence[str],
    window_ends: Sequence[datetime],
    pipelines_at: Sequence[Mapping[str, Row]],
    leads_at: Sequence[Mapping[str, Row]],
    moments: Mapping[Decision, datetime],
    folds: Mapping[str, Mapping[str, Row]],
    final_facts: Mapping[str, Row],
    final_pipeline: Mapping[str, Row],
    stages: Sequence[str],
    horizon_days: int | None,
    until: datetime,
    timezone: str,
) -> ScoringBacktest:
    """The scoring backtest (see the module docstring) from the views folded at each moment it reads.

    ``pipelines_at[i]`` and ``leads_at[i]`` are the ``pipeline`` and ``party_facts`` views as they stood at
    cut-off ``i``; ``folds`` the ``party_facts`` view at every decision's moment (``moments``); the final
    folds are the views at the backtest's end.
    """
    wins_of: dict[str, list[str]] = {}  # the live party at the end -> when its deals were won
    for row in final_pipeline.values():
        if row["status"] == "won" and row.get("closed_at"):
            owner = live_row(final_facts, str(row["party_id"]))
            key = str(owner["party_id"]) if owner is not None else str(row["party_id"])
            wins_of.setdefault(key, []).append(utc_text(row["closed_at"]))
    results: list[ScoringCutoff] = []
    totals = _Totals()
    for index, cutoff in enumerate(cutoffs):
        start, end = utc_text(cutoff), utc_text(window_ends[index])
        decisions = decisions_in(pipelines_at[index].values())
        samples = training_samples(decisions, moments, folds)
        won = sum(1 for _, outcome in samples if outcome)
        lost = len(samples) - won
        model: ScoringModel | None = None
        if won and lost:
            model = train(samples, variables, version=index + 1, trained_at=cutoff, trained_on_until=cutoff,
                          actor="backtest")
        ranked: list[tuple[Decimal, str, bool]] = []
        converted_count = 0
        leads = leads_in(leads_at[index], stages)
        for lead in leads:
            party_id = str(lead["party_id"])
            converted = _converted(party_id, final_facts, wins_of, start, end)
            converted_count += converted
            if model is not None:
                ranked.append((model.score(lead)[0], party_id, converted))
        figures = _figures(ranked, len(leads), converted_count)
        totals.add(ranked, len(leads), converted_count)
        results.append(ScoringCutoff(
            **figures.model_dump(), label=labels[index], cutoff=cutoff, window_end=window_ends[index],
            decisions=len(samples), won=won, lost=lost, trained=model is not None,
        ))
    return ScoringBacktest(
        variables=[v.name for v in variables], stages=[Stage(s) for s in stages], timezone=timezone,
        horizon_days=horizon_days, until=until, cutoffs=results, overall=totals.figures(),
    )


def _converted(
    party_id: str, final_facts: Mapping[str, Row], wins_of: Mapping[str, list[str]], start: str, end: str,
) -> bool:
    """Whether the lead (or the party it was merged into since) became a customer or won a deal from
    ``start`` to before ``end``."""
    row = live_row(final_facts, party_id)
    key = str(row["party_id"]) if row is not None else party_id
    converted_at = row.get("converted_at") if row is not None else None
    if converted_at and start <= utc_text(converted_at) < end:
        return True
    return any(start <= at < end for at in wins_of.get(key, ()))


def _figures(ranked: list[tuple[Decimal, str, bool]], leads: int, converted: int) -> ScoringFigures:
    items = sorted(((score, outcome) for score, _, outcome in ranked), key=lambda pair: pair[0])
    positives = sum(1 for _, outcome in items if outcome)
    pairs = positives * (len(items) - positives)
    area = concordance(items) / pairs if pairs else None
    size, top = top_decile(ranked)
    return _assemble(leads, converted, area, size, top, ranked_converted=positives, ranked=len(ranked))


def _assemble(
    leads: int, converted: int, area: Fraction | None, size: int, top: int, *, ranked_converted: int,
    ranked: int,
) -> ScoringFigures:
    """The figures; the base rate the lift compares with is that of the leads that were scored."""
    base = percent(converted, leads)
    top_rate = percent(top, size)
    lift = None
    if size and ranked_converted:
        lift = rounded(Fraction(top, size) / Fraction(ranked_converted, ranked), _LIFT_PLACES)
    return ScoringFigures(
        leads=leads, converted=converted, base_rate_percent=base,
        auc=rounded(area, _AUC_PLACES) if area is not None else None,
        top_decile_leads=size, top_decile_converted=top, top_decile_rate_percent=top_rate, lift=lift,
    )


@dataclass
class _Totals:
    leads: int = 0
    converted: int = 0
    pairs: int = 0
    concordant: Fraction = Fraction(0)
    top_size: int = 0
    top_converted: int = 0
    ranked: int = 0
    ranked_converted: int = 0

    def add(self, ranked: list[tuple[Decimal, str, bool]], leads: int, converted: int) -> None:
        items = sorted(((score, outcome) for score, _, outcome in ranked), key=lambda pair: pair[0])
        positives = sum(1 for _, outcome in items if outcome)
        self.leads += leads
        self.converted += converted
        self.pairs += positives * (len(items) - positives)
        self.concordant += concordance(items)
        size, top = top_decile(ranked)
        self.top_size += size
        self.top_converted += top
        self.ranked += len(items)
        self.ranked_converted += positives

    def figures(self) -> ScoringFigures:
        area = self.concordant / self.pairs if self.pairs else None
        return _assemble(self.leads, self.converted, area, self.top_size, self.top_converted,
                         ranked_converted=self.ranked_converted, ranked=self.ranked)
