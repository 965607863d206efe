"""Claims' work lists (read side): the review queue, what claims knows of a person's coverage, and the claim
list with its filters and keyset pages (issue #10). Each answers within the caller's branch."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.claims.domain.approval import day_of, settlement_warning
from services.claims.domain.documents import DOCUMENT_TYPES, missing_documents
from services.claims.models import Claim, ClaimDocument, Coverage
from services.claims.repository import claims_in_branch, rulebook_for
from services.claims.schemas import ClaimListItem, CoverageOut, ReviewItemOut, check_of, level_of
from shared import idnumber
from shared.auth import Principal
from shared.errors import Invalid
from shared.masking import mask_certno
from shared.rulebook import AnyPlan
from shared.vocab import REVIEWER_LEVEL, ClaimStatus, OrgLevel, Role


async def review_queue(session: AsyncSession, actor: Principal, now: datetime) -> list[ReviewItemOut]:
    """Claims waiting at the caller's level in its branch, oldest first, with due dates, amounts and the
    documents still missing (a complete application is what the 5 working days of 第十条 count for)."""
    level = REVIEWER_LEVEL[actor.role]
    claims = list((await session.execute(
        select(Claim).where(Claim.status == ClaimStatus.IN_REVIEW, Claim.current_level == level,
                            claims_in_branch(actor))
        .order_by(Claim.level_entered_at, Claim.id).limit(500))).scalars())
    present: dict[uuid.UUID, set[str]] = {c.id: set() for c in claims}
    if claims:
        for claim_id, doc_type in (await session.execute(select(ClaimDocument.claim_id, ClaimDocument.doc_type)
                                                         .where(ClaimDocument.claim_id.in_(list(present))))):
            present[claim_id].add(doc_type)
    keys = {(c.period or "", c.plan) for c in claims}
    plans = await plan_facts(session, keys)
    kinds = {key: plan.kind for key, plan in plans.items()}
    sources = {key: plan.settlement_source for key, plan in plans.items()}
    today = day_of(now)
    out = []
    for c in claims:
        missing = missing_documents(kinds.get((c.period or "", c.plan), "banded"), present[c.id])
        out.append(ReviewItemOut(
            claim_id=str(c.id), member_id=c.member_id, period=c.period, plan=c.plan, aid_amount=c.aid_amount,
            base=c.base, current_level=level_of(c.current_level), final_level=level_of(c.final_level),
            due_date=c.due_date, due_warning=c.due_warning, overdue=c.due_date is not None and c.due_date < today,
            waiting_since=c.level_entered_at, unit=c.unit, documents=sorted(present[c.id]),
            missing_documents=missing, missing_documents_zh=[DOCUMENT_TYPES[m] for m in missing],
            settlement_check=check_of(c), settlement_warning=settlement_warning(
                sources.get((c.period or "", c.plan), "paper_allowed"), (c.settlement_check or {}).get("status"))))
    return out


async def plan_facts(session: AsyncSession, keys: set[tuple[str, str]]) -> dict[tuple[str, str], AnyPlan]:
    """Each (period, plan)'s plan as its period's rulebook defines it (a plan the rulebook does not know is left
    out): its ``kind`` and ``settlement_source`` (第九条, for the reviewer's warning)."""
    plans: dict[tuple[str, str], AnyPlan] = {}
    for period_code in {p for p, _ in keys}:
        rulebook = await rulebook_for(session, period_code)  # by its digest: not fetched or hashed each time
        if rulebook is None:
            continue
        for p, plan in keys:
            if p == period_code:
                try:
                    plans[(p, plan)] = rulebook.plan(plan)
                except (KeyError, ValueError):
                    continue
    return plans


async def plan_kinds(session: AsyncSession, keys: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    return {key: plan.kind for key, plan in (await plan_facts(session, keys)).items()}


async def coverages(session: AsyncSession, actor: Principal, certno: str | None, member_id: str | None
                    ) -> list[CoverageOut]:
    """What claims knows of a person's coverage (its copy of enrollment's events), within the caller's branch."""
    if not (certno or member_id):
        raise Invalid("请提供 certno 或 member_id。", errors=[{"loc": ["query", "certno"], "msg": "缺少必填项"}])
    stmt = select(Coverage)
    stmt = stmt.where(Coverage.certno == idnumber.lookup_form(certno)) if certno else \
        stmt.where(Coverage.member_id == member_id)
    return [CoverageOut.model_validate({
        "member_id": c.member_id, "period": c.period, "plans": c.plans, "from": c.coverage_from,
        "to": c.coverage_to, "ended_on": c.ended_on, "unit": c.unit})
        for c in (await session.execute(stmt)).scalars() if actor.covers(c.unit_path)]


# --- the claim list -----------------------------------------------------------------------------------------
MAX_LIMIT = 500


@dataclass(frozen=True)
class ClaimFilters:
    status: ClaimStatus | None = None
    level: OrgLevel | None = None
    period: str | None = None
    unit: str | None = None
    member_id: str | None = None
    plan: str | None = None
    submitted_from: date | None = None
    submitted_to: date | None = None


def encode_cursor(claim: Claim) -> str:
    raw = json.dumps([claim.created_at.isoformat(), str(claim.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created, claim_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(created), uuid.UUID(claim_id)
    except (ValueError, TypeError):
        raise Invalid("cursor 无效：请使用上一页返回的 next_cursor。", code="invalid_cursor",
                      errors=[{"loc": ["query", "cursor"], "msg": "无效的游标"}]) from None


def claims_query(actor: Principal, filters: ClaimFilters) -> Select[Any]:
    """The claims the caller may see that match the filters, newest first (created_at, id), with the member's
    ID number for masking. A member sees only their own claims; staff their branch; the admin all."""
    certno = select(Coverage.certno).where(Coverage.member_id == Claim.member_id).order_by(
        Coverage.coverage_from.desc()).limit(1).scalar_subquery()
    stmt = select(Claim, certno)
    if actor.role == Role.MEMBER:
        stmt = stmt.where(Claim.member_id == (actor.member_id or ""))
    elif actor.role != Role.ADMIN:
        stmt = stmt.where(claims_in_branch(actor))
    f = filters
    if f.status is not None:
        stmt = stmt.where(Claim.status == f.status)
    if f.level is not None:
        stmt = stmt.where(Claim.current_level == f.level)
    if f.period is not None:
        stmt = stmt.where(Claim.period == f.period)
    if f.unit is not None:
        stmt = stmt.where(or_(Claim.unit == f.unit, Claim.submitter_org == f.unit))
    if f.member_id is not None:
        stmt = stmt.where(Claim.member_id == f.member_id)
    if f.plan is not None:
        stmt = stmt.where(Claim.plan == f.plan)
    if f.submitted_from is not None:
        stmt = stmt.where(Claim.created_at >= datetime.combine(f.submitted_from, datetime.min.time()).astimezone())
    if f.submitted_to is not None:  # inclusive: the whole day
        stmt = stmt.where(Claim.created_at < datetime.combine(f.submitted_to, datetime.max.time()).astimezone())
    return stmt.order_by(Claim.created_at.desc(), Claim.id.desc())


def list_item(claim: Claim, certno: str | None) -> ClaimListItem:
    return ClaimListItem(
        claim_id=str(claim.id), member_id=claim.member_id, certno_masked=mask_certno(certno) if certno else None,
        period=claim.period, plan=claim.plan, status=ClaimStatus(claim.status), aid_amount=claim.aid_amount,
        current_level=level_of(claim.current_level), final_level=level_of(claim.final_level),
        due_date=claim.due_date, unit=claim.unit, submitter_org=claim.submitter_org, setl_id=claim.setl_id,
        discharge_date=claim.discharge_date, rejection_code=claim.rejection_code, submitted_at=claim.created_at)


async def list_claims(session: AsyncSession, actor: Principal, filters: ClaimFilters, limit: int,
                      cursor: str | None) -> tuple[list[ClaimListItem], str | None]:
    stmt = claims_query(actor, filters)
    if cursor:
        created, claim_id = decode_cursor(cursor)
        stmt = stmt.where(or_(Claim.created_at < created, and_(Claim.created_at == created, Claim.id < claim_id)))
    rows = [(row[0], row[1]) for row in (await session.execute(stmt.limit(limit + 1))).all()]
    items = [list_item(claim, certno) for claim, certno in rows[:limit]]
    return items, encode_cursor(rows[limit - 1][0]) if len(rows) > limit else None


async def stream_claims(session: AsyncSession, actor: Principal, filters: ClaimFilters,
                        chunk: int = 1000) -> AsyncIterator[ClaimListItem]:
    """Every matching claim, fetched ``chunk`` at a time by keyset (bounded memory however long the list)."""
    cursor: str | None = None
    while True:
        items, cursor = await list_claims(session, actor, filters, chunk, cursor)
        for item in items:
            yield item
        if cursor is None:
            return
