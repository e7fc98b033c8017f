"""A model-based state machine over opportunity commands, driving a real CRM.

Every rule sends one command, good or bad, to a :class:`crmcore.CRM` and to :class:`OpportunityModel`, a plain
record of what each opportunity must hold under the rules of ``docs/opportunities.md``. The model says
whether the command is refused and whether it records an event; the machine checks the CRM agrees, and that a
refused command stored nothing. After every step the invariants check each opportunity against the model and
the rules themselves:

- a won opportunity has probability 100 and category closed, a lost one 0 and omitted;
- a closed opportunity stays exactly as it closed until it is reopened;
- the value is never negative and keeps its currency;
- every close-date move is kept, in order;
- the ``opportunities`` view lists every opportunity as it stands;
- the forecast's open and weighted pipeline equal the sums over the model's open opportunities (value *
  probability / 100), and its won and lost totals the model's closed ones;
- the win/loss analysis counts the model's lost opportunities under each of their reasons, and its won
  and lost totals by owner add up to the model's;
- every few steps, the ``pipeline`` view rebuilt from zero equals the one kept up to date, and the forecast
  as of now equals the forecast from the view;
- every few steps, the ``pipeline`` view as of the moment after each earlier step (folded at all of them in
  one read, and the as-of forecast at one of them) equals the view as it was read live at that step.

Run it against a store of your choice::

    from crmcore.testing import opportunity_machine

    TestOpportunitiesInMemory = opportunity_machine(lambda: "memory:")
"""

from __future__ import annotations

import unittest
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from hypothesis import note, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, initialize, invariant, rule

from crmcore.exceptions import CrmError, PartyMerged
from crmcore.policies.pipelines import (
    DEFAULT_LOST_REASONS,
    DEFAULT_PIPELINE,
    ForecastCategory,
    OpportunityStatus,
)
from crmcore.projections.pipeline import PipelineView, forecast_of
from crmcore.testing.lifecycle import CrmMachine, StoreUrlFactory, machine_case, send_command
from crmcore.values import utc_now

__all__ = ["OpportunityMachine", "OpportunityModel", "OpportunityRecord", "opportunity_machine"]

_STAGES = {s.name: s for s in DEFAULT_PIPELINE.stages}
_OPEN = [s.name for s in DEFAULT_PIPELINE.open_stages]
_START = date(2027, 1, 1)
#: How many steps pass between two checks that rebuild the ``pipeline`` view from zero.
REBUILD_EVERY = 5

#: Stage names a command may give: every stage, differently spelt ones, and ones no pipeline has.
stage_names = st.sampled_from([*_STAGES, "Proposal", " negotiation ", "propsal", "closing"])
#: Amounts, some negative, some with more decimals than a currency keeps.
amounts = st.decimals(min_value=-100, max_value=10**9, places=3, allow_nan=False, allow_infinity=False)
#: Lost reasons as a caller gives them: known, differently spelt, unknown, none.
lost_reasons = st.lists(
    st.sampled_from([*DEFAULT_LOST_REASONS, "Price", "budget", "competitors"]), max_size=3,
)


@dataclass
class OpportunityRecord:
    """What one opportunity must hold."""

    party: UUID
    owner: str
    amount: Decimal
    currency: str
    stage: str
    probability: int
    category: ForecastCategory
    expected_close: date
    status: OpportunityStatus = OpportunityStatus.OPEN
    reasons: list[str] = field(default_factory=list)
    close_dates: list[tuple[date, date]] = field(default_factory=list)
    last_open_stage: str = ""
    version: int = 1

    def set_stage(self, name: str) -> None:
        stage = _STAGES[name]
        self.stage, self.probability, self.category = stage.name, stage.probability, stage.category


class OpportunityModel:
    """The parties (their stage, whether merged) and the opportunities, as plain data."""

    def __init__(self) -> None:
        self.party_stage: dict[UUID, str] = {}
        self.merged_into: dict[UUID, UUID] = {}
        self.opportunities: dict[UUID, OpportunityRecord] = {}

    @staticmethod
    def open_stage(given: str) -> str | None:
        """The open stage a given name means (None: unknown, or the won or lost stage)."""
        name = given.strip().casefold()
        return name if name in _OPEN else None

    @staticmethod
    def reasons(given: list[str]) -> list[str] | None:
        """The lost reasons as stored, or None when they are refused."""
        known = {r.casefold(): r for r in DEFAULT_LOST_REASONS}
        stored: list[str] = []
        for reason in given:
            if reason.casefold() not in known:
                return None
            if known[reason.casefold()] not in stored:
                stored.append(known[reason.casefold()])
        return stored or None


class OpportunityMachine(CrmMachine):
    """Opens opportunities for parties at every stage and sends them every command, good and bad."""

    parties = Bundle("parties")
    opportunities = Bundle("opportunities")

    def __init__(self) -> None:
        super().__init__()
        self.model = OpportunityModel()
        self.closed_as: dict[UUID, dict[str, Any]] = {}
        self.steps = 0
        #: The live ``pipeline`` view's rows after each step, and the moment they stood at.
        self.past: list[tuple[datetime, list[dict[str, Any]]]] = []

    # ------------------------------------------------------------------ helpers

    def _send(self, opportunity: UUID, accepted: bool, records: bool, command: str, **fields: Any) -> None:
        """Send ``command`` (see :func:`send_command`) and count the event it records in the model."""
        send_command(self.crm, opportunity, command, fields, accepted=accepted, records=records)
        if accepted and records:
            self.model.opportunities[opportunity].version += 1

    def _record(self, opportunity: UUID) -> OpportunityRecord:
        return self.model.opportunities[opportunity]

    # ------------------------------------------------------------------ parties

    @initialize(target=parties)
    def a_prospect(self) -> UUID:
        """Every example starts with a prospect, so commands have something to act on from the first step."""
        return self._register("prospect")

    @initialize(target=opportunities)
    def an_opportunity(self) -> UUID:
        """And with an opportunity of another prospect."""
        return self._open(self._register("prospect"), Decimal("1000"), None)

    @rule(target=parties, stage=st.sampled_from(["suspect", "lead", "prospect", "customer"]))
    def register(self, stage: str) -> UUID:
        return self._register(stage)

    def _register(self, stage: str) -> UUID:
        party = self.crm.register_party(kind="person", name="Party", stage=stage, actor="machine")
        self.model.party_stage[party] = stage
        return party

    @rule(survivor=parties, loser=parties)
    def merge(self, survivor: UUID, loser: UUID) -> None:
        m = self.model
        if survivor == loser or survivor in m.merged_into or loser in m.merged_into:
            return
        self.crm.merge(survivor, loser, actor="machine", reason="duplicate")
        m.merged_into[loser] = survivor
        m.party_stage[survivor] = self.crm.get_party(survivor).stage.value  # a merge may advance it

    # ------------------------------------------------------------------ opportunities

    @rule(target=opportunities, party=parties, amount=amounts, stage=st.none() | stage_names)
    def open(self, party: UUID, amount: Decimal, stage: str | None) -> UUID:
        return self._open(party, amount, stage)

    def _open(self, party: UUID, amount: Decimal, stage: str | None) -> UUID:
        m = self.model
        before = self.crm.position
        start = _OPEN[0] if stage is None else m.open_stage(stage)
        refusal: type[Exception] | None = None
        if amount < 0:  # input is checked first
            refusal = CrmError
        elif party in m.merged_into:
            refusal = PartyMerged
        elif m.party_stage[party] not in ("prospect", "target", "customer") or start is None:
            refusal = CrmError
        note(f"open({party}, {amount}, {stage!r}) expected {'refused' if refusal else 'accepted'}")
        refused: CrmError | None = None
        try:
            opportunity = self.crm.open_opportunity(
                party, title="Deal", value=amount, currency="EUR", expected_close=_START, owner="ann",
                stage=stage, actor="machine",
            )
        except CrmError as error:
            refused = error
        if refused is not None:
            assert refusal is not None, f"refused: {refused!r}"
            assert isinstance(refused, refusal), f"refused with {refused!r}, expected {refusal.__name__}"
            assert self.crm.position == before, "a refused opening stored something"
            return UUID(int=0)  # an id nothing has: every later command on it must be refused
        assert refusal is None, "an opening the rules refuse was accepted"
        assert start is not None
        record = OpportunityRecord(
            party=party, owner="ann", amount=amount.quantize(Decimal("0.01")), currency="EUR",
            stage=start, probability=0, category=ForecastCategory.PIPELINE, expected_close=_START,
            last_open_stage=start,
        )
        record.set_stage(start)
        m.opportunities[opportunity] = record
        return opportunity

    def _open_one(self, opportunity: UUID) -> OpportunityRecord | None:
        """The record of an opportunity that exists and is open; None if commands on it must be refused."""
        record = self.model.opportunities.get(opportunity)
        return record if record is not None and record.status is OpportunityStatus.OPEN else None

    @rule(opportunity=opportunities, stage=stage_names)
    def move_stage(self, opportunity: UUID, stage: str) -> None:
        record, target = self._open_one(opportunity), self.model.open_stage(stage)
        if record is None or target is None:
            return self._send(opportunity, False, False, "move_stage", stage=stage)
        default = _STAGES[target]
        records = (record.stage, record.probability) != (target, default.probability)
        self._send(opportunity, True, records, "move_stage", stage=stage)
        record.set_stage(target)
        record.last_open_stage = target
        return None

    @rule(opportunity=opportunities, amount=amounts, currency=st.sampled_from(["EUR", "EUR", "USD"]))
    def reestimate(self, opportunity: UUID, amount: Decimal, currency: str) -> None:
        record = self._open_one(opportunity)
        if record is None or amount < 0 or currency != record.currency:
            return self._send(opportunity, False, False, "reestimate", value=amount, currency=currency)
        stored = amount.quantize(Decimal("0.01"))
        self._send(opportunity, True, stored != record.amount, "reestimate", value=amount, currency=currency)
        record.amount = stored
        return None

    @rule(opportunity=opportunities, days=st.integers(-400, 400))
    def move_close_date(self, opportunity: UUID, days: int) -> None:
        record = self._open_one(opportunity)
        moved = _START + timedelta(days=days)
        if record is None:
            return self._send(opportunity, False, False, "move_close_date", expected_close=moved)
        records = moved != record.expected_close
        self._send(opportunity, True, records, "move_close_date", expected_close=moved)
        if records:
            record.close_dates.append((record.expected_close, moved))
            record.expected_close = moved
        return None

    @rule(opportunity=opportunities, owner=st.sampled_from(["ann", "bob", "", "  "]))
    def change_owner(self, opportunity: UUID, owner: str) -> None:
        record = self._open_one(opportunity)
        if record is None or not owner.strip():
            return self._send(opportunity, False, False, "change_owner", owner=owner)
        self._send(opportunity, True, owner != record.owner, "change_owner", owner=owner)
        record.owner = owner
        return None

    @rule(opportunity=opportunities, probability=st.integers(-5, 105))
    def override_probability(self, opportunity: UUID, probability: int) -> None:
        record = self._open_one(opportunity)
        if record is None or not 0 <= probability <= 100:
            return self._send(opportunity, False, False, "override_probability", probability=probability)
        records = probability != record.probability
        self._send(opportunity, True, records, "override_probability", probability=probability)
        record.probability = probability
        return None

    @rule(opportunity=opportunities)
    def win(self, opportunity: UUID) -> None:
        record = self._open_one(opportunity)
        if record is None:
            return self._send(opportunity, False, False, "win")
        self._send(opportunity, True, True, "win")
        self._close(opportunity, record, OpportunityStatus.WON, "won", [])
        return None

    @rule(opportunity=opportunities, reasons=lost_reasons)
    def lose(self, opportunity: UUID, reasons: list[str]) -> None:
        record, stored = self._open_one(opportunity), self.model.reasons(reasons)
        if record is None or stored is None:
            return self._send(opportunity, False, False, "lose", reasons=reasons)
        self._send(opportunity, True, True, "lose", reasons=reasons)
        self._close(opportunity, record, OpportunityStatus.LOST, "lost", stored)
        return None

    def _close(
        self, opportunity: UUID, record: OpportunityRecord, status: OpportunityStatus, stage: str,
        reasons: list[str],
    ) -> None:
        record.status, record.reasons = status, reasons
        record.set_stage(stage)
        self.closed_as[opportunity] = _comparable(self.crm.get_opportunity(opportunity).model_dump())

    @rule(opportunity=opportunities, stage=st.none() | stage_names)
    def reopen(self, opportunity: UUID, stage: str | None) -> None:
        record = self.model.opportunities.get(opportunity)
        target = None if record is None else (
            record.last_open_stage if stage is None else self.model.open_stage(stage))
        if record is None or record.status is OpportunityStatus.OPEN or target is None:
            return self._send(opportunity, False, False, "reopen_opportunity", stage=stage, reason="again")
        self._send(opportunity, True, True, "reopen_opportunity", stage=stage, reason="again")
        record.status, record.reasons = OpportunityStatus.OPEN, []
        record.set_stage(target)
        record.last_open_stage = target
        del self.closed_as[opportunity]
        return None

    # ------------------------------------------------------------------ invariants

    @invariant()
    def every_opportunity_holds_what_the_model_says(self) -> None:
        for opportunity, record in self.model.opportunities.items():
            view = self.crm.get_opportunity(opportunity)
            assert view.version == record.version, (view.version, record.version)
            assert (view.stage, view.probability, view.category) == (
                record.stage, record.probability, record.category), view
            assert (view.status, view.reasons, view.owner) == (record.status, record.reasons, record.owner)
            assert (view.value.amount, view.value.currency) == (record.amount, record.currency)
            assert view.expected_close == record.expected_close

    @invariant()
    def closing_fixes_the_odds(self) -> None:
        for opportunity in self.model.opportunities:
            view = self.crm.get_opportunity(opportunity)
            if view.status is OpportunityStatus.WON:
                assert (view.probability, view.category) == (100, ForecastCategory.CLOSED)
            elif view.status is OpportunityStatus.LOST:
                assert (view.probability, view.category) == (0, ForecastCategory.OMITTED)
                assert view.reasons, "a lost opportunity has at least one reason"
            else:
                assert view.category not in (ForecastCategory.CLOSED, ForecastCategory.OMITTED)

    @invariant()
    def a_closed_opportunity_stays_as_it_closed(self) -> None:
        for opportunity, closed in self.closed_as.items():
            assert _comparable(self.crm.get_opportunity(opportunity).model_dump()) == closed

    @invariant()
    def the_value_is_never_negative(self) -> None:
        for opportunity in self.model.opportunities:
            assert self.crm.get_opportunity(opportunity).value.amount >= 0

    @invariant()
    def every_close_date_move_is_kept_in_order(self) -> None:
        for opportunity, record in self.model.opportunities.items():
            history = self.crm.get_opportunity(opportunity).close_date_history
            assert [(h.previous, h.expected_close) for h in history] == record.close_dates

    @invariant()
    def the_view_lists_every_opportunity_as_it_stands(self) -> None:
        rows = {o.id: o for o in self.crm.opportunities()}
        assert set(rows) == set(self.model.opportunities)
        for opportunity, record in self.model.opportunities.items():
            row = rows[opportunity]
            assert (row.status, row.stage, row.probability, row.owner) == (
                record.status, record.stage, record.probability, record.owner)
            assert row.value.amount == record.amount
            assert row.expected_close == record.expected_close

    @invariant()
    def the_forecast_sums_the_open_opportunities_value_times_probability(self) -> None:
        records = self.model.opportunities.values()
        open_ = [r for r in records if r.status is OpportunityStatus.OPEN]
        value = sum((r.amount for r in open_), Decimal(0))
        weighted = sum((r.amount * r.probability / 100 for r in open_), Decimal(0))
        won = [r.amount for r in records if r.status is OpportunityStatus.WON]
        lost = [r.amount for r in records if r.status is OpportunityStatus.LOST]
        eur = self.crm.forecast().currencies.get("EUR")
        if eur is None:
            assert not records, "opportunities exist but the forecast has none"
            return
        assert (eur.open.count, eur.open.value, eur.open.weighted) == (len(open_), value, weighted), eur.open
        assert (eur.won.count, eur.won.value) == (len(won), sum(won, Decimal(0))), eur.won
        assert (eur.lost.count, eur.lost.value) == (len(lost), sum(lost, Decimal(0))), eur.lost
        assert sum((f.weighted for f in eur.by_stage.values()), Decimal(0)) == weighted
        assert sum((f.weighted for f in eur.by_owner.values()), Decimal(0)) == weighted

    @invariant()
    def the_pipeline_view_rebuilt_from_zero_equals_the_one_kept_up_to_date(self) -> None:
        self.steps += 1
        if self.steps % REBUILD_EVERY:
            return
        now = self.crm.forecast()
        as_of_now = self.crm.forecast(at=datetime.now(UTC))
        assert as_of_now.model_copy(update={"at": None}) == now, "the forecast as of now differs from now"
        kept = sorted(self.crm.view_rows(PipelineView.name), key=lambda r: str(r["id"]))
        self.crm.rebuild_view(PipelineView.name)
        rebuilt = sorted(self.crm.view_rows(PipelineView.name), key=lambda r: str(r["id"]))
        assert rebuilt == kept, "the pipeline view rebuilt from zero differs from the one kept up to date"


    @invariant()
    def the_win_loss_analysis_counts_what_the_model_closed(self) -> None:
        records = list(self.model.opportunities.values())
        eur = self.crm.win_loss().currencies.get("EUR")
        lost = [r for r in records if r.status is OpportunityStatus.LOST]
        won = [r for r in records if r.status is OpportunityStatus.WON]
        if eur is None:
            assert not lost + won, "closed opportunities exist but the analysis has none"
            return
        by_reason: dict[str, tuple[int, Decimal]] = {}
        for record in lost:
            for reason in record.reasons:
                count, value = by_reason.get(reason, (0, Decimal(0)))
                by_reason[reason] = (count + 1, value + record.amount)
        assert {k: (v.count, v.value) for k, v in eur.lost_by_reason.items()} == by_reason
        assert sum(v.count for v in eur.lost_by_owner.values()) == len(lost) == eur.lost.count
        assert sum(v.count for v in eur.won_by_owner.values()) == len(won) == eur.won.count

    @invariant()
    def the_view_as_of_each_past_step_is_the_view_read_live_then(self) -> None:
        rows = sorted(self.crm.view_rows(PipelineView.name), key=_by_id)
        moment = utc_now()
        while utc_now() <= moment:  # the next step's events take effect strictly after this moment
            pass
        self.past.append((moment, rows))
        if len(self.past) % REBUILD_EVERY:
            return
        moments = [m + timedelta(microseconds=1) for m, _ in self.past]  # folds keep events before a moment
        folded = self.crm._runner.fold_at(PipelineView.name, moments)
        for (moment, live), rows_then in zip(self.past, folded, strict=True):
            assert sorted(rows_then.values(), key=_by_id) == live, f"the view as of {moment} differs"
        moment, live = self.past[len(self.past) // 2]
        assert self.crm.forecast(at=moment) == forecast_of(live, at=moment), "the as-of forecast differs"


def _by_id(row: dict[str, Any]) -> str:
    return str(row["id"])


def _comparable(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k not in ("version", "last_effective_at")}


def opportunity_machine(
    store_url_factory: StoreUrlFactory, *, settings: settings | None = None, name: str = "Opportunities",
) -> type[unittest.TestCase]:
    """A ``unittest.TestCase`` running :class:`OpportunityMachine` on stores from ``store_url_factory``.

    The factory is called once per example and returns a URL, or a context manager yielding one and
    cleaning up afterwards.
    """
    return machine_case(OpportunityMachine, store_url_factory, settings=settings, name=name)
