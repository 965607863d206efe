"""Payments, complete (issue 5): batches cut and released by two people, bank files, bank results, retries,
revocations and the fund ledger, over HTTP against real PostgreSQL with events fed through the inbox."""

from __future__ import annotations

import random
import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from deploy.people import certno as make_certno
from deploy.people import luhn_account
from services.payments import files
from services.payments.models import MESSAGING, LedgerPosting
from shared.events import (
    ClaimAdjusted,
    ClaimApproved,
    ClaimRevoked,
    FeesReceived,
    MemberContactChanged,
    MemberCovered,
)
from tests.conftest import ServiceClient, apply_event, token_for

BANK = "中国工商银行昆明五华支行"
CUTTER = token_for("finance", "YN", ("YN",), "centre")
RELEASER = token_for("finance", "YN", ("YN",), "centre")


def short() -> str:
    return uuid.uuid4().hex[:8]


class World:
    """One test's period and unit; the test runs rolled back, so every row the payments database holds is its."""

    def __init__(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        self.app, self.client = app, client
        self.period = "yn-18"  # the real period's code: rolled back, no other test's rows share it
        self.path = ["YN", f"O{short()}", f"A{short()}", f"U{short()}"]

    async def member(self, fee: str = "150.00") -> tuple[str, str]:
        member_id = f"M{short()}"
        account = luhn_account(random.Random(member_id))
        assert await apply_event(self.app, MemberCovered(
            member_id=member_id, period=self.period, plans=["inpatient"], coverage_from=date(2026, 1, 1),
            coverage_to=date(2026, 12, 31), name="张伟", certno=make_certno(random.Random(member_id)), sex="male",
            member_type="in_service", unit=self.path[-1], unit_path=self.path, bank_account=account,
            bank_name=BANK, phone="13912345678", renewing=False, fee=Decimal(fee)))
        return member_id, account

    def approved(self, claim_id: str, member_id: str, aid: str) -> ClaimApproved:
        return ClaimApproved(claim_id=claim_id, member_id=member_id, period=self.period, plan="inpatient",
                             aid_amount=Decimal(aid), rulebook_code="yn-18")

    async def claim(self, aid: str = "3460.00") -> tuple[str, str]:
        member_id, _ = await self.member()
        claim_id = str(uuid.uuid4())
        assert await apply_event(self.app, self.approved(claim_id, member_id, aid))
        return claim_id, member_id

    async def instructions(self, claim_id: str) -> list[dict[str, Any]]:
        r = await self.client.get("/api/v1/payment-instructions", params={"claim_id": claim_id}, headers=CUTTER)
        assert r.status_code == 200, r.text
        return list(r.json())

    async def cut_and_release(self, count: int, total: str, fmt: str = "pain001") -> dict[str, Any]:
        """Cut and release a batch: it takes every pending line in the database, which are this test's only."""
        r = await self.client.post("/api/v1/payment-batches", json={"format": fmt}, headers=CUTTER)
        assert r.status_code == 201, r.text
        batch = dict(r.json())
        assert (batch["count"], batch["total"]) == (count, total), batch
        r = await self.client.post(f"/api/v1/payment-batches/{batch['batch_id']}/release", headers=RELEASER)
        assert r.status_code == 200, r.text
        return batch

    async def results(self, batch_id: str, lines: Any, **kwargs: Any) -> dict[str, Any]:
        if not kwargs:
            kwargs = {"json": lines, "headers": CUTTER}
        r = await self.client.post(f"/api/v1/payment-batches/{batch_id}/results", **kwargs)
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def statement(self) -> dict[str, Any]:
        r = await self.client.get(f"/api/v1/ledger/periods/{self.period}", headers=CUTTER)
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def outbox(self, event_type: str, key: str) -> list[dict[str, Any]]:
        """The events of this type and key in the order they were written (``seq``)."""
        outbox = MESSAGING.outbox.c
        async with self.app.state.db.transaction() as session:
            return list((await session.execute(select(outbox.envelope).where(
                outbox.type == event_type, outbox.key == key).order_by(outbox.seq))).scalars().all())


async def world(rolled_back: ServiceClient) -> World:
    app, client = await rolled_back("payments")
    return World(app, client)


async def test_a_relay_crash_mid_batch_republishing_every_approval_leaves_one_instruction_each(
        rolled_back: ServiceClient) -> None:
    w = await world(rolled_back)
    approvals = []
    for _ in range(6):
        member_id, _ = await w.member()
        event = w.approved(str(uuid.uuid4()), member_id, "1000.00")
        approvals.append((event, event.envelope()))
    # Claims' relay sent the first four, crashed before marking them, and on restart published all six again.
    assert [await apply_event(w.app, e, env) for e, env in approvals[:4]] == [True] * 4
    assert [await apply_event(w.app, e, env) for e, env in approvals] == [False] * 4 + [True] * 2
    # A bypassed inbox (a new event id for the same approval) still cannot create a second instruction.
    assert await apply_event(w.app, approvals[0][0])
    for event, _ in approvals:
        [instruction] = await w.instructions(event.claim_id)
        assert instruction["attempt"] == 1 and instruction["status"] == "pending"
        assert len(await w.outbox("payment.instruction_created", event.claim_id)) == 1
    assert (await w.statement())["aid_approved_unpaid"] == "6000.00"


async def test_a_batch_is_cut_by_one_officer_released_by_another_and_its_pain001_validates(
        rolled_back: ServiceClient) -> None:
    w = await world(rolled_back)
    claim_id, member_id = await w.claim("3460.00")
    account = luhn_account(random.Random(member_id))  # as World.member made it
    r = await w.client.post("/api/v1/payment-batches", json={"format": "pain001"}, headers=CUTTER)
    assert r.status_code == 201, r.text
    batch = r.json()
    assert (batch["status"], batch["count"], batch["total"]) == ("awaiting_release", 1, "3460.00")
    [instruction] = await w.instructions(claim_id)
    assert instruction["status"] == "batched" and instruction["batch_id"] == batch["batch_id"]
    bid = batch["batch_id"]

    r = await w.client.get(f"/api/v1/payment-batches/{bid}/file", headers=CUTTER)
    assert r.status_code == 409 and r.json()["code"] == "batch_not_released"
    r = await w.client.post(f"/api/v1/payment-batches/{bid}/release", headers=CUTTER)
    assert r.status_code == 403 and r.json()["code"] == "same_person"
    assert r.headers["content-type"].startswith("application/problem+json") and "放行" in r.json()["detail"]
    r = await w.client.post(f"/api/v1/payment-batches/{bid}/release", headers=token_for("unit_agent", "U"))
    assert r.status_code == 403
    r = await w.client.post(f"/api/v1/payment-batches/{bid}/release", headers=RELEASER)
    assert r.status_code == 200 and r.json()["status"] == "released"
    r2 = await w.client.post(f"/api/v1/payment-batches/{bid}/release", headers=RELEASER)
    assert r2.status_code == 409
    [released] = await w.outbox("payment.batch_released", bid)
    assert released["payload"]["count"] == batch["count"] and released["payload"]["total"] == batch["total"]

    r = await w.client.get(f"/api/v1/payment-batches/{bid}/file", headers=RELEASER)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    files.validate_pain001(r.content)  # the served file is valid against the official XSD
    body = r.content.decode("utf-8")
    assert f"<NbOfTxs>{batch['count']}</NbOfTxs>" in body and f"<CtrlSum>{batch['total']}</CtrlSum>" in body
    assert f"<UETR>{instruction['instruction_id']}</UETR>" in body and "<Nm>张伟</Nm>" in body
    # The released file carries the account whole (the bank needs it); the JSON shows it masked, to finance too.
    assert account in body and instruction["account"] == account[:4] + "*" * (len(account) - 8) + account[-4:]
    assert "云南省职工医疗互助中心" in body

    r = await w.client.post("/api/v1/payment-batches", json={"format": "pain001"}, headers=CUTTER)
    assert r.status_code == 409 and r.json()["code"] == "nothing_to_cut"


async def test_an_invalid_file_is_never_stored_nor_served_and_the_lines_stay_pending(
        rolled_back: ServiceClient) -> None:
    w = await world(rolled_back)
    claim_id, _ = await w.claim("10.00")
    async with w.app.state.db.transaction() as session:  # 35 digits: longer than the XSD's Max34Text
        await session.execute(text("UPDATE payment_instructions SET account = :a WHERE claim_id = :c"),
                              {"a": "6" * 35, "c": claim_id})
    r = await w.client.post("/api/v1/payment-batches", json={"format": "pain001"}, headers=CUTTER)
    assert r.status_code == 500 and r.json()["code"] == "file_invalid", r.text
    [instruction] = await w.instructions(claim_id)
    assert instruction["status"] == "pending" and instruction["batch_id"] is None


async def test_the_bank_csv_of_a_released_batch(rolled_back: ServiceClient) -> None:
    w = await world(rolled_back)
    _, member_id = await w.claim("1260.50")
    batch = await w.cut_and_release(1, "1260.50", "bank_csv")
    r = await w.client.get(f"/api/v1/payment-batches/{batch['batch_id']}/file", headers=CUTTER)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith("\ufeff收款账号,户名,开户行,金额,用途\r\n".encode())
    line = f'"{luhn_account(random.Random(member_id))}","张伟","{BANK}",1260.50,"职工医疗互助补助"\r\n'
    assert line.encode() in r.content
    files.validate_bank_csv(r.content, batch["count"], Decimal(batch["total"]))


async def test_bank_results_paid_failed_unknown_and_duplicate_are_applied_once(
        rolled_back: ServiceClient) -> None:
    w = await world(rolled_back)
    paid_claim, _ = await w.claim("3000.00")
    failed_claim, _ = await w.claim("500.00")
    batch = await w.cut_and_release(2, "3500.00")
    [paid] = await w.instructions(paid_claim)
    [failed] = await w.instructions(failed_claim)
    unknown = str(uuid.uuid4())
    out = await w.results(batch["batch_id"], [
        {"instruction_id": paid["instruction_id"], "status": "paid"},
        {"instruction_id": failed["instruction_id"], "status": "failed", "reason": "AC04"},
        {"instruction_id": unknown, "status": "paid"},
        {"instruction_id": paid["instruction_id"], "status": "failed", "reason": "late"},
    ])
    assert [a["instruction_id"] for a in out["applied"]] == [paid["instruction_id"], failed["instruction_id"]]
    assert out["ignored"] == [{"instruction_id": unknown, "reason": "unknown_instruction"},
                              {"instruction_id": paid["instruction_id"], "reason": "already_settled", "status": "paid"}]
    again = await w.results(batch["batch_id"], [{"instruction_id": paid["instruction_id"], "status": "paid"}])
    assert again["applied"] == [] and again["ignored"][0]["reason"] == "already_settled"

    [settled] = await w.outbox("payment.paid", paid_claim)
    assert settled["payload"]["amount"] == "3000.00"
    [failure] = await w.outbox("payment.failed", failed_claim)
    assert failure["payload"]["reason"].startswith("账户已销户") and "经办人" in failure["payload"]["reason"]
    [f] = await w.instructions(failed_claim)
    assert f["status"] == "failed" and f["failure_reason"].startswith("账户已销户")
    s = await w.statement()
    assert (s["aid_paid"], s["aid_approved_unpaid"], s["postings_sum"]) == ("3000.00", "500.00", "0.00")


async def test_a_pain002_report_settles_the_lines_it_names(rolled_back: ServiceClient) -> None:
    w = await world(rolled_back)
    claim_a, _ = await w.claim("100.00")
    claim_b, _ = await w.claim("200.00")
    batch = await w.cut_and_release(2, "300.00")
    [a], [b] = await w.instructions(claim_a), await w.instructions(claim_b)
    report = (f'<?xml version="1.0" encoding="UTF-8"?><Document xmlns="{files.PAIN002_NS}"><CstmrPmtStsRpt>'
              "<GrpHdr><MsgId>R1</MsgId><CreDtTm>2026-03-03T10:00:00</CreDtTm></GrpHdr><OrgnlGrpInfAndSts>"
              f"<OrgnlMsgId>{batch['batch_id'].replace('-', '')}</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09"
              "</OrgnlMsgNmId></OrgnlGrpInfAndSts><OrgnlPmtInfAndSts><OrgnlPmtInfId>P</OrgnlPmtInfId>"
              f"<TxInfAndSts><OrgnlEndToEndId>{a['instruction_id'].replace('-', '')}</OrgnlEndToEndId>"
              "<TxSts>ACSC</TxSts></TxInfAndSts>"
              f"<TxInfAndSts><OrgnlUETR>{b['instruction_id']}</OrgnlUETR><TxSts>RJCT</TxSts>"
              "<StsRsnInf><Rsn><Cd>BE01</Cd></Rsn></StsRsnInf></TxInfAndSts>"
              "</OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>").encode()
    out = await w.results(batch["batch_id"], None, content=report, headers={**CUTTER,
                                                                             "Content-Type": "application/xml"})
    assert [(x["status"]) for x in out["applied"]] == ["paid", "failed"]
    assert out["applied"][1]["reason"].startswith("户名不符")
    r = await w.client.post(f"/api/v1/payment-batches/{batch['batch_id']}/results", content=b"<Document/>",
                            headers={**CUTTER, "Content-Type": "application/xml"})
    assert r.status_code == 422 and r.json()["code"] == "result_file_invalid"


async def test_a_failed_payment_is_retried_once_to_the_new_account(rolled_back: ServiceClient) -> None:
    w = await world(rolled_back)
    claim_id, member_id = await w.claim("880.00")
    batch = await w.cut_and_release(1, "880.00")
    [first] = await w.instructions(claim_id)
    await w.results(batch["batch_id"], [{"instruction_id": first["instruction_id"], "status": "failed",
                                         "reason": "账户已销户"}])
    change = MemberContactChanged(member_id=member_id, bank_account="6217000000000000001",
                                  bank_name="中国建设银行昆明分行", phone="13900000000", name="张伟")
    assert await apply_event(w.app, change)
    assert await apply_event(w.app, change)  # a second delivery with a new id: still one retry
    attempts = sorted(await w.instructions(claim_id), key=lambda i: i["attempt"])
    # Issue #9: an account changed in the last days holds the payment until a finance officer confirms it.
    assert [(i["attempt"], i["status"]) for i in attempts] == [(1, "failed"), (2, "held")]
    assert attempts[1]["account"] == "6217***********0001" and attempts[1]["amount"] == "880.00"
    assert [e["payload"]["attempt"] for e in await w.outbox("payment.instruction_created", claim_id)] == [1, 2]
    r = await w.client.post(f"/api/v1/payment-instructions/{attempts[1]['instruction_id']}/confirm-hold",
                            json={"reason": "已电话联系会员本人核实新账号"}, headers=RELEASER)
    assert r.status_code == 200 and r.json()["status"] == "pending", r.text

    retry_batch = await w.cut_and_release(1, "880.00")  # the retry alone: the failed line is not cut again
    await w.results(retry_batch["batch_id"], [{"instruction_id": attempts[1]["instruction_id"], "status": "paid"}])
    s = await w.statement()
    assert (s["aid_approved"], s["aid_paid"], s["aid_approved_unpaid"]) == ("880.00", "880.00", "0.00")


async def test_revocation_cancels_unpaid_aid_voids_its_unreleased_batch_and_recovers_paid_aid(
        rolled_back: ServiceClient) -> None:
    w = await world(rolled_back)
    paid_claim, paid_member = await w.claim("2000.00")
    batch = await w.cut_and_release(1, "2000.00")
    [paid] = await w.instructions(paid_claim)
    await w.results(batch["batch_id"], [{"instruction_id": paid["instruction_id"], "status": "paid"}])

    # A downward adjustment after payment is asked back; the revocation then asks back the rest.
    assert await apply_event(w.app, ClaimAdjusted(
        adjustment_id=f"adj-{short()}", claim_id=paid_claim, member_id=paid_member, period=w.period,
        amount=Decimal("-300.00"), aid_amount=Decimal("1700.00"), reason="前次住院结算冲正"))
    revoked = ClaimRevoked(claim_id=paid_claim, member_id=paid_member, period=w.period, reason="虚假材料")
    assert await apply_event(w.app, revoked)
    assert await apply_event(w.app, revoked)  # redelivered with a new id: recorded once
    r = await w.client.get("/api/v1/recoveries", params={"claim_id": paid_claim}, headers=CUTTER)
    assert sorted(x["amount_due"] for x in r.json()) == ["1700.00", "300.00"]

    unpaid_claim, unpaid_member = await w.claim("500.00")
    other_claim, _ = await w.claim("700.00")
    r = await w.client.post("/api/v1/payment-batches", json={"format": "pain001"}, headers=CUTTER)
    cut = r.json()
    assert (r.status_code, cut["count"], cut["total"]) == (201, 2, "1200.00"), r.text
    assert await apply_event(w.app, ClaimRevoked(claim_id=unpaid_claim, member_id=unpaid_member,
                                                 period=w.period, reason="虚假材料"))
    [cancelled] = await w.instructions(unpaid_claim)
    assert cancelled["status"] == "cancelled"
    [back] = await w.instructions(other_claim)
    assert back["status"] == "pending" and back["batch_id"] is None  # the voided batch's lines are cut again
    r = await w.client.post(f"/api/v1/payment-batches/{cut['batch_id']}/release", headers=RELEASER)
    assert r.status_code == 409
    assert (await w.client.get(f"/api/v1/payment-batches/{cut['batch_id']}", headers=CUTTER)).json()[
        "status"] == "voided"

    recovery = next(x for x in (await w.client.get("/api/v1/recoveries", params={"claim_id": paid_claim},
                                                   headers=CUTTER)).json() if x["amount_due"] == "1700.00")
    r = await w.client.post(f"/api/v1/recoveries/{recovery['recovery_id']}/receipts",
                            json={"amount": "1000.00", "reference": "BK-1"}, headers=CUTTER)
    assert r.status_code == 201 and r.json()["outstanding"] == "700.00"
    r = await w.client.post(f"/api/v1/recoveries/{recovery['recovery_id']}/receipts",
                            json={"amount": "800.00", "reference": "BK-2"}, headers=CUTTER)
    assert r.status_code == 422 and r.json()["code"] == "over_recovery"

    s = await w.statement()
    assert s["aid_paid"] == "2000.00" and s["recoveries_due"] == "1000.00" and s["recovered"] == "1000.00"
    assert s["aid_approved_unpaid"] == "700.00"  # the other claim, still owed; the revoked 500 is cancelled
    assert s["postings_sum"] == "0.00"


async def test_a_top_up_is_its_own_instruction_and_a_reduction_before_payment_reissues_the_aid(
        rolled_back: ServiceClient) -> None:
    w = await world(rolled_back)
    claim_id, member_id = await w.claim("1000.00")
    adjustment = ClaimAdjusted(adjustment_id=f"adj-{short()}", claim_id=claim_id, member_id=member_id,
                               period=w.period, amount=Decimal("-200.00"), aid_amount=Decimal("800.00"),
                               reason="重新核定")
    assert await apply_event(w.app, adjustment)
    assert await apply_event(w.app, adjustment)  # a new event id, same adjustment: applied once
    top_up = ClaimAdjusted(adjustment_id=f"adj-{short()}", claim_id=claim_id, member_id=member_id,
                           period=w.period, amount=Decimal("150.00"), aid_amount=Decimal("950.00"), reason="补发")
    assert await apply_event(w.app, top_up)
    assert await apply_event(w.app, top_up)
    live = [(i["kind"], i["attempt"], i["amount"]) for i in await w.instructions(claim_id)
            if i["status"] == "pending"]
    assert sorted(live) == [("aid", 2, "800.00"), ("top_up", 1, "150.00")]
    s = await w.statement()
    assert (s["aid_approved"], s["aid_approved_unpaid"], s["recoveries_due"]) == ("950.00", "950.00", "0.00")


async def test_the_ledger_balances_in_the_database_and_fees_reconcile_per_unit_and_office(
        rolled_back: ServiceClient) -> None:
    w = await world(rolled_back)
    for _ in range(3):
        await w.member("150.00")
    roster_id = str(uuid.uuid4())
    for amount in ("300.00", "150.00"):
        assert await apply_event(w.app, FeesReceived(roster_id=roster_id, period=w.period, unit=w.path[-1],
                                                     amount=Decimal(amount), reference=f"R-{short()}"))
    other_unit = f"U{short()}"
    assert await apply_event(w.app, FeesReceived(roster_id=str(uuid.uuid4()), period=w.period, unit=other_unit,
                                                 amount=Decimal("120.00"), reference="R-x"))
    await w.claim("400.00")
    s = await w.statement()
    assert (s["fees_received"], s["aid_approved_unpaid"], s["balance"], s["postings_sum"]) == (
        "570.00", "400.00", "570.00", "0.00")

    r = await w.client.get(f"/api/v1/ledger/periods/{w.period}/fees-reconciliation", headers=CUTTER)
    assert r.status_code == 200
    units = {u["unit"]: u for u in r.json()["units"]}
    mine = units[w.path[-1]]
    # Four members covered (the claimant too) at 150 = 600 on the roster; 450 received.
    assert (mine["office"], mine["roster_fees"], mine["received"], mine["difference"], mine["status"]) == (
        w.path[1], "600.00", "450.00", "-150.00", "short")
    assert units[other_unit]["status"] == "over" and units[other_unit]["office"] is None
    assert r.json()["totals"]["difference"] == "-30.00"
    r = await w.client.get(f"/api/v1/ledger/periods/{w.period}", headers=token_for("unit_agent", "U"))
    assert r.status_code == 403

    async with w.app.state.db.transaction() as session:  # the whole ledger: this test's entries and no others
        assert (await session.execute(select(func.coalesce(func.sum(LedgerPosting.amount), 0)))).scalar_one() == 0
        unbalanced = (await session.execute(text(
            "SELECT count(*) FROM (SELECT entry_id FROM ledger_postings GROUP BY entry_id "
            "HAVING sum(amount) <> 0) x"))).scalar_one()
        assert unbalanced == 0
        live = (await session.execute(text(
            "SELECT count(*) FROM (SELECT claim_id, adjustment_id FROM payment_instructions "
            "WHERE status IN ('pending', 'batched', 'paid') GROUP BY 1, 2 HAVING count(*) > 1) x"))).scalar_one()
        assert live == 0
    async with w.app.state.db.sessions() as session:  # the database refuses an unbalanced entry at commit
        entry = uuid.uuid4()
        await session.execute(text("INSERT INTO ledger_entries (id, period, kind, source, memo) "
                                   "VALUES (:id, :p, 'x', :s, 'x')"), {"id": entry, "p": w.period, "s": str(entry)})
        await session.execute(text("INSERT INTO ledger_postings (entry_id, period, account, amount) "
                                   "VALUES (:id, :p, 'bank', 1)"), {"id": entry, "p": w.period})
        with pytest.raises(DBAPIError, match="does not balance"):
            await session.commit()
        await session.rollback()
