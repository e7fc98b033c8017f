"""The ``ScoringModels`` aggregate: the predictive scoring models trained in a store, each kept forever.

One per store, with a fixed id (like the field catalog). Each training is a ``ModelTrained`` event holding
the whole model - its version (1, 2, ...), the variables, the won and lost counts per value, the training
deals' won and lost totals (the prior), when it was trained and by whom, and the moment its deals were
decided before - so every recorded score can name the model that produced it, and that model can be read
back exactly as it was.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from crmcore.aggregates.catalog import NAMESPACE
from crmcore.aggregates.party import _check_not_future
from crmcore.exceptions import ScoringModelNotFound
from crmcore.policies.scoring import ScoringModel
from crmcore.values import utc_now

__all__ = ["SCORING_MODELS_ID", "ScoringModels"]

#: The id of the one scoring-models aggregate of a store.
SCORING_MODELS_ID = uuid5(NAMESPACE, "crmcore:scoring-models")


class ScoringModels(Aggregate):
    """Every predictive scoring model trained in the store, by version."""

    class Event(Aggregate.Event):
        """Every event says who did it and when it took effect."""

        actor: str
        effective_at: datetime

    class Started(Event, Aggregate.Created):
        """No model yet (saved together with the first one)."""

    class ModelTrained(Event):
        """Model ``model_version`` was trained (``effective_at`` is its ``trained_at``) on ``won`` + ``lost``
        deals decided before ``trained_on_until`` (None: all deals decided then)."""

        model_version: int
        trained_on_until: datetime | None
        variables: list[dict[str, Any]]
        counts: dict[str, dict[str, Any]]
        won: int
        lost: int

    # ------------------------------------------------------------------ creation

    @staticmethod
    def create_id(**_: Any) -> UUID:
        """Always :data:`SCORING_MODELS_ID`: a store has one, and two writers starting it collide."""
        return SCORING_MODELS_ID

    @event(Started)
    def __init__(self, *, actor: str, effective_at: datetime) -> None:
        self.models: list[dict[str, Any]] = []

    @classmethod
    def start(cls, *, actor: str, effective_at: datetime | None = None) -> ScoringModels:
        """A new aggregate with no model (saved together with the first model)."""
        return cls(actor=actor, effective_at=_check_not_future(effective_at or utc_now()))

    # ------------------------------------------------------------------ commands

    @property
    def next_version(self) -> int:
        """The version the next model trained gets."""
        return len(self.models) + 1

    def record(self, model: ScoringModel) -> None:
        """Keep ``model``, whose version must be :attr:`next_version`."""
        if model.version != self.next_version:
            raise ValueError(f"model version {model.version}: the next model is version {self.next_version}")
        stored = model.stored()
        self._model_trained(
            model_version=model.version, trained_on_until=model.trained_on_until,
            variables=stored["variables"], counts=stored["counts"], won=model.won, lost=model.lost,
            actor=model.actor, effective_at=_check_not_future(model.trained_at),
        )

    # ------------------------------------------------------------------ reading

    def model(self, version: int | None = None) -> ScoringModel:
        """Model ``version`` (default: the latest); :class:`ScoringModelNotFound` if there is none."""
        if version is None:
            version = len(self.models)
        if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= len(self.models):
            raise ScoringModelNotFound(version, len(self.models))
        return ScoringModel.from_stored(self.models[version - 1])

    # ------------------------------------------------------------------ mutators (never raise)

    @event(ModelTrained)
    def _model_trained(
        self, model_version: int, trained_on_until: datetime | None, variables: list[dict[str, Any]],
        counts: dict[str, dict[str, Any]], won: int, lost: int, actor: str, effective_at: datetime,
    ) -> None:
        self.models.append({
            "version": model_version, "trained_at": effective_at, "trained_on_until": trained_on_until,
            "actor": actor, "variables": variables, "counts": counts, "won": won, "lost": lost,
        })
