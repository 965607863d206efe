"""Payments (docs/API.md "Payments (8003)"): one instruction per approved claim with aid > 0, never two."""

from __future__ import annotations

import random
import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from deploy.people import certno as make_certno
from deploy.people import luhn_account
from services.payments.models import MESSAGING
from shared.events import ClaimApproved, MemberCovered
from shared.masking import mask_account
from tests.conftest import ServiceClient, apply_event, token_for

BANK = "中国工商银行昆明五华支行"


def short() -> str:
    return uuid.uuid4().hex[:8]


def branch() -> list[str]:
    """A fresh office, agency point and unit under the one centre whose finance officer sees them all."""
    return ["CENTRE", f"O{short()}", f"A{short()}", f"U{short()}"]


def covered(member_id: str, path: list[str], account: str) -> MemberCovered:
    return MemberCovered(
        member_id=member_id, period="yn-18", plans=["inpatient"], coverage_from=date(2026, 1, 1),
        coverage_to=date(2026, 12, 31), name="李娜", certno=make_certno(random.Random(member_id)), sex="female",
        member_type="in_service", unit=path[-1], unit_path=path, bank_account=account, bank_name=BANK,
        phone="13912345678", renewing=False, fee=Decimal("150.00"))


def approved(claim_id: str, member_id: str, aid: str = "3460.00") -> ClaimApproved:
    return ClaimApproved(claim_id=claim_id, member_id=member_id, period="yn-18", plan="inpatient",
                         aid_amount=Decimal(aid), rulebook_code="yn-18")


FINANCE = token_for("finance", "CENTRE", ("CENTRE",), "centre")


def unit_agent(path: list[str]) -> dict[str, str]:
    return token_for("unit_agent", path[-1], tuple(path), "unit")


async def instructions(client: httpx.AsyncClient, claim_id: str,
                       headers: dict[str, str] = FINANCE) -> list[dict[str, Any]]:
    r = await client.get("/api/v1/payment-instructions", params={"claim_id": claim_id}, headers=headers)
    assert r.status_code == 200, r.text
    return list(r.json())


async def created_events(app: FastAPI, claim_id: str) -> list[dict[str, Any]]:
    outbox = MESSAGING.outbox
    async with app.state.db.transaction() as session:
        rows = (await session.execute(select(outbox.c.envelope).where(
            outbox.c.key == claim_id, outbox.c.type == "payment.instruction_created").order_by(outbox.c.seq))).scalars().all()
    return list(rows)


async def new_member(app: FastAPI) -> tuple[str, list[str], str]:
    member_id, path = f"M{short()}", branch()
    account = luhn_account(random.Random(member_id))
    assert await apply_event(app, covered(member_id, path, account))
    return member_id, path, account


async def test_an_approved_claim_becomes_one_pending_instruction_to_the_members_account(
        rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("payments")
    member_id, _, account = await new_member(app)
    claim_id = str(uuid.uuid4())
    assert await apply_event(app, approved(claim_id, member_id))

    [instruction] = await instructions(client, claim_id)
    assert instruction["status"] == "pending" and instruction["attempt"] == 1
    assert instruction["amount"] == "3460.00" and instruction["member_id"] == member_id
    assert instruction["payee_name"] == "李娜" and instruction["bank_name"] == BANK
    assert instruction["account"] == mask_account(account)  # masked for finance too (issue #9)

    [event] = await created_events(app, claim_id)
    assert event["payload"]["instruction_id"] == instruction["instruction_id"]
    assert event["payload"]["amount"] == "3460.00" and event["payload"]["attempt"] == 1


async def test_every_role_sees_the_account_masked_and_other_branches_see_nothing(
        rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("payments")
    member_id, path, account = await new_member(app)
    claim_id = str(uuid.uuid4())
    assert await apply_event(app, approved(claim_id, member_id))

    [mine] = await instructions(client, claim_id, unit_agent(path))
    assert mine["account"] == mask_account(account) and mine["account"] != account
    assert account[-4:] in mine["account"] and account[4:-4] not in mine["account"]
    [agency] = await instructions(client, claim_id, token_for("agency_reviewer", path[2], tuple(path[:3]),
                                                               "agency_point"))
    assert agency["account"] == mask_account(account)
    [finance] = await instructions(client, claim_id)  # finance too: the bank file after release has it whole
    assert finance["account"] == mask_account(account)

    elsewhere = [path[0], path[1], path[2], f"U{short()}"]
    assert await instructions(client, claim_id, unit_agent(elsewhere)) == []
    assert await instructions(client, claim_id, unit_agent(branch())) == []
    r = await client.get("/api/v1/payment-instructions", headers=token_for("member", member_id=member_id))
    assert r.status_code == 403


async def test_the_same_approval_delivered_three_times_pays_once(rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("payments")
    member_id, _, _ = await new_member(app)
    claim_id = str(uuid.uuid4())
    event = approved(claim_id, member_id)
    envelope = event.envelope()
    assert [await apply_event(app, event, envelope) for _ in range(3)] == [True, False, False]
    assert len(await instructions(client, claim_id)) == 1
    assert len(await created_events(app, claim_id)) == 1


async def test_a_second_approval_event_for_the_same_claim_creates_no_second_instruction(
        rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("payments")
    member_id, _, _ = await new_member(app)
    claim_id = str(uuid.uuid4())
    assert await apply_event(app, approved(claim_id, member_id))
    assert await apply_event(app, approved(claim_id, member_id))  # a new event id: the inbox lets it through
    [instruction] = await instructions(client, claim_id)
    assert instruction["amount"] == "3460.00"
    assert len(await created_events(app, claim_id)) == 1


async def test_an_approval_with_aid_0_creates_no_instruction(rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("payments")
    member_id, _, _ = await new_member(app)
    claim_id = str(uuid.uuid4())
    assert await apply_event(app, approved(claim_id, member_id, "0.00"))
    assert await instructions(client, claim_id) == []
    assert await created_events(app, claim_id) == []


async def test_an_approval_before_the_members_details_gets_the_payee_when_they_arrive(
        rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("payments")
    member_id, path = f"M{short()}", branch()
    account = luhn_account(random.Random(member_id))
    claim_id = str(uuid.uuid4())
    assert await apply_event(app, approved(claim_id, member_id, "1260.00"))
    [early] = await instructions(client, claim_id)
    assert early["status"] == "pending"
    assert (early["payee_name"], early["account"], early["bank_name"]) == (None, None, None)

    assert await apply_event(app, covered(member_id, path, account))
    [filled] = await instructions(client, claim_id)
    assert filled["instruction_id"] == early["instruction_id"]
    assert (filled["payee_name"], filled["account"], filled["bank_name"]) == ("李娜", mask_account(account), BANK)
    assert len(await created_events(app, claim_id)) == 1
