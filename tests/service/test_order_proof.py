"""Order-proof, idempotent handlers (issue #11, item 2): state that several events write moves only forward by
a version or attempt number the events carry, so any order of the same events, and any replay of them, ends
in the same state. Every order of each set of events is fed (so every pair arrives both ways round), through
the services' real consumer path (handler + inbox + parking) on real PostgreSQL.
"""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from deploy.people import certno as make_certno
from deploy.people import luhn_account
from services.claims.models import Claim, Coverage
from services.notifications.models import Recipient
from services.payments.models import Payee
from shared.events import (
    CoverageEnded,
    EventPayload,
    MemberContactChanged,
    MemberCovered,
    MemberDetailsCorrected,
    PaymentFailed,
    PaymentInstructionCreated,
    PaymentSettled,
)
from shared.messaging import Consumer
from tests.conftest import ServiceClient
from tests.service.test_claims import claim_body, cover, decide, publish_period, submit

ORDERS = list(itertools.permutations(range(4)))
TODAY = date.today()


def consumer(app: FastAPI) -> Consumer:
    spec = app.state.spec
    return Consumer(name=spec.name, db=app.state.db, tables=spec.tables, handlers=spec.handlers, topics=[],
                    bootstrap="unused", producer=None)  # type: ignore[arg-type]


async def feed(app: FastAPI, events: list[EventPayload], order: tuple[int, ...]) -> None:
    """Apply the events in the given order, as the consumer would: parked ones come back when woken; then
    replay every one of them (new event ids, as a broker's redelivery after a replay from the outbox could
    bypass nothing: the handlers alone must make it harmless)."""
    worker = consumer(app)
    for index in order:
        await worker.apply(events[index].envelope(), events[index])
        await worker.apply_parked()
    for event in events:
        await worker.apply(event.envelope(), event)
        await worker.apply_parked()


async def parked_count(app: FastAPI, reference: str) -> int:
    parked = app.state.spec.tables.parked
    async with app.state.db.transaction() as session:
        return len((await session.execute(select(parked.c.event_id).where(
            parked.c.consumer == app.state.spec.name, parked.c.reference == reference))).all())


# --- a claim's payment state (claims, from payments' events on two keys) -------------------------------
def payment_events(claim_id: str, member_id: str) -> list[EventPayload]:
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    amount = Decimal("2760.00")
    return [
        PaymentInstructionCreated(instruction_id=first, claim_id=claim_id, member_id=member_id, attempt=1,
                                  amount=amount),
        PaymentFailed(instruction_id=first, claim_id=claim_id, member_id=member_id, reason="账户已销户",
                      attempt=1),
        PaymentInstructionCreated(instruction_id=second, claim_id=claim_id, member_id=member_id, attempt=2,
                                  amount=amount),
        PaymentSettled(instruction_id=second, claim_id=claim_id, member_id=member_id, amount=amount, attempt=2),
    ]


async def approved_claim(rolled_back: ServiceClient) -> tuple[FastAPI, str, str]:
    app, client = await rolled_back("claims")
    member = await cover(app, await publish_period(app))
    created = await submit(client, member, base="10000.00")  # aid 2760.00, final at the agency point
    r = await decide(client, created["claim_id"], member.branch.agency_reviewer())
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text
    return app, created["claim_id"], member.member_id


async def payment_state(app: FastAPI, claim_id: str) -> tuple[Any, ...]:
    async with app.state.db.transaction() as session:
        claim = await session.get(Claim, uuid.UUID(claim_id))
        assert claim is not None
        return claim.status, claim.payment_status, claim.payment_attempt, claim.payment_instruction_id


@pytest.mark.parametrize("order", ORDERS, ids=["-".join(map(str, o)) for o in ORDERS])
async def test_a_claims_payment_state_ends_paid_whatever_order_its_events_arrive_in(
        rolled_back: ServiceClient, order: tuple[int, ...]) -> None:
    app, claim_id, member_id = await approved_claim(rolled_back)
    events = payment_events(claim_id, member_id)
    await feed(app, events, order)
    paid = events[3]
    assert isinstance(paid, PaymentSettled)
    assert await payment_state(app, claim_id) == ("paid", "paid", 2, paid.instruction_id)


PAIRS = list(itertools.permutations(range(4), 2))


@pytest.mark.parametrize("pair", PAIRS, ids=[f"{a}-then-{b}" for a, b in PAIRS])
async def test_any_two_payment_events_end_in_the_same_state_in_either_order(
        rolled_back: ServiceClient, pair: tuple[int, int]) -> None:
    """Two claims get the same two events, one in each order: the same state (and never paid undone, never
    payment_failed turned back into approved by a late instruction_created of the failed attempt)."""
    a, b = pair
    app, one, member_one = await approved_claim(rolled_back)
    _, other, member_other = await approved_claim(rolled_back)
    events_one, events_other = payment_events(one, member_one), payment_events(other, member_other)
    await feed(app, [events_one[a], events_one[b]], (0, 1))
    await feed(app, [events_other[b], events_other[a]], (0, 1))
    state_one, state_other = await payment_state(app, one), await payment_state(app, other)
    assert state_one[:3] == state_other[:3]
    expected = {(0, 1): ("payment_failed", "failed", 1), (0, 2): ("approved", "pending", 2),
                (0, 3): ("paid", "paid", 2), (1, 2): ("approved", "pending", 2), (1, 3): ("paid", "paid", 2),
                (2, 3): ("paid", "paid", 2)}
    assert state_one[:3] == expected[(min(pair), max(pair))]


async def test_a_late_instruction_created_of_an_old_attempt_never_overwrites_paid(
        rolled_back: ServiceClient) -> None:
    app, claim_id, member_id = await approved_claim(rolled_back)
    events = payment_events(claim_id, member_id)
    await feed(app, events, (0, 1, 2, 3))
    worker = consumer(app)
    assert await worker.apply(events[0].envelope(), events[0])  # a new event id: past the inbox
    assert (await payment_state(app, claim_id))[:3] == ("paid", "paid", 2)


# --- a member's details (payments' payee, notifications' recipient, claims' coverages) ------------------
def member_events(member_id: str, path: list[str]) -> list[EventPayload]:
    rng = random.Random(member_id)
    certno, first_account, new_account = make_certno(rng), luhn_account(rng), luhn_account(rng)
    bank = "中国工商银行昆明五华支行"

    def covered(period: str, version: int, name: str, account: str, phone: str) -> MemberCovered:
        return MemberCovered(
            member_id=member_id, period=period, plans=["inpatient"], coverage_from=TODAY - timedelta(days=180),
            coverage_to=TODAY + timedelta(days=180), name=name, certno=certno, sex="female",
            member_type="in_service", unit=path[-1], unit_path=path, bank_account=account, bank_name=bank,
            phone=phone, renewing=False, fee=Decimal("150.00"), member_version=version)

    return [
        covered("p1", 1, "李娜", first_account, "13912345678"),
        MemberContactChanged(member_id=member_id, bank_account=new_account, bank_name=bank, phone="13800001111",
                             name="李娜", member_version=2),
        MemberDetailsCorrected(member_id=member_id, name="李𠮷娜", certno=certno, sex="female",
                               member_type="in_service", member_version=3),
        covered("p2", 3, "李𠮷娜", new_account, "13800001111"),
    ]


def branch_path() -> list[str]:
    return [f"C{uuid.uuid4().hex[:8]}", f"O{uuid.uuid4().hex[:8]}", f"A{uuid.uuid4().hex[:8]}",
            f"U{uuid.uuid4().hex[:8]}"]


@pytest.mark.parametrize("order", ORDERS, ids=["-".join(map(str, o)) for o in ORDERS])
async def test_payments_keeps_the_newest_bank_details_whatever_the_order(
        rolled_back: ServiceClient, order: tuple[int, ...]) -> None:
    app, _ = await rolled_back("payments")
    member_id = f"M{uuid.uuid4().hex[:10]}"
    events = member_events(member_id, branch_path())
    await feed(app, events, order)
    newest = events[3]
    assert isinstance(newest, MemberCovered)
    async with app.state.db.transaction() as session:
        payee = await session.get(Payee, member_id)
    assert payee is not None
    assert (payee.name, payee.bank_account, payee.member_version) == ("李𠮷娜", newest.bank_account, 3)
    assert await parked_count(app, f"member:{member_id}") == 0


@pytest.mark.parametrize("order", ORDERS, ids=["-".join(map(str, o)) for o in ORDERS])
async def test_notifications_keeps_the_newest_phone_and_name_whatever_the_order(
        rolled_back: ServiceClient, order: tuple[int, ...]) -> None:
    app, _ = await rolled_back("notifications")
    member_id = f"M{uuid.uuid4().hex[:10]}"
    await feed(app, member_events(member_id, branch_path()), order)
    async with app.state.db.transaction() as session:
        recipient = await session.get(Recipient, member_id)
    assert recipient is not None
    assert (recipient.name, recipient.phone, recipient.member_version) == ("李𠮷娜", "13800001111", 3)
    assert await parked_count(app, f"member:{member_id}") == 0


@pytest.mark.parametrize("order", ORDERS, ids=["-".join(map(str, o)) for o in ORDERS])
async def test_claims_coverages_end_once_and_keep_the_corrected_name_whatever_the_order(
        rolled_back: ServiceClient, order: tuple[int, ...]) -> None:
    """covered p1, its end, a correction, covered p2: the end is never undone by a late member.covered, an end
    arriving before its coverage waits for it, and both coverages carry the corrected name."""
    app, _ = await rolled_back("claims")
    member_id = f"M{uuid.uuid4().hex[:10]}"
    covered_p1, _contact, corrected, covered_p2 = member_events(member_id, branch_path())
    ended = CoverageEnded(member_id=member_id, period="p1", ended_on=TODAY - timedelta(days=3), reason="退休离岗")
    await feed(app, [covered_p1, ended, corrected, covered_p2], order)
    async with app.state.db.transaction() as session:
        rows = (await session.execute(select(Coverage).where(Coverage.member_id == member_id)
                                      .order_by(Coverage.period))).scalars().all()
    assert [(c.period, c.ended_on, c.name, c.member_version) for c in rows] == [
        ("p1", TODAY - timedelta(days=3), "李𠮷娜", 3), ("p2", None, "李𠮷娜", 3)]
    assert await parked_count(app, f"coverage:{member_id}:p1") == 0


# --- missing references wait (issue #11, item 3) -------------------------------------------------------
async def test_an_event_whose_reference_is_unknown_is_parked_then_applied_when_it_arrives(
        rolled_back: ServiceClient) -> None:
    app, _ = await rolled_back("payments")
    member_id = f"M{uuid.uuid4().hex[:10]}"
    covered, contact, _corrected, _ = member_events(member_id, branch_path())
    worker = consumer(app)
    assert not await worker.apply(contact.envelope(), contact)  # no payee yet: parked, not refused
    assert await parked_count(app, f"member:{member_id}") == 1
    assert await worker.apply_parked() == 0  # its backoff has not passed and nothing woke it
    assert await worker.apply(covered.envelope(), covered)  # the reference arrives and wakes it
    assert await worker.apply_parked() == 1
    assert await parked_count(app, f"member:{member_id}") == 0
    async with app.state.db.transaction() as session:
        payee = await session.get(Payee, member_id)
    assert payee is not None and payee.member_version == 2


async def test_a_claim_for_a_period_whose_rulebook_has_not_arrived_is_409_with_retry_after(
        rolled_back: ServiceClient) -> None:
    """Never the permanent refusal period_unknown: the same request succeeds once period.published arrives."""
    app, client = await rolled_back("claims")
    member = await cover(app, f"later-{uuid.uuid4().hex[:8]}")
    body = claim_body(member, base="10000.00")
    r = await client.post("/api/v1/claims", json=body, headers=member.branch.unit_agent())
    assert r.status_code == 409 and r.json()["code"] == "period_not_yet_known", r.text
    assert int(r.headers["Retry-After"]) > 0


async def test_a_claim_for_a_member_not_known_yet_is_409_then_404_after_the_grace_period(
        rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("claims")
    period = await publish_period(app)
    known = await cover(app, period)
    stranger = f"M{uuid.uuid4().hex[:10]}"
    body = claim_body(base="10000.00") | {"member_id": stranger}
    r = await client.post("/api/v1/claims", json=body, headers=known.branch.unit_agent())
    assert r.status_code == 409 and r.json()["code"] == "member_not_yet_known", r.text
    assert int(r.headers["Retry-After"]) > 0
    # Its member.covered arrives: the same request now succeeds.
    arrived = await cover(app, period, known.branch)
    body["member_id"] = arrived.member_id
    r = await client.post("/api/v1/claims", json=body, headers=known.branch.unit_agent())
    assert r.status_code == 201, r.text
    # A member still unknown once the grace period has passed is not coming: 404, never 403.
    settings = app.state.settings
    grace, settings.reference_grace_seconds = settings.reference_grace_seconds, 0
    try:
        body = claim_body(base="10000.00") | {"member_id": stranger}
        r = await client.post("/api/v1/claims", json=body, headers=known.branch.unit_agent())
        assert r.status_code == 404 and r.json()["code"] == "member_not_found", r.text
    finally:
        settings.reference_grace_seconds = grace
