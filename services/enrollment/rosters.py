"""Storing a roster: every check first, then the whole roster in one transaction, in bulk.

A provincial roster has hundreds of thousands of rows, so the rows go to PostgreSQL with ``COPY`` (new
members, then one enrolment each), never one ORM object per person. Nothing is stored unless every check passed (docs/API.md: refused whole).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.enrollment.coverage import previous_period
from services.enrollment.domain.roster_rules import (
    Findings,
    RosterMember,
    Staff,
    check_payers,
    check_roster,
    member_fee,
    split_fee,
    stored_certno,
)
from services.enrollment.models import AuditEntry, Org, Roster
from services.enrollment.transfers import check_belonging, record_transfers
from shared.auth import Principal
from shared.db import driver_connection
from shared.errors import Conflict, Forbidden, Invalid
from shared.money import to_fen
from shared.rulebook import Rulebook, fee_for

MEMBER_COLUMNS = ("id", "certno", "name", "sex", "phone", "member_type", "bank_account", "bank_name", "unit",
                  "created_at")
_BLOCK = 8192  # rows prepared between two sends to PostgreSQL
ENROLMENT_COLUMNS = ("period", "member_id", "roster_id", "unit", "plans", "insurance", "renewing", "fee", "status",
                     "shares")


@dataclass(frozen=True)
class StoredRoster:
    roster: Roster
    findings: Findings
    fee_split: dict[str, Decimal] | None


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
    payers: Mapping[str, Decimal] | None = None,
) -> StoredRoster:
    """Check and store a roster in the caller's transaction; raise Invalid (nothing stored) on any problem.

    The rows are prepared, PostgreSQL starts loading them (on the other core), and the checks (pure Python)
    run meanwhile in a thread; if any check fails, the caller's transaction rolls the load back, so the result
    is the same as checking first, in about half the time for a large roster.

    Seed 002: a plan with `every_union_member` covers every row without being asked for (京卡, fee 0); a row's
    fee is its plans' fee times its shares; ``payers`` (the unit's choice, from `payers_allowed`) split the
    roster's fees and replace the rulebook's own split."""
    if late_reason is not None and (actor.role != "admin" or not late_reason.strip()):
        raise Forbidden("只有管理员可以在登记期外补录名单，且必须写明原因。", code="late_entry_not_allowed")
    given = members  # as sent: the checks name each 15-digit number converted
    members = [replace(m, certno=stored_certno(m.certno)) if len(m.certno) == 15 else m for m in members]
    certnos = [m.certno for m in members]
    known, enrolled = await known_members(session, rulebook.code, certnos)
    # Covered in the previous period: enrolled in it here, or in its imported history (coverage.py).
    before = await previous_period(session, rulebook, certnos)
    previous = before.members
    # A known person of another unit is not taken over by a roster: refused, or moved by a recorded transfer.
    belonging = await check_belonging(session, rulebook=rulebook, unit=unit.code, members=members, known=known,
                                      today=today or date.today())
    default_plans = [p.code for p in rulebook.plans_without_own_fee()]
    for_everyone = tuple(p.code for p in rulebook.plans if getattr(p, "every_union_member", False))
    renewing_set = previous or set()
    roster = Roster(id=uuid.uuid4(), period=rulebook.code, unit=unit.code, status="awaiting_payment",
                    staff={"total": staff.total, "in_service": staff.in_service,
                           "basic_insured_in_service": staff.basic_insured_in_service},
                    member_count=len(members), fee_total=Decimal("0.00"), paid_total=Decimal("0.00"),
                    submitted_by=actor.username)
    if staff.as_of is not None:
        roster.staff["as_of"] = staff.as_of.isoformat()
    load = _Load(roster, unit.code, known)
    fee_total = Decimal("0.00")
    plan_counts: dict[tuple[str, ...], int] = {}
    fee_cache: dict[tuple[bool, tuple[str, ...]], Decimal] = {}
    valid_plans = {p.code for p in rulebook.plans}

    def prepare() -> Iterator[None]:
        """Each row's plans and fee, and its lines for COPY: a pause after each block of rows, where the lines
        so far go to PostgreSQL (it parses and indexes them on the other core while the next block is made)."""
        nonlocal fee_total
        for index, m in enumerate(members):
            plans = tuple(m.plans) if m.plans is not None else tuple(default_plans)
            if for_everyone:  # seed 002 京卡: every member (no other rulebook has such a plan)
                plans += tuple(code for code in for_everyone if code not in plans)
            renewing = m.certno in renewing_set  # 第四条: a member of the previous period pays the renewal fee
            key = (renewing, plans)
            if key not in fee_cache:  # an unknown plan is reported by the checks; it costs nothing here
                fee_cache[key] = fee_of(rulebook, renewing, [c for c in plans if c in valid_plans], default_plans)
            fee = fee_cache[key] if m.shares == 1 else member_fee(fee_cache[key], m.shares)
            fee_total += fee
            plan_counts[plans] = plan_counts.get(plans, 0) + m.shares
            load.add(m, plans, renewing, fee)
            if index % _BLOCK == _BLOCK - 1:
                yield
        yield

    # Load only what can load: a person already enrolled or listed twice would break the keys, and such a
    # roster is refused by the checks anyway.
    loading = None
    if not enrolled and not belonging.errors and len(set(certnos)) == len(certnos) and \
            all(len(c) == 18 for c in certnos):
        session.add(roster)
        await session.flush()  # its fee total is written with the rest at the end
        loading = asyncio.create_task(load.run(session, prepare()))
    else:
        for _ in prepare():
            pass
    # PostgreSQL loads the rows as they are prepared, while the checks (mostly polars, off the GIL) run.
    checking = asyncio.create_task(asyncio.to_thread(
        check_roster, rulebook, staff, given, today=today or date.today(), enrolled_elsewhere=enrolled,
        previous_members=previous))

    findings = await checking
    findings.warnings[:0] = before.warnings
    findings.errors.extend(check_payers(rulebook, payers).errors)
    if late_reason is not None:
        findings.errors = [e for e in findings.errors if e["code"] != "outside_enrolment_window"]
    if belonging.errors:
        # One reason per refused row: "of another unit" says no more than needed (not that they hold a share
        # this period, nor where).
        refused = belonging.refused_rows
        findings.errors = sorted(
            [e for e in findings.errors if not (e["code"] == "already_enrolled" and _row(e) in refused)]
            + belonging.errors, key=_row_order)
    findings.warnings = sorted(findings.warnings + belonging.warnings, key=_row_order)
    if findings.errors:
        if loading is not None:
            with contextlib.suppress(Exception):
                await loading  # let the load finish; the caller's transaction rolls it back
        raise Invalid(f"名单有 {len(findings.errors)} 处问题，整份未保存，请逐行修改后重新提交。",
                      code="roster_rejected", errors=findings.errors)
    assert loading is not None  # without problems, every row loads
    await loading
    roster.fee_total = to_fen(fee_total)
    await record_transfers(session, belonging.transfers, unit=unit.code, period=rulebook.code,
                           roster_id=roster.id, actor=actor)
    split: dict[str, Decimal] | None
    if payers is not None:  # the unit's own choice of payers (seed 002) replaces the rulebook's split
        split = split_fee(rulebook, roster.fee_total, payers)
        roster.payers = {payer: str(share) for payer, share in payers.items()}
    else:
        split = fee_split(rulebook, list(plan_counts.items()), default_plans)
    roster.fee_split = {payer: str(amount) for payer, amount in split.items()} if split else None
    if late_reason is not None:
        session.add(AuditEntry(actor=actor.username, action="roster.late_entry", subject=str(roster.id),
                               detail={"period": rulebook.code, "unit": unit.code, "reason": late_reason}))
    await session.flush()
    return StoredRoster(roster=roster, findings=findings, fee_split=split)


def _row(problem: dict[str, Any]) -> int | None:
    loc = problem["loc"]
    return loc[1] if len(loc) > 1 and loc[0] == "members" and isinstance(loc[1], int) else None


def _row_order(problem: dict[str, Any]) -> float:
    """Problems of the roster as a whole (window) first, then row by row, then the staff counts."""
    row = _row(problem)
    if row is not None:
        return row
    return float("inf") if problem["loc"] and problem["loc"][0] == "staff" else 0


async def known_members(session: AsyncSession, period: str, certnos: list[str]
                        ) -> tuple[dict[str, tuple[Any, ...]], set[str]]:
    """The people of a roster already known, and which of them are enrolled in ``period``, in one look-up (a
    200,000-number array is sent and matched once): (certno -> (id, name, sex, phone, member_type, bank_account,
    bank_name, unit), the certnos already enrolled in ``period``)."""
    rows = await session.execute(text(
        "SELECT m.certno, m.id, m.name, m.sex, m.phone, m.member_type, m.bank_account, m.bank_name, m.unit, "
        "EXISTS (SELECT 1 FROM enrolments e WHERE e.member_id = m.id AND e.period = :period) "
        "FROM members m WHERE m.certno = ANY(:certnos)"), {"period": period, "certnos": certnos})
    known: dict[str, tuple[Any, ...]] = {}
    enrolled: set[str] = set()
    for row in rows:
        known[row[0]] = tuple(row[1:9])
        if row[9]:
            enrolled.add(row[0])
    return known, enrolled


def _pg_array(items: Sequence[str]) -> str:
    return "{" + ",".join(f'"{item}"' for item in items) + "}"  # plan and insurance codes carry no quotes


def _text(value: str) -> str:
    """A value for COPY's text format: backslash, tab and line breaks escaped (names may hold anything)."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


class _Load:
    """The rows of one roster as text for ``COPY`` (PostgreSQL parses it on its own core, while this process goes
    on checking): new members, then one enrolment per person. A known person keeps their stored name, phone
    and bank details whatever the roster says (issue #9: changes go through the audited PATCH; the checks
    warn about each difference); only their member type follows the roster (the unit's word on who is in
    service and who retired). Their unit changes only by a recorded transfer (transfers.record_transfers).
    Fields other than the free-text names are loaded as the roster gave them: if one is malformed, the checks
    refuse the roster and the load is rolled back anyway."""

    def __init__(self, roster: Roster, unit: str, known: dict[str, tuple[Any, ...]]) -> None:
        self.roster, self.unit, self.known = roster, unit, known
        self.now = datetime.now(UTC).isoformat()
        self.member_lines: list[str] = []
        self.enrolment_lines: list[str] = []
        self.changed: list[tuple[Any, ...]] = []
        self.head = f"{_text(roster.period)}\t"
        self.middle = f"\t{roster.id}\t{_text(unit)}\t"
        self._tails: dict[tuple[Any, ...], str] = {}
        self._random: list[bytes] = []
        self._offset = 0
        self._millisecond = time.time_ns() // 1_000_000
        self._count = 0

    def add(self, m: RosterMember, plans: Sequence[str], renewing: bool, fee: Decimal) -> None:
        known = self.known.get(m.certno)
        if known is None:
            member_id: Any = self._new_id()
            self.member_lines.append(
                f"{member_id}\t{m.certno}\t{_text(m.name)}\t{m.sex}\t{m.phone}\t{m.member_type}\t"
                f"{m.bank_account}\t{_text(m.bank_name)}\t{self.unit}\t{self.now}\n")
        else:
            member_id = known[0]
            if known[4] != m.member_type:
                self.changed.append((member_id, m.member_type))
        # Rows of one roster repeat the same few plan lists, insurance lists and fees: format each once.
        key = (tuple(plans), m.insurance, renewing, fee, m.shares)
        tail = self._tails.get(key)
        if tail is None:
            tail = self._tails[key] = (f"{_pg_array(plans)}\t{_pg_array(m.insurance)}\t"
                                       f"{'t' if renewing else 'f'}\t{fee}\tpending\t{m.shares}\n")
        self.enrolment_lines.append(f"{self.head}{member_id}{self.middle}{tail}")

    def _new_id(self) -> str:
        """A time-ordered (version 7, RFC 9562) UUID: the roster's millisecond, then a counter of its new members,
        then 48 random bits (one bulk read of the OS's randomness per 4,096 ids). The ids of one roster ascend,
        so PostgreSQL appends them to the members and enrolments keys instead of inserting 200,000 random keys
        all over the B-trees (and the enrolments' foreign key finds its member in the page just written)."""
        if not self._random:
            self._random = [os.urandom(6 * 4096)]
            self._offset = 0
        chunk, start = self._random[0], self._offset
        h = chunk[start:start + 6].hex()
        self._offset += 6
        if self._offset >= len(chunk):
            self._random.clear()
        count = self._count
        self._count += 1
        head = f"{self._millisecond + (count >> 24):012x}7{count >> 12 & 0xfff:03x}"  # 4,096 x 4,096 a millisecond
        return f"{head[:8]}-{head[8:12]}-{head[12:]}-8{count & 0xfff:03x}-{h[:12]}"

    async def _member_blocks(self, blocks: Iterator[None]) -> AsyncIterator[bytes]:
        """The new members' lines, block by block as ``blocks`` makes them (``add`` called for each row)."""
        sent = 0
        for _ in blocks:
            if len(self.member_lines) > sent:
                yield "".join(self.member_lines[sent:]).encode()
                sent = len(self.member_lines)
            await asyncio.sleep(0)  # let the block just made go out before the next is made

    async def run(self, session: AsyncSession, blocks: Iterator[None]) -> None:
        """Prepare the rows (``blocks``: ``add`` for each, in blocks) while PostgreSQL loads the new members,
        then load the enrolments."""
        raw = await driver_connection(session)
        try:
            await raw.copy_to_table("members", source=self._member_blocks(blocks), columns=MEMBER_COLUMNS,
                                    format="text")
            if self.changed:
                await raw.executemany("UPDATE members SET member_type = $2, version = version + 1 WHERE id = $1", self.changed)
            await raw.copy_to_table("enrolments", source=io.BytesIO("".join(self.enrolment_lines).encode()),
                                    columns=ENROLMENT_COLUMNS, format="text")
        except Exception as exc:  # asyncpg's UniqueViolationError: someone enrolled them a moment ago
            if type(exc).__name__ == "UniqueViolationError":
                raise Conflict("名单中有人刚被其他名单登记，请重新提交。", code="concurrent_enrolment") from None
            raise
