"""Storing a roster: every check first, then the whole roster in one transaction, in bulk.

A provincial roster has hundreds of thousands of rows, so the rows go to PostgreSQL with ``COPY`` into a
temporary table and two set-based statements (members upserted by ID number, one enrolment each), never
one ORM object per person. Nothing is stored unless every check passed (API.md: refused whole).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.enrollment.domain.roster_rules import Findings, RosterMember, Staff, check_roster
from services.enrollment.models import AuditEntry, Org, Period, Roster
from shared.auth import Principal
from shared.errors import Conflict, Forbidden, Invalid
from shared.money import to_fen
from shared.rulebook import Rulebook, fee_for

STAGE_COLUMNS = ("certno", "name", "sex", "phone", "member_type", "bank_account", "bank_name", "plans",
                 "insurance", "renewing", "fee")


@dataclass(frozen=True)
class StoredRoster:
    roster: Roster
    findings: Findings
    fee_split: dict[str, Decimal] | None


async def certnos_enrolled(session: AsyncSession, period: str, certnos: list[str]) -> set[str]:
    rows = await session.execute(text(
        "SELECT m.certno FROM members m JOIN enrolments e ON e.member_id = m.id "
        "WHERE e.period = :period AND m.certno = ANY(:certnos)"), {"period": period, "certnos": certnos})
    return set(rows.scalars())


async def certnos_covered(session: AsyncSession, period: str, certnos: list[str]) -> set[str]:
    rows = await session.execute(text(
        "SELECT m.certno FROM members m JOIN enrolments e ON e.member_id = m.id "
        "WHERE e.period = :period AND e.status IN ('covered', 'withdrawn') AND m.certno = ANY(:certnos)"),
        {"period": period, "certnos": certnos})
    return set(rows.scalars())


def fee_of(rulebook: Rulebook, renewing: bool, plans: Sequence[str], default_plans: Sequence[str]) -> Decimal:
    """第四条: the renewal or new fee, plus the own fee of every optional plan joined (e.g. 女性馨康)."""
    fee = fee_for(rulebook, renewing)
    for code in plans:
        if code not in default_plans:
            fee += fee_for(rulebook, renewing, code)
    return to_fen(fee)


def fee_split(rulebook: Rulebook, groups: Sequence[tuple[Sequence[str], int]],
              default_plans: Sequence[str]) -> dict[str, Decimal] | None:
    """Who pays what of a roster's fees when the rulebook splits them between payers (seed 004: employer,
    company union, regional union, worker). ``groups``: (plans joined, how many members joined exactly those).
    A fee the rulebook does not split is counted under ``unsplit``; None when nothing is split."""
    shares: dict[str, Decimal] = {}
    any_split = False
    for plans, count in groups:
        fees = [rulebook.enrolment.fee] + [
            own for code in plans if code not in default_plans
            if (own := getattr(rulebook.plan(code), "fee", None)) is not None]
        for fee in fees:
            if fee.payers:
                any_split = True
                parts = fee.payers
            else:
                parts = {"unsplit": fee.new}  # payers sum to new == renewal; without payers count the new fee
            for payer, amount in parts.items():
                shares[payer] = shares.get(payer, Decimal("0.00")) + amount * count
    return {payer: to_fen(amount) for payer, amount in shares.items()} if any_split else None


async def store_roster(
    session: AsyncSession, *, rulebook: Rulebook, unit: Org, staff: Staff, members: list[RosterMember],
    actor: Principal, late_reason: str | None, today: date | None = None,
) -> StoredRoster:
    certnos = [m.certno for m in members]
    enrolled = await certnos_enrolled(session, rulebook.code, certnos)
    previous: set[str] | None = None
    if rulebook.previous_period and await session.get(Period, rulebook.previous_period) is not None:
        previous = await certnos_covered(session, rulebook.previous_period, certnos)
    findings = check_roster(rulebook, staff, members, today=today or date.today(), enrolled_elsewhere=enrolled,
                            previous_members=previous)
    if late_reason is not None:
        if actor.role != "admin" or not late_reason.strip():
            raise Forbidden("只有管理员可以在登记期外补录名单，且必须写明原因。", code="late_entry_not_allowed")
        findings.errors = [e for e in findings.errors if e["code"] != "outside_enrolment_window"]
    if findings.errors:
        raise Invalid(f"名单有 {len(findings.errors)} 处问题，整份未保存，请逐行修改后重新提交。",
                      code="roster_rejected", errors=findings.errors)

    default_plans = [p.code for p in rulebook.plans_without_own_fee()]
    renewing_set = previous or set()
    stage: list[tuple[Any, ...]] = []
    fee_total = Decimal("0.00")
    plan_counts: dict[tuple[str, ...], int] = {}
    fee_cache: dict[tuple[bool, tuple[str, ...]], Decimal] = {}
    for m in members:
        plans = tuple(m.plans) if m.plans is not None else tuple(default_plans)
        renewing = m.certno in renewing_set  # 第四条: a member of the previous period pays the renewal fee
        key = (renewing, plans)
        if key not in fee_cache:
            fee_cache[key] = fee_of(rulebook, renewing, plans, default_plans)
        fee = fee_cache[key]
        fee_total += fee
        plan_counts[plans] = plan_counts.get(plans, 0) + 1
        stage.append((m.certno, m.name, m.sex, m.phone, m.member_type, m.bank_account, m.bank_name, list(plans),
                      list(m.insurance), renewing, fee))
    split = fee_split(rulebook, list(plan_counts.items()), default_plans)
    roster = Roster(id=uuid.uuid4(), period=rulebook.code, unit=unit.code, status="awaiting_payment",
                    staff={"total": staff.total, "in_service": staff.in_service,
                           "basic_insured_in_service": staff.basic_insured_in_service},
                    member_count=len(members), fee_total=to_fen(fee_total), paid_total=Decimal("0.00"),
                    submitted_by=actor.username,
                    fee_split={k: str(v) for k, v in split.items()} if split else None)
    session.add(roster)
    if late_reason is not None:
        session.add(AuditEntry(actor=actor.username, action="roster.late_entry", subject=str(roster.id),
                               detail={"period": rulebook.code, "unit": unit.code, "reason": late_reason}))
    await session.flush()
    await _bulk_insert(session, roster, unit.code, stage)
    return StoredRoster(roster=roster, findings=findings, fee_split=split)


async def _bulk_insert(session: AsyncSession, roster: Roster, unit: str, stage: list[tuple[Any, ...]]) -> None:
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None
    await raw.execute(
        "CREATE TEMP TABLE roster_stage (certno varchar(18), name varchar(100), sex varchar(10), "
        "phone varchar(20), member_type varchar(20), bank_account varchar(40), bank_name varchar(100), "
        "plans varchar(50)[], insurance varchar(50)[], renewing boolean, fee numeric(14,2)) ON COMMIT DROP")
    await raw.copy_records_to_table("roster_stage", records=stage, columns=STAGE_COLUMNS)
    # The roster is the unit's current word on a person's details; a member moving units keeps one
    # member row (and so their history), now pointing at the new unit.
    await raw.execute(
        "INSERT INTO members (id, certno, name, sex, phone, member_type, bank_account, bank_name, unit, created_at) "
        "SELECT gen_random_uuid(), certno, name, sex, phone, member_type, bank_account, bank_name, $1, now() "
        "FROM roster_stage ON CONFLICT (certno) DO UPDATE SET name = EXCLUDED.name, sex = EXCLUDED.sex, "
        "phone = EXCLUDED.phone, member_type = EXCLUDED.member_type, bank_account = EXCLUDED.bank_account, "
        "bank_name = EXCLUDED.bank_name, unit = EXCLUDED.unit", unit)
    try:
        await raw.execute(
            "INSERT INTO enrolments (id, period, member_id, roster_id, unit, plans, insurance, renewing, fee, status) "
            "SELECT gen_random_uuid(), $1, m.id, $2, $3, s.plans, s.insurance, s.renewing, s.fee, 'pending' "
            "FROM roster_stage s JOIN members m ON m.certno = s.certno", roster.period, roster.id, unit)
    except Exception as exc:  # asyncpg's UniqueViolationError: someone enrolled them a moment ago
        if type(exc).__name__ == "UniqueViolationError":
            raise Conflict("名单中有人刚被其他名单登记，请重新提交。", code="concurrent_enrolment") from None
        raise
