"""The fast replay path: stored records read straight from each store equal the store's own decoding, and
views folded from records agree with views folded from events, whatever the batching."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from crmcore import CRM
from crmcore.projections import fold, read_events
from crmcore.projections import records as records_module
from crmcore.projections.base import fold_records
from crmcore.projections.pipeline import PipelineView
from crmcore.projections.records import RecordReader, StoredRecord, record_of
from crmcore.projections.runner import ViewRunner
from crmcore.projections.storage import MemoryViewStorage
from crmcore.testing.sales import play_sales, simulate_sales

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def a_varied_history(crm: CRM) -> None:
    """Parties with identity values, consent, custom fields, a merge, bulk registrations, opportunities."""
    ada = crm.register_party(kind="person", name="Ada Lovelace", emails=["ada@example.com"],
                             phones=["+39 02 1234 5678"], birth_date="1985-12-10", actor="u",
                             effective_at=T0)
    acme = crm.register_party(kind="organization", name="Acme S.p.A.", vat_number="IT00743110157",
                              actor="u", effective_at=T0)
    crm.engage(ada, channel="email", actor="u", effective_at=T0 + DAY)
    crm.qualify(ada, actor="u", effective_at=T0 + 2 * DAY)
    crm.update_identity(ada, family_name="King", web_links=["https://ada.example.com/"], actor="u")
    crm.subscribe_to(ada, channel="email", source="web form", lawful_basis="consent", actor="u")
    crm.record_delivery(ada, address="ada@example.com", raw_code="550 5.1.1", actor="m")
    crm.define_field(name="legal_form", kind="choice", choices=["S.p.A.", "S.r.l."], actor="admin")
    crm.set_fields(acme, values={"legal_form": "S.p.A."}, actor="u")
    twin = crm.register_party(kind="person", name="Ada King", actor="u")
    crm.merge(ada, twin, actor="u", reason="same person")
    crm.bulk_register([{"kind": "person", "name": f"Bulk {i}", "actor": "import"} for i in range(5)])
    deal = crm.open_opportunity(ada, title="Engines", value="1200.50", currency="EUR",
                                expected_close=date(2026, 3, 31), owner="ann", actor="u",
                                effective_at=T0 + 3 * DAY)
    crm.move_stage(deal, stage="proposal", actor="u", effective_at=T0 + 4 * DAY)
    crm.win(deal, actor="u", effective_at=T0 + 5 * DAY)
    crm.reopen_opportunity(deal, reason="signature missing", actor="u", effective_at=T0 + 6 * DAY)
    crm.lose(deal, reasons=["price", "timing"], actor="u", effective_at=T0 + 7 * DAY)


@pytest.mark.parametrize("settings_crm", ["plain", "encrypted and compressed"], indirect=True)
def test_the_fast_reader_gives_what_the_store_itself_decodes(settings_crm: CRM) -> None:
    any_crm = settings_crm
    a_varied_history(any_crm)
    app = any_crm._app
    expected = [record_of(event, position) for position, event in read_events(app.recorder, app.mapper)]
    reader = RecordReader(app.recorder, app.mapper)
    decoded_by_the_store = []
    store_decoding = app.mapper.to_domain_event

    def count(stored: StoredEvent) -> Any:
        decoded_by_the_store.append(stored.topic)
        return store_decoding(stored)

    app.mapper.to_domain_event = count  # type: ignore[method-assign,assignment]
    try:
        got = [record for page in reader.pages([], page_size=7) for record in page]
    finally:
        app.mapper.to_domain_event = store_decoding  # type: ignore[method-assign]
    assert len(got) == any_crm.position > 20
    assert got == expected
    assert decoded_by_the_store == [], "every current event should take the fast path"
    topics = PipelineView.topics()
    assert [r for page in reader.pages(topics, after=3, page_size=2) for r in page] == [
        r for r in expected if r.topic in topics and r.position > 3]


@pytest.mark.parametrize("read_ahead", [False, True])
def test_pages_read_ahead_or_in_turn_and_sliced_or_whole_give_every_record_once_in_order(
    crm: CRM, monkeypatch: pytest.MonkeyPatch, read_ahead: bool,
) -> None:
    a_varied_history(crm)
    app = crm._app
    reader = RecordReader(app.recorder, app.mapper)
    expected = [r for page in reader.pages([]) for r in page]
    reader._read_ahead = read_ahead
    monkeypatch.setattr(records_module, "DECODED_SLICE", 3)
    whole = list(reader.pages([], page_size=7))
    sliced = list(reader.pages([], page_size=7, sliced=True))
    skimmed = list(reader.skimmed_pages([], frozenset(), page_size=7, sliced=True))
    assert [len(page) for page in whole][:-1] == [7] * (len(whole) - 1)
    assert max(map(len, sliced)) == 3
    assert len(sliced) > len(whole)
    for pages in (whole, sliced, skimmed):
        assert [r for page in pages for r in page] == expected


@pytest.mark.parametrize("row_batch", [1, 4, 1000])
def test_catching_up_a_view_read_in_slices_applies_every_event_once(
    crm: CRM, monkeypatch: pytest.MonkeyPatch, row_batch: int,
) -> None:
    _a_simulated_quarter(crm)
    monkeypatch.setattr(records_module, "DECODED_SLICE", 3)
    app = crm._app
    runner = ViewRunner(app.recorder, app.mapper, MemoryViewStorage(), [PipelineView()], row_batch=row_batch)
    assert runner.catch_up() == len([1 for p in runner.reader.pages(PipelineView.topics()) for _ in p])
    assert runner.catch_up() == 0
    rows = runner.storage.rows(PipelineView.name, {})
    kept = crm.view_rows(PipelineView.name)
    assert sorted(rows, key=lambda r: r["id"]) == sorted(kept, key=lambda r: r["id"])


def decode_one(reader: RecordReader, stored: StoredEvent) -> StoredRecord:
    """The record the fast reader makes of ``stored`` at position 1."""
    (record,) = reader._decode([(1, stored.originator_id, stored.originator_version, stored.topic,
                                 stored.state)])
    return record


def test_an_event_stored_by_an_older_class_version_is_upcast_on_the_fast_path_too() -> None:
    with CRM("memory:") as crm:
        party = crm.register_party(kind="person", name="Ada", stage="prospect", emails=["a@x.it"], actor="u")
        (stored,) = crm._app.recorder.select_events(party)
        state = json.loads(stored.state)
        assert state.pop("class_version") == 2
        state.pop("identity")
        old = StoredEvent(stored.originator_id, stored.originator_version, stored.topic,
                          json.dumps(state).encode())
        record = decode_one(RecordReader(crm._app.recorder, crm._app.mapper), old)
        assert record == record_of(crm._app.mapper.to_domain_event(old), 1)
        assert record.data["identity"] == {}
        assert "class_version" not in record.data


def test_a_value_of_a_type_the_fast_decoder_does_not_know_is_decoded_by_the_store() -> None:
    with CRM("memory:") as crm:
        party = crm.register_party(kind="person", name="Ada", actor="u")
        (stored,) = crm._app.recorder.select_events(party)
        state = json.loads(stored.state)
        state["name"] = {"_type_": "decimal_str", "_data_": "1.50"}  # a standard type where none is expected
        state["effective_at"] = {"_type_": "datetime_iso", "_data_": "2026-01-05T09:00:00+01:00"}
        state["extra"] = [{"deep": {"_type_": "uuid_hex", "_data_": UUID(int=7).hex}}]
        odd = json.dumps(state).encode()
        reader = RecordReader(crm._app.recorder, crm._app.mapper)
        record = decode_one(reader, StoredEvent(stored.originator_id, 1, stored.topic, odd))
        expected = record_of(crm._app.mapper.to_domain_event(
            StoredEvent(stored.originator_id, 1, stored.topic, odd)), 1)
        assert record == expected
        assert record.data["extra"] == [{"deep": str(UUID(int=7))}]
        unknown = dict(state, name={"_type_": "something_else", "_data_": "x"})
        with pytest.raises(Exception, match="something_else"):  # the store refuses it too: not guessed at
            decode_one(reader, StoredEvent(stored.originator_id, 1, stored.topic,
                                           json.dumps(unknown).encode()))


def _a_simulated_quarter(crm: CRM) -> None:
    steps = simulate_sales(opportunities=12, start=T0 - 200 * DAY, days=120, seed=3, touches_per_week=1.5)
    party = crm.register_party(kind="person", name="Buyer", stage="prospect", actor="u",
                               effective_at=T0 - 300 * DAY)
    play_sales(crm, steps, lambda _: party)


def test_the_pipeline_view_folded_from_records_equals_the_one_folded_from_events(crm: CRM) -> None:
    _a_simulated_quarter(crm)
    app, view = crm._app, PipelineView()
    events = [e for _, e in read_events(app.recorder, app.mapper, topics=view.topics())]
    records: list[StoredRecord] = [r for p in RecordReader(app.recorder, app.mapper).pages(view.topics())
                                   for r in p]
    from_events = fold(view, events)
    assert fold_records(view, records) == from_events
    assert len(from_events) == 12
    assert {r["id"]: r for r in crm.view_rows(PipelineView.name)} == from_events


@pytest.mark.parametrize(("page_size", "row_batch"), [(1, 1), (3, 2), (5, 100)])
def test_catching_up_in_any_page_size_and_row_batch_gives_the_same_rows(
    crm: CRM, page_size: int, row_batch: int,
) -> None:
    _a_simulated_quarter(crm)
    app = crm._app
    runner = ViewRunner(app.recorder, app.mapper, MemoryViewStorage(), [PipelineView()], page_size=page_size,
                        row_batch=row_batch)
    applied = runner.catch_up()
    assert applied == len([1 for p in runner.reader.pages(PipelineView.topics()) for _ in p])
    rows = runner.storage.rows(PipelineView.name, {})
    kept = crm.view_rows(PipelineView.name)
    assert sorted(rows, key=lambda r: r["id"]) == sorted(kept, key=lambda r: r["id"])
    assert runner.catch_up() == 0


def test_records_and_rows_never_share_mutable_state(crm: CRM) -> None:
    _a_simulated_quarter(crm)
    before = [dict(r) for r in crm.view_rows(PipelineView.name)]
    rows: dict[str, Any] = crm._runner.fold_as_of(PipelineView.name, datetime.now(UTC))
    for row in rows.values():
        row["stage"] = "tampered"
    assert crm.view_rows(PipelineView.name) == before


def test_several_processes_fold_the_same_rows_as_one(store_url: str, store_kind: str) -> None:
    if store_kind == "memory":
        pytest.skip("a memory store lives in one object (and is always folded in one process)")
    with CRM(store_url) as one, CRM(store_url, replay_workers=2) as two:
        assert two._runner.shared is not None
        two._runner.shared.share_from = 1  # share even this small log
        _a_simulated_quarter(one)
        assert two.rebuild_view(PipelineView.name) == one.rebuild_view(PipelineView.name) > 0
        by_id = sorted(one.view_rows(PipelineView.name), key=lambda r: r["id"])
        assert sorted(two.view_rows(PipelineView.name), key=lambda r: r["id"]) == by_id
        moment = T0 - 120 * DAY
        assert two.forecast(at=moment) == one.forecast(at=moment)
        known = datetime.now(UTC)
        assert two.forecast(at=moment, known_at=known) == one.forecast(at=moment, known_at=known)
        until = (T0 - 60 * DAY).date()
        assert two.backtest(periods=4, until=until) == one.backtest(periods=4, until=until)
        assert two.backtest(periods=4, until=until).calibration  # the simulated deals are in it


def _a_campaign_with_reports(crm: CRM, parties: list[UUID]) -> None:
    """A newsletter and telemarketing campaign with simulated reports on the sent recipients and calls;
    the first of ``parties`` merged into a fresh party afterwards."""
    from crmcore.testing.campaigns import running_campaign, simulate_engagement, store

    recipients = [*parties, *(crm.register_party(kind="person", name=f"R{i}", actor="u") for i in range(30))]
    campaign = running_campaign(newsletter=recipients, telemarketing=recipients[:10], at=T0 - 40 * DAY)
    crm._save(campaign)
    store(crm, simulate_engagement(campaign.id, recipients, called=recipients[:10],
                                           start=T0 - 40 * DAY, seed=3), batch_size=7)
    survivor = crm.register_party(kind="person", name="Survivor", actor="u")
    crm.merge(survivor, recipients[-1], actor="u", reason="duplicate")


def test_a_small_log_is_folded_in_one_process(tmp_path: os.PathLike[str]) -> None:
    with CRM(f"sqlite:///{os.fspath(tmp_path)}/small.db", replay_workers=2) as crm:
        _a_simulated_quarter(crm)
        assert crm._runner.shared is not None
        assert crm._runner._share_up_to(crm._runner.view(PipelineView.name)) == 0  # under SHARE_FROM
        crm._runner.shared.share_from = 1
        assert crm._runner._share_up_to(crm._runner.view(PipelineView.name)) == crm.position


def test_only_views_keyed_by_aggregate_or_combining_rows_are_shared_between_processes() -> None:
    from crmcore.projections.campaigns import CampaignRecipientsView, PartyEngagementView
    from crmcore.projections.parallel import can_share
    from crmcore.projections.parties import PartiesView

    class ByTopic(PipelineView):
        def record_key(self, record: StoredRecord) -> str:
            return record.topic

    assert can_share(PipelineView())
    assert not can_share(ByTopic())
    assert not can_share(PartiesView())
    assert can_share(CampaignRecipientsView())
    assert can_share(PartyEngagementView())


@pytest.mark.parametrize("workers", [0, -1, True, 1.5, "2"])
def test_a_bad_number_of_replay_workers_is_refused(workers: object) -> None:
    from crmcore import InvalidInput

    with pytest.raises(InvalidInput):
        CRM("memory:", replay_workers=workers)  # type: ignore[arg-type]


def test_every_record_view_of_a_crm_rebuilds_the_same_on_several_processes(
    store_url: str, store_kind: str,
) -> None:
    if store_kind == "memory":
        pytest.skip("a memory store lives in one object (and is always folded in one process)")
    from crmcore.projections.base import RecordView
    from crmcore.projections.parallel import can_share

    with CRM(store_url) as one, CRM(store_url, replay_workers=2) as two:
        assert two._runner.shared is not None
        two._runner.shared.share_from = 1
        _a_simulated_quarter(one)
        ada = one.register_party(kind="person", name="Ada", stage="lead", actor="u",
                                 emails=["ada@example.com"])
        twin = one.register_party(kind="person", name="Ada L", stage="lead", actor="u")
        one.subscribe_to(ada, channel="email", source="form", lawful_basis="consent", actor="u")
        one.merge(ada, twin, actor="u", reason="duplicate")
        one.define_segment(name="Leads", criteria={"stage": "lead"}, actor="u")
        one.plan_task(kind="call", subject="Call", assignees=["ann"], party_id=ada, actor="u",
                      deadline="2031-01-31")
        _a_campaign_with_reports(one, [ada, twin])
        one.record_delivery(ada, address="ada@example.com", outcome="hard_bounce", actor="u")  # a decision
        shared = [v for v in one._runner.views.values() if isinstance(v, RecordView) and can_share(v)]
        assert {v.name for v in shared} >= {"pipeline", "party_facts", "tasks", "segments", "campaigns",
                                            "campaign_recipients", "party_engagement", "address_decisions"}
        for view in shared:
            assert two.rebuild_view(view.name) == one.rebuild_view(view.name) > 0, view.name
            assert two.view_rows(view.name) == one.view_rows(view.name), view.name


def test_views_folded_together_as_of_a_moment_equal_each_folded_alone(crm: CRM) -> None:
    a_varied_history(crm)
    parties = [crm.register_party(kind="person", name=f"P{i}", actor="u") for i in range(3)]
    _a_campaign_with_reports(crm, parties)
    names = ["campaign_recipients", "party_engagement", "pipeline", "opportunities", "party_facts"]
    for moment in (T0 - 30 * DAY, T0 + 10 * DAY, datetime.now(UTC)):
        for known in (None, datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC)):
            together = crm._runner.fold_together_as_of(names, moment, known)
            assert list(together) == names
            assert together == {n: crm._runner.fold_as_of(n, moment, known) for n in names}


def test_a_view_of_rare_events_reads_on_from_where_it_found_nothing_not_from_its_last_event(
    crm: CRM, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from crmcore.projections.parties import PartiesView

    party = crm.register_party(kind="person", name="Ada", actor="u")
    crm.update_views()
    for index in range(5):  # events the parties view does not read
        crm.plan_task(kind="call", subject=f"call {index}", assignees=["giulia"], actor="u",
                      deadline="2030-01-01")
    runner = crm._runner
    log_end = crm.position
    read_after: list[int] = []
    pages = runner._pages

    def spy(view: Any, after: int) -> Any:
        if view.name == PartiesView.name:
            read_after.append(after)
        return pages(view, after)

    monkeypatch.setattr(runner, "_pages", spy)
    assert runner.catch_up(PartiesView.name) == 0
    assert runner.catch_up(PartiesView.name) == 0
    assert read_after[-1] == log_end, "the second catch-up reads on from the log's end it found"
    crm.set_aside(party, reason="stale", actor="u")  # one of its events: still applied
    assert runner.catch_up(PartiesView.name) == 1
    assert crm.view_rows(PartiesView.name)[0]["set_aside"] is True
    # Another process moving the view on makes the remembered end useless: read from the stored position.
    runner._read_to[PartiesView.name] = (0, 10**9)
    crm.restore(party, reason="worked", actor="u")
    assert runner.catch_up(PartiesView.name) == 1
