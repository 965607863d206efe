"""Reversals of settlements already kept (docs/SETTLEMENT.md): the claims on a cancelled settlement end
rejected (``settlement_reversed``), aid already approved is recovered; and the look-up intake uses to refuse a
claim on a reversed settlement."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.claims.domain.feed import Checked, is_reversal
from services.claims.models import MESSAGING, Claim, ClaimStep, Coverage, Settlement
from services.claims.reassessment import DECIDED, LIVE, SYSTEM, reassess_member_period, record_adjustment
from shared import idnumber
from shared.auth import Principal
from shared.events import TOPIC_CLAIMS, ClaimRejected
from shared.messaging import publish

__all__ = ["ReversalOutcome", "apply_reversal", "is_reversal", "receive_reversal", "refuse", "settlement_reversed"]


@dataclass
class ReversalOutcome:
    kept: bool = False  # stored (or an earlier record marked reversed)
    duplicate: bool = False
    outside: bool = False  # not a member in the caller's branch: not kept
    claims_reversed: list[str] = field(default_factory=list)


async def receive_reversal(session: AsyncSession, checked: Checked, record: dict[str, Any], actor: Principal
                           ) -> ReversalOutcome:
    """One reversal from a feed: kept for a member in the caller's branch, then every claim on the settlement
    it cancels reversed. The bureau may re-send a settlement as reversed under its own setl_id: the reversal
    wins; sent again, it changes nothing."""
    setl_id, mdtrt_id = checked.setl_id, checked.mdtrt_id
    certno, members = await settlement_person(session, record, setl_id, actor)
    if not members:
        return ReversalOutcome(outside=True)
    stmt = insert(Settlement).values(setl_id=setl_id, certno=certno, record=record, mdtrt_id=mdtrt_id,
                                     is_reversal=True, setl_date=checked.setl_date, insutype=checked.insutype,
                                     med_type=checked.med_type, medfee_sumamt=checked.medfee_sumamt,
                                     psn_part_amt=checked.psn_part_amt)
    result = await session.execute(stmt.on_conflict_do_nothing().returning(Settlement.setl_id))
    if result.first() is None:
        stored = await session.get(Settlement, setl_id, with_for_update=True)
        assert stored is not None
        if stored.is_reversal:
            return ReversalOutcome(duplicate=True)
        stored.is_reversal, stored.record = True, {**stored.record, "reversal": record}
    reversed_claims = await apply_reversal(session, setl_id, mdtrt_id, certno, members)
    await session.flush()
    return ReversalOutcome(kept=True, claims_reversed=reversed_claims)


async def settlement_person(session: AsyncSession, record: dict[str, Any], setl_id: str, actor: Principal
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


async def apply_reversal(session: AsyncSession, setl_id: str, mdtrt_id: str | None, certno: str | None,
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


async def reverse_claim(session: AsyncSession, claim: Claim) -> None:
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


async def settlement_reversed(session: AsyncSession, mdtrt_id: Any, stored: Settlement | None) -> bool:
    """Whether the bureau reversed this settlement (its own record, or a reversal of its visit); ``stored``: the
    record as intake read it (None: the bureau has not sent it)."""
    settlement = stored
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
