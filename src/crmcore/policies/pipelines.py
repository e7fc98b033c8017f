"""Sales pipelines and the rules an opportunity moves by (pure: no I/O).

A :class:`Pipeline` names its stages in order; each stage has a default win probability and a forecast
category. The last two stages are always the won stage (100 %, closed) and the lost stage (0 %, omitted);
the stages before them are open. The ``check_*`` functions return nothing when a move is allowed and raise
:class:`~crmcore.exceptions.IllegalTransition` (a move the opportunity's state does not allow) or
:class:`~crmcore.exceptions.InvalidInput` (a name that is not configured) when it is not, so the aggregate
can call them before it records anything.

Where the default numbers come from is told in ``docs/opportunities.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from rapidfuzz import fuzz, process

from crmcore.exceptions import IllegalTransition, InvalidInput
from crmcore.values import Stage

__all__ = [
    "DEFAULT_LOST_REASONS",
    "DEFAULT_PIPELINE",
    "OPPORTUNITY_STAGES",
    "ForecastCategory",
    "OpportunityStatus",
    "Pipeline",
    "PipelineStage",
    "check_can_change",
    "check_can_reopen",
    "check_lost_reasons",
    "check_party_can_have_opportunity",
    "closest",
    "pipeline_named",
]

#: The lowest score (0-100, :func:`rapidfuzz.fuzz.ratio` on folded text) at which a name is suggested.
SUGGESTION_CUTOFF = 60.0


class ForecastCategory(StrEnum):
    """How a forecast counts an opportunity at a stage."""

    PIPELINE = "pipeline"
    BEST_CASE = "best_case"
    COMMIT = "commit"
    CLOSED = "closed"
    OMITTED = "omitted"


class OpportunityStatus(StrEnum):
    """Whether an opportunity is still being worked, or was won or lost."""

    OPEN = "open"
    WON = "won"
    LOST = "lost"


@dataclass(frozen=True)
class PipelineStage:
    """One stage of a pipeline: its name, default win probability (whole percent) and forecast category."""

    name: str
    probability: int
    category: ForecastCategory

    def __post_init__(self) -> None:
        name = self.name.strip() if isinstance(self.name, str) else ""
        if not 1 <= len(name) <= 100:
            raise InvalidInput(f"a stage name holds 1 to 100 characters: {self.name!r}")
        object.__setattr__(self, "name", name)
        if isinstance(self.probability, bool) or not isinstance(self.probability, int) \
                or not 0 <= self.probability <= 100:
            raise InvalidInput(f"stage {name!r}: a probability is a whole percent from 0 to 100")
        try:
            object.__setattr__(self, "category", ForecastCategory(self.category))
        except ValueError:
            choices = ", ".join(c.value for c in ForecastCategory)
            raise InvalidInput(f"stage {name!r}: the forecast category is one of {choices}") from None


@dataclass(frozen=True)
class Pipeline:
    """Named stages in order: open stages, then exactly one won stage and one lost stage, last.

    The won stage has probability 100 and category closed, the lost stage 0 and omitted; open stages
    have any other category. Stage names are unique (ignoring case).
    """

    name: str
    stages: tuple[PipelineStage, ...]

    def __post_init__(self) -> None:
        name = self.name.strip() if isinstance(self.name, str) else ""
        if not 1 <= len(name) <= 100:
            raise InvalidInput(f"a pipeline name holds 1 to 100 characters: {self.name!r}")
        object.__setattr__(self, "name", name)
        stages = tuple(self.stages)
        object.__setattr__(self, "stages", stages)
        if len(stages) < 3:
            raise InvalidInput(f"pipeline {name!r} needs at least one open stage, a won and a lost stage")
        folded = [s.name.casefold() for s in stages]
        if len(set(folded)) != len(folded):
            raise InvalidInput(f"pipeline {name!r} names a stage twice")
        won, lost = stages[-2], stages[-1]
        if (won.probability, won.category) != (100, ForecastCategory.CLOSED):
            raise InvalidInput(f"pipeline {name!r}: the next-to-last stage is the won stage (100 %, closed)")
        if (lost.probability, lost.category) != (0, ForecastCategory.OMITTED):
            raise InvalidInput(f"pipeline {name!r}: the last stage is the lost stage (0 %, omitted)")
        for stage in stages[:-2]:
            if stage.category in (ForecastCategory.CLOSED, ForecastCategory.OMITTED):
                raise InvalidInput(
                    f"pipeline {name!r}: open stage {stage.name!r} cannot be in category {stage.category}"
                )

    @property
    def open_stages(self) -> tuple[PipelineStage, ...]:
        """The stages an open opportunity can be at, in order."""
        return self.stages[:-2]

    @property
    def won(self) -> PipelineStage:
        """The stage a won opportunity is at."""
        return self.stages[-2]

    @property
    def lost(self) -> PipelineStage:
        """The stage a lost opportunity is at."""
        return self.stages[-1]

    def stage(self, name: str) -> PipelineStage:
        """The stage called ``name`` (ignoring case and outer spaces); InvalidInput suggests the closest."""
        wanted = name.strip().casefold() if isinstance(name, str) else ""
        for stage in self.stages:
            if stage.name.casefold() == wanted:
                return stage
        raise _unknown("stage", name, [s.name for s in self.stages], f" in pipeline {self.name!r}")

    def open_stage(self, name: str) -> PipelineStage:
        """The open stage called ``name``: the won and lost stages are reached by winning and losing."""
        stage = self.stage(name)
        if stage not in self.open_stages:
            verb = "win" if stage == self.won else "lose"
            raise IllegalTransition(f"stage {stage.name!r} is reached by closing: {verb} the opportunity",
                                    stage=stage.name)
        return stage


#: The pipeline every CRM has unless configured otherwise (see docs/opportunities.md for the numbers).
DEFAULT_PIPELINE = Pipeline(
    "default",
    (
        PipelineStage("first contact", 10, ForecastCategory.PIPELINE),
        PipelineStage("qualification", 20, ForecastCategory.PIPELINE),
        PipelineStage("needs analysis", 40, ForecastCategory.BEST_CASE),
        PipelineStage("proposal", 60, ForecastCategory.BEST_CASE),
        PipelineStage("negotiation", 80, ForecastCategory.COMMIT),
        PipelineStage("won", 100, ForecastCategory.CLOSED),
        PipelineStage("lost", 0, ForecastCategory.OMITTED),
    ),
)

#: Why deals are lost, unless a CRM is configured with its own list.
DEFAULT_LOST_REASONS: tuple[str, ...] = (
    "price", "competitor", "no budget", "no decision", "timing", "product fit", "lost contact", "other",
)


def _fold(text: str) -> str:
    return " ".join(text.casefold().split())


def closest(text: str, choices: Iterable[str]) -> str | None:
    """The choice spelt closest to ``text``, if close enough to suggest."""
    found = process.extractOne(text, list(choices), scorer=fuzz.ratio, processor=_fold,
                               score_cutoff=SUGGESTION_CUTOFF)
    return None if found is None else str(found[0])


def _unknown(what: str, given: object, choices: Sequence[str], where: str = "") -> InvalidInput:
    suggestion = closest(given, choices) if isinstance(given, str) else None
    hint = f" (did you mean {suggestion!r}?)" if suggestion else f" (one of {', '.join(choices)})"
    message = f"unknown {what} {given!r}{where}{hint}"
    error = InvalidInput(message, [{"loc": (what,), "msg": message, "type": f"unknown_{what}"}])
    error.suggestion = suggestion  # type: ignore[attr-defined]
    return error


def pipeline_named(name: str, pipelines: Sequence[Pipeline]) -> Pipeline:
    """The configured pipeline called ``name`` (ignoring case); InvalidInput suggests the closest."""
    wanted = name.strip().casefold() if isinstance(name, str) else ""
    for pipeline in pipelines:
        if pipeline.name.casefold() == wanted:
            return pipeline
    raise _unknown("pipeline", name, [p.name for p in pipelines])


def check_lost_reasons(reasons: Iterable[str], allowed: Sequence[str]) -> list[str]:
    """The reasons, each spelt as configured and given once; at least one, each from ``allowed``."""
    by_fold = {_fold(r): r for r in allowed}
    checked: list[str] = []
    for reason in reasons:
        known = by_fold.get(_fold(reason)) if isinstance(reason, str) else None
        if known is None:
            raise _unknown("reason", reason, list(allowed))
        if known not in checked:
            checked.append(known)
    if not checked:
        message = "a lost opportunity needs at least one reason"
        raise InvalidInput(message, [{"loc": ("reasons",), "msg": message, "type": "missing"}])
    return checked


def check_can_change(status: OpportunityStatus, what: str) -> None:
    """Only an open opportunity changes; a won or lost one changes only by being reopened."""
    if status is not OpportunityStatus.OPEN:
        raise IllegalTransition(f"the opportunity is {status.value}: reopen it to {what}", stage=status.value)


def check_can_reopen(status: OpportunityStatus) -> None:
    """Only a won or lost opportunity can be reopened."""
    if status is OpportunityStatus.OPEN:
        raise IllegalTransition("the opportunity is open: only a won or lost one can be reopened",
                                stage=status.value)


#: The party stages an opportunity can be opened for: qualified parties and customers.
OPPORTUNITY_STAGES = frozenset({Stage.PROSPECT, Stage.TARGET, Stage.CUSTOMER})


def check_party_can_have_opportunity(party_id: UUID, stage: Stage) -> None:
    """Opportunities are for prospects, targets and customers; not suspects, leads or the disqualified."""
    if stage not in OPPORTUNITY_STAGES:
        raise IllegalTransition(
            f"an opportunity needs a prospect, target or customer; the party is a {stage.value}",
            party_id=party_id, stage=stage.value,
        )
