"""A per-day allowance (seed 002 住院津贴, rulebooks/beijing-2014.yaml: 50.00 a day, the stay's first 3 days not
paid, 180 days a period) pays only the days inside the member's cover: seed 002 says nothing of a stay begun
before the cover, so seed 003 第十二条（一） ("在互助期外发生的住院医疗费用" 不予补助) applies."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from services.claims.domain.benefits import Stay, assess_per_day, assess_per_day_period, stay_days
from shared.rulebook import PerDayPlan
from tests.unit.test_aid_engine_16 import ALLOWANCE

assert isinstance(ALLOWANCE, PerDayPlan)
PLAN: PerDayPlan = ALLOWANCE
day = dt.date.fromisoformat


@pytest.mark.parametrize(("admission", "discharge", "cover_from", "days"), [
    ("2014-03-01", "2014-03-21", None, 17),             # 20 nights - 3 deductible
    ("2014-03-01", "2014-03-21", "2014-03-01", 17),     # cover from admission: the same
    ("2014-03-01", "2014-03-21", "2014-03-03", 17),     # cover began inside the deductible days: the same
    ("2014-03-01", "2014-03-21", "2014-03-11", 10),     # admitted 10 days before cover: 10 days inside it
    ("2014-03-01", "2014-03-21", "2014-03-21", 0),      # cover began on the discharge day
    ("2013-12-20", "2014-01-10", "2014-01-01", 9),      # across the new year into a new member's first period
])
def test_only_the_days_inside_the_cover_count(admission: str, discharge: str, cover_from: str | None,
                                              days: int) -> None:
    start = day(cover_from) if cover_from else None
    assert stay_days(PLAN, day(admission), day(discharge), start) == days
    assessed = assess_per_day(PLAN, day(admission), day(discharge), 0, start)
    assert (assessed.days, assessed.aid_amount) == (days, PLAN.rate_per_day * days)


def test_a_stay_admitted_before_the_cover_says_so_and_the_period_reassessment_agrees() -> None:
    assessed = assess_per_day(PLAN, day("2014-03-01"), day("2014-03-21"), 0, day("2014-03-11"))
    assert assessed.aid_amount == Decimal("500.00")  # 10 days x 50.00, not 17 x 50.00 = 850.00
    assert "2014-03-11" in assessed.explanation and "第十二条" in assessed.explanation
    again = assess_per_day_period(PLAN, [Stay("a", day("2014-03-01"), day("2014-03-21"), day("2014-03-11")),
                                         Stay("b", day("2014-04-01"), day("2014-04-11"), day("2014-03-11"))])
    assert [a.aid_amount for a in again] == [Decimal("500.00"), Decimal("350.00")]  # 10 days, then 10 - 3
