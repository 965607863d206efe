"""The bureau's settlement records (docs/API.md "Settlements"): the feed, reversals of settlements already
claimed, and the look-up intake uses to refuse a claim on a reversed settlement."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Request
from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert

from services.claims.domain.settlement import amounts_of, check_settlement
from services.claims.domain.settlement import message as implausible_message
from services.claims.models import (
    MESSAGING,
    Claim,
    ClaimStep,
    Coverage,
    Settlement,
)
from services.claims.reassessment import DECIDED, LIVE, SYSTEM, reassess_member_period, record_adjustment
from shared import idnumber
from shared.auth import Principal, require_roles
from shared.deps import SessionDep
from shared.errors import Invalid
from shared.events import (
    TOPIC_CLAIMS,
    ClaimRejected,
)
from shared.fields import money_problem
from shared.messaging import publish

router = APIRouter(prefix="/api/v1")


# --- settlements from bureaus -----------------------------------------------------------------------------
@router.post("/settlements", tags=["settlements"])
async def receive_settlements(request: Request, session: SessionDep,
                              actor: Annotated[Principal, require_roles("bureau", "admin")]) -> dict:
    """Settlement records from a medical-insurance bureau, as a JSON array or NDJSON. A record is kept only for
    a person covered in the caller's branch (anyone else's is counted in ``outside_branch`` and dropped, never
    stored); an implausible one (shared checks of domain/settlement.py) is refused with the difference named."""
    raw = (await request.body()).decode("utf-8", errors="replace").strip()
    try:
        records = json.loads(raw) if raw.startswith("[") else [json.loads(line) for line in raw.splitlines()
                                                                if line.strip()]
    except json.JSONDecodeError as exc:
        raise Invalid(f"不是有效的 JSON 数组或 NDJSON：{exc.msg}（第 {exc.lineno} 行）。", code="invalid_json") from None
    accepted = duplicates = reversals = outside = 0
    rejected: list[dict[str, Any]] = []
    reversed_claims: list[str] = []
    for index, record in enumerate(records):
        if not isinstance(record, dict) or not str(record.get("setl_id") or "").strip():
            rejected.append({"index": index, "reason": "缺少 setl_id"})
            continue
        if problem := feed_record_problem(record):
            rejected.append({"index": index, "code": problem[0], "reason": problem[1]})
            continue
        setl_id, mdtrt_id = str(record["setl_id"]), str(record.get("mdtrt_id") or "") or None
        amounts, not_amounts = amounts_of(record)
        if not_amounts:
            rejected.append({"index": index, "code": "settlement_amount_invalid",
                             "reason": "以下字段不是金额：" + "、".join(not_amounts)})
            continue
        implausible = check_settlement(amounts)
        if implausible:
            rejected.append({"index": index, "code": "settlement_implausible",
                             "reason": implausible_message(implausible),
                             "errors": [p.as_error(("records", index)) for p in implausible]})
            continue
        certno, members = await settlement_person(session, record, setl_id, actor)
        if not members:  # not a member in the caller's branch: not kept, only counted
            outside += 1
            continue
        reversal = is_reversal(record)
        stmt = insert(Settlement).values(setl_id=setl_id, certno=certno, record=record,
                                         mdtrt_id=mdtrt_id, is_reversal=reversal)
        result = await session.execute(stmt.on_conflict_do_nothing().returning(Settlement.setl_id))
        if result.first() is None:
            if not reversal:
                duplicates += 1
                continue
            # The bureau re-sends a settlement as reversed under its own setl_id: the reversal wins.
            stored = await session.get(Settlement, setl_id, with_for_update=True)
            assert stored is not None
            if stored.is_reversal:
                duplicates += 1
                continue
            stored.is_reversal, stored.record = True, {**stored.record, "reversal": record}
        accepted += 1
        if reversal:
            reversals += 1
            reversed_claims += await apply_reversal(session, setl_id, mdtrt_id, certno, members)
    return {"received": len(records), "accepted": accepted, "duplicates": duplicates, "rejected": rejected,
            "outside_branch": outside, "reversals": reversals, "claims_reversed": reversed_claims}


async def settlement_person(session: SessionDep, record: dict[str, Any], setl_id: str, actor: Principal
                            ) -> tuple[str | None, set[str]]:
    """The person a record is about (its certno, or for a record re-sent without one the certno kept with its
    setl_id) and their member ids covered in the caller's branch; no ids: the record is not ours to keep."""
    # an old 15-digit card is kept in its 18-digit form, as enrollment stores people; no number is no key
    raw = record.get("certno")
    certno = idnumber.lookup_form(raw) if isinstance(raw, str) and raw.strip() else None
    certno = certno if certno and len(certno) <= 18 else None
    stored = await session.get(Settlement, setl_id)
    if stored is not None and stored.certno:
        if certno is not None and certno != stored.certno:
            return certno, set()  # a setl_id already kept for someone else
        certno = stored.certno
    if certno is None:
        return None, set()
    coverages = (await session.execute(select(Coverage.member_id, Coverage.unit_path)
                                       .where(Coverage.certno == certno))).all()
    return certno, {member_id for member_id, path in coverages if actor.covers(path)}


def feed_record_problem(record: dict[str, Any]) -> tuple[str, str] | None:
    """Why a feed record cannot be kept as sent, as (code, reason): an amount that is not a sane amount
    (``settlement_amount_invalid``), an id too long or not text (``settlement_record_invalid``); else None."""
    for key, longest in (("setl_id", 60), ("mdtrt_id", 60), ("certno", 18)):
        if len(str(record.get(key) or "")) > longest:
            return "settlement_record_invalid", f"{key} 超过 {longest} 个字符"
    if record.get("certno") is not None and not isinstance(record["certno"], str):
        return "settlement_record_invalid", "certno 必须是文本"
    for name, value in record.items():
        if name.endswith(("_amt", "_pay", "_sumamt")) and value is not None and not isinstance(value, bool):
            try:
                amount = Decimal(str(value))
            except InvalidOperation:
                return "settlement_amount_invalid", f"{name} 不是金额"
            if problem := money_problem(amount):
                return "settlement_amount_invalid", f"{name}：{problem}"
    return None


def is_reversal(record: dict[str, Any]) -> bool:
    """A reversal: refd_setl_flag set, or negative amounts (docs/SETTLEMENT.md)."""
    if record.get("refd_setl_flag") not in (None, "", "0", 0, False):
        return True
    for name in ("medfee_sumamt", "psn_part_amt", "fund_pay_sumamt"):
        try:
            amount = Decimal(str(record.get(name, "0")))
        except InvalidOperation:
            continue
        if amount.is_finite() and amount < 0:
            return True
    return False


async def apply_reversal(session: SessionDep, setl_id: str, mdtrt_id: str | None, certno: str | None,
                         members: set[str]) -> list[str]:
    """Cancel the settlements the reversal names (same setl_id, or same mdtrt_id of the same person) and every
    claim on them of the person's member ids in the caller's branch: a claim in review ends rejected; an
    approved one is rejected with its whole aid recovered; the member's other stays in the period are
    re-assessed."""
    now = datetime.now(UTC)
    targets = {setl_id}
    if mdtrt_id:
        targets |= set((await session.execute(select(Settlement.setl_id).where(
            Settlement.mdtrt_id == mdtrt_id, Settlement.certno == certno,
            Settlement.is_reversal.is_(False)))).scalars())
    for stored in (await session.execute(select(Settlement).where(Settlement.setl_id.in_(targets)))).scalars():
        stored.reversed_at = stored.reversed_at or now
    conditions = [Claim.setl_id.in_(targets)]
    if mdtrt_id:
        conditions.append(Claim.settlement["mdtrt_id"].astext == mdtrt_id)
    claims = (await session.execute(select(Claim).where(or_(*conditions), Claim.status.in_(LIVE),
                                                        Claim.member_id.in_(sorted(members)))
                                    .order_by(Claim.created_at).with_for_update())).scalars().all()
    for claim in claims:
        await reverse_claim(session, claim)
    return [str(c.id) for c in claims]


async def reverse_claim(session: SessionDep, claim: Claim) -> None:
    reason = "医保部门已冲销该结算单。"
    if claim.status in DECIDED and (claim.aid_amount or 0) > 0:
        await record_adjustment(session, claim, Decimal("0.00"), cause="settlement_reversed", reason=reason,
                                actor=SYSTEM, cause_claim=claim, explanation=None)
    refuse(claim, "settlement_reversed", reason)
    claim.current_level, claim.due_date = None, None
    session.add(ClaimStep(claim_id=claim.id, level=None, decision="reverse", by_user=SYSTEM.user_id,
                          by_username="bureau feed", reason=reason, rulebook_code=claim.rulebook_code,
                          aid_amount=claim.aid_amount))
    await publish(session, MESSAGING, TOPIC_CLAIMS, ClaimRejected(
        claim_id=str(claim.id), member_id=claim.member_id, period=claim.period or "",
        code="settlement_reversed", detail=reason))
    await session.flush()
    await reassess_member_period(session, member_id=claim.member_id, period=claim.period, plan_code=claim.plan,
                                 cause="settlement_reversed", reason=f"同期申请 {claim.id} 的结算单被冲销，重新核定",
                                 actor=SYSTEM, cause_claim=claim)


# --- claims -----------------------------------------------------------------------------------------------


async def settlement_reversed(session: SessionDep, setl_id: str, mdtrt_id: Any) -> bool:
    settlement = await session.get(Settlement, setl_id)
    if settlement is not None and (settlement.is_reversal or settlement.reversed_at is not None
                                   or is_reversal(settlement.record)):
        return True
    if mdtrt_id:
        found = (await session.execute(select(Settlement.setl_id).where(
            Settlement.mdtrt_id == str(mdtrt_id), Settlement.is_reversal.is_(True)).limit(1))).first()
        return found is not None
    return False


def refuse(claim: Claim, code: str, detail: str) -> None:
    claim.status, claim.rejection_code, claim.rejection_detail = "rejected", code, detail
