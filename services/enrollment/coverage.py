"""Who was covered in a period: the one answer that renewal fees (seed 003 第四条), the retiree rule (第一条,
from the 19th period) and loyalty (第十五条) all use.

A person was covered in a period if they hold a paid enrolment in it in this system (status covered, or
withdrawn later: they were covered and paid, 第十四条 refunds nothing), or if the centre imported them in the
period's history (``period_history``: a period run on paper before the system). People are matched by ID
number, so a history person later enrolled by a roster is the same person. Aid received in a period: aid
approved by the claims service (``member_aid``: the sum of its claims' current aid, loyalty.py) or, for a
period in history, what the paper record says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.enrollment.models import Period
from shared.rulebook import Rulebook

# (period, certno, aid_received), one row per source: the subquery every "covered in" question reads.
PERIOD_COVERAGE = (
    "(SELECT e.period, m.certno, EXISTS (SELECT 1 FROM member_aid a WHERE a.member_id = e.member_id "
    "AND a.period = e.period AND a.aid_total > 0) AS aid_received "
    "FROM enrolments e JOIN members m ON m.id = e.member_id WHERE e.status IN ('covered', 'withdrawn') "
    "UNION ALL SELECT h.period, h.certno, h.aid_received FROM period_history h)"
)


async def certnos_covered(session: AsyncSession, period: str, certnos: list[str]) -> set[str]:
    """Which of these people were covered in the period."""
    rows = await session.execute(text(
        f"SELECT DISTINCT c.certno FROM {PERIOD_COVERAGE} c WHERE c.period = :period AND c.certno = ANY(:certnos)"),
        {"period": period, "certnos": certnos})
    return set(rows.scalars())


async def anyone_covered(session: AsyncSession, period: str) -> bool:
    return bool((await session.execute(text(
        f"SELECT EXISTS (SELECT 1 FROM {PERIOD_COVERAGE} c WHERE c.period = :period)"), {"period": period})).scalar())


# The member ids of roster :roster covered in every period of :chain (:n periods) without aid in any of them
# (第十五条).
LOYAL_MEMBERS = (
    "SELECT e.member_id FROM enrolments e JOIN members m ON m.id = e.member_id WHERE e.roster_id = :roster "
    "AND (SELECT count(DISTINCT c.period) = :n AND NOT bool_or(c.aid_received) "
    f"     FROM {PERIOD_COVERAGE} c WHERE c.certno = m.certno AND c.period = ANY(CAST(:chain AS varchar[])))"
)


@dataclass
class PreviousPeriod:
    """What a roster knows of its period's previous one. ``members``: those of the roster covered in it, or
    None when it cannot be known (no previous period in the system, or nobody recorded in it)."""

    members: set[str] | None
    warnings: list[dict[str, Any]] = field(default_factory=list)


async def previous_period(session: AsyncSession, rulebook: Rulebook, certnos: list[str]) -> PreviousPeriod:
    code = rulebook.previous_period
    if not code:
        return PreviousPeriod(None)  # the first period of a scheme: everyone is new
    if await session.get(Period, code) is None:
        return PreviousPeriod(None, [{
            "loc": ["previous_period"], "code": "previous_period_missing",
            "msg": f"规则书所指的上一期（{code}）不在系统中，无法认定谁是续交人员：本名单每人都按新参互标准交费（第四条）。"
                   f"如上一期在系统启用前办理，请管理员先建立该期，并导入其参互名单（POST /api/v1/periods/{code}/history）。"}])
    members = await certnos_covered(session, code, certnos)
    if members or await anyone_covered(session, code):
        return PreviousPeriod(members)
    # An empty previous period is one whose list has not been imported yet, not one nobody joined: treating
    # it as known would charge everyone the new fee silently and refuse every retiree (第一条).
    return PreviousPeriod(None, [{
        "loc": ["previous_period"], "code": "previous_period_empty",
        "msg": f"上一期（{code}）在系统中没有任何参互记录（既没有名单，也没有导入的往期名单），无法认定谁是续交人员："
               f"本名单每人都按新参互标准交费（第四条）。如上一期在系统启用前办理，请管理员先导入其参互名单"
               f"（POST /api/v1/periods/{code}/history）再提交。"}])
