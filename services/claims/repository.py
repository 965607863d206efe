"""Claims' reads that several modules share: the rulebook of a period (parsed once per revision), coverages,
a claim within the caller's reach, its steps and adjustments."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from datetime import date
from typing import Any

from sqlalchemy import Text, cast, func, or_, select, text, union
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.claims.domain.benefits import term_of
from services.claims.models import Claim, ClaimAdjustment, ClaimStep, Coverage, HistoryCoverage, PeriodCopy
from shared import idnumber
from shared.auth import Principal
from shared.errors import Forbidden, NotFound
from shared.rulebook import FixedPlan, Rulebook, parse_rulebook, period_rulebook
from shared.scope import array_in_branch
from shared.vocab import Role


def rulebook_of(period: PeriodCopy) -> Rulebook:
    """The period's rulebook, parsed once per (period, revision, content) (shared/rulebook.py's cache)."""
    return period_rulebook(period.code, period.revision, period.rulebook)


_BY_FINGERPRINT: OrderedDict[tuple[str, int, str], Rulebook] = OrderedDict()


async def rulebook_for(session: AsyncSession, period: str | None) -> Rulebook | None:
    return (await rulebook_with(session, period))[0]


async def rulebook_with(session: AsyncSession, period: str | None, *also: ColumnElement[Any]
                        ) -> tuple[Rulebook | None, tuple[Any, ...] | None]:
    """The period's rulebook, and ``also`` (scalar subqueries) read in the same round trip. The stored document
    is fetched and parsed only when its (revision, digest) is new to this process: PostgreSQL digests it, so a
    submission does not carry the whole rulebook over the wire and hash it again each time (issue #15)."""
    if period is None:
        return None, None
    row = (await session.execute(select(PeriodCopy.revision, func.md5(cast(PeriodCopy.rulebook, Text)), *also)
                                 .where(PeriodCopy.code == period))).first()
    if row is None:
        return None, None
    key = (period, int(row[0] or 0), str(row[1]))
    rulebook = _BY_FINGERPRINT.get(key)
    if rulebook is None:
        stored = await session.get(PeriodCopy, period, populate_existing=True)  # the row the digest was of
        if stored is None:
            return None, None
        rulebook = _BY_FINGERPRINT[key] = parse_rulebook(stored.rulebook)  # keyed here: not hashed again
        while len(_BY_FINGERPRINT) > 64:
            _BY_FINGERPRINT.popitem(last=False)
    else:
        _BY_FINGERPRINT.move_to_end(key)
    return rulebook, tuple(row[2:])


async def coverage_on(session: AsyncSession, member_id: str | None, certno: str | None, day: date, *,
                      lock: bool = False) -> Coverage | None:
    """The member's coverage whose window contains ``day`` (第三条: the discharge date decides); with ``lock``,
    locked (FOR UPDATE, read afresh), so intakes of one member and period go one at a time: two claims
    submitted at once cannot both use the same band room or cap; the second waits for the first to commit."""
    stmt = select(Coverage).where(Coverage.coverage_from <= day, Coverage.coverage_to >= day)
    stmt = stmt.where(Coverage.member_id == member_id) if member_id else \
        stmt.where(Coverage.certno == idnumber.lookup_form(certno or ""))
    stmt = stmt.order_by(Coverage.coverage_from.desc()).limit(1)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalars().first()


LOCK_MANY_SQL = text("""
SELECT 1 FROM coverages c JOIN unnest(CAST(:members AS text[]), CAST(:periods AS text[])) AS k(member_id, period)
  ON c.member_id = k.member_id AND c.period = k.period
ORDER BY c.member_id, c.period
FOR UPDATE OF c
""")


async def lock_members_periods(session: AsyncSession, keys: list[tuple[str, str]]) -> None:
    """The intake lock (``coverage_on(lock=True)``) for many (member, period) at once (the feed's auto claims, a batch at a time), in one
    order, so a feed and an application, or two feeds, wait for each other and never deadlock."""
    if keys:
        await session.execute(LOCK_MANY_SQL, {"members": [m for m, _ in keys], "periods": [p for _, p in keys]})


async def coverages_of(session: AsyncSession, member_id: str) -> list[Coverage]:
    """Every coverage claims knows of the member, the latest first."""
    return list((await session.execute(select(Coverage).where(Coverage.member_id == member_id)
                                       .order_by(Coverage.coverage_from.desc()))).scalars())


def reaches(actor: Principal, claim: Claim) -> bool:
    """Staff reach a claim of their branch: the member's organisation or the submitter's at submission."""
    return actor.covers(claim.unit_path) or actor.covers(claim.submitter_path or [])


def claims_in_branch(actor: Principal) -> ColumnElement[bool]:
    """SQL form of :func:`reaches`."""
    return or_(array_in_branch(Claim.unit_path, actor.branch), array_in_branch(Claim.submitter_path, actor.branch))


async def load_claim(session: AsyncSession, claim_id: uuid.UUID, actor: Principal, *, lock: bool = False) -> Claim:
    claim = await session.get(Claim, claim_id, with_for_update=lock)
    if claim is None:
        raise NotFound("申请不存在。", code="claim_not_found")
    if actor.role == Role.MEMBER:
        if actor.member_id != claim.member_id:
            raise Forbidden("只能查看本人的申请。", code="not_yourself")
    elif actor.role == Role.BUREAU:  # a bureau sends settlements; it reads no claims
        raise Forbidden("医保部门账号不能查看互助申请。", code="role_not_allowed")
    elif not reaches(actor, claim):  # finance too: an office's finance sees its office's branch
        raise Forbidden("该申请不在您所属组织的管辖范围内。", code="outside_subtree")
    return claim


async def steps_of(session: AsyncSession, claim: Claim) -> list[ClaimStep]:
    return list((await session.execute(select(ClaimStep).where(ClaimStep.claim_id == claim.id)
                                       .order_by(ClaimStep.at))).scalars())


async def adjustments_of(session: AsyncSession, claim: Claim) -> list[ClaimAdjustment]:
    return list((await session.execute(select(ClaimAdjustment).where(ClaimAdjustment.claim_id == claim.id)
                                       .order_by(ClaimAdjustment.at))).scalars())


async def scheme_periods(session: AsyncSession, scheme: str) -> list[str]:
    """The scheme's periods claims knows, in order of their coverage's first day (windows.coverage.from; a
    scheme's periods follow one another, seed 002 "三年"), for terms of several periods."""
    start = PeriodCopy.rulebook["windows"]["coverage"]["from"].astext
    return list((await session.execute(select(PeriodCopy.code).where(
        PeriodCopy.rulebook["scheme"].astext == scheme).order_by(start, PeriodCopy.code))).scalars())


async def term_periods(session: AsyncSession, member_id: str, plan: FixedPlan, rulebook: Rulebook, period: str
                       ) -> tuple[str, ...]:
    """The periods a fixed plan pays once in for this member: the period, or with `once_per: term` the member's
    term that holds it (seed 002 "三年90元", ``domain.benefits.term_of``)."""
    if plan.once_per != "term" or plan.term_periods is None:
        return (period,)
    joined = (await session.execute(select(Coverage.period).where(
        Coverage.member_id == member_id, Coverage.plans.contains([plan.code])))).scalars().all()
    return term_of(await scheme_periods(session, rulebook.scheme), joined, plan.term_periods, period)


async def years_of_participation(session: AsyncSession, member_id: str) -> int:
    """The periods the member was covered in (seed 000 "参加医疗互助活动年限"): claims' coverages of them and the
    periods run before this system whose history import names one of their ID numbers."""
    certnos = select(Coverage.certno).where(Coverage.member_id == member_id)
    periods = union(select(Coverage.period).where(Coverage.member_id == member_id),
                    select(HistoryCoverage.period).where(HistoryCoverage.certno.in_(certnos))).subquery()
    return int((await session.execute(select(func.count()).select_from(periods))).scalar_one())
