"""A claim's aid told to the member in plain Chinese (issue #13 item 2): which bands of the plan this stay's base
fell into, at what rate, and what each paid. Pure: a plan from the period's rulebook and what the claim stored.

The amount itself is never computed here: it is the assessment stored on the claim (domain/aid.py). This only
retells it: the parts of the base in each band (seed 003 第七条 分段计算，累加支付 and 第八条 one start point a period; or one rate on the whole base
under ``whole_base``, seed 001), then the minimum and the caps when they changed the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from shared.money import format_money, to_fen
from shared.rulebook import BandedPlan

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class BandUse:
    """One band the stay's base reached: the part of the base inside it, its rate and what it paid."""

    label: str
    rate: Decimal
    part: Decimal
    aid: Decimal

    @property
    def text(self) -> str:
        return f"{self.label}：本次有 {format_money(self.part)} 元，按 {percent(self.rate)} 补助 {format_money(self.aid)} 元"


def percent(rate: Decimal) -> str:
    value = (rate * 100).normalize()
    return f"{value:f}%"


def yuan(amount: Decimal) -> str:
    """An amount as a person says it: 10000 -> 1万元, 500 -> 500元."""
    if amount >= 10000 and amount % 10000 == 0:
        return f"{(amount / 10000).normalize():f}万元"
    return f"{amount.normalize():f}元"


def band_label(over: Decimal | None, upto: Decimal | None) -> str:
    if upto is None:
        return f"核定基数超过{yuan(over or ZERO)}的部分"
    return f"核定基数{yuan(over or ZERO)}以上至{yuan(upto)}（含）的部分"


def band_uses(plan: BandedPlan, prior_base: Decimal, cumulative_base: Decimal) -> list[BandUse]:
    """Marginal bands: the part of (prior_base, cumulative_base] inside each band (`over` exclusive, `upto`
    inclusive), as domain/aid.py's F counts them; the stay's own base is that interval."""
    uses = []
    for band in plan.bands:
        if band.over is None:
            continue
        low = max(prior_base, band.over)
        high = cumulative_base if band.upto is None else min(cumulative_base, band.upto)
        if high <= low:
            continue
        part = high - low
        uses.append(BandUse(band_label(band.over, band.upto), band.rate, to_fen(part), to_fen(band.rate * part)))
    return uses


def explain_banded(plan: BandedPlan, *, stay_base: Decimal, cumulative_base: Decimal, aid: Decimal) -> list[str]:
    """Sentences for the member, in order: the base, the start point, each band used, the result."""
    prior = max(cumulative_base - stay_base, ZERO)
    lines = [f"本次住院的核定基数为 {format_money(stay_base)} 元（个人负担的医疗费用，减去全自费部分）；"
             f"连同本期此前的住院，本期累计核定基数为 {format_money(cumulative_base)} 元。"]
    if plan.mode == "whole_base":
        rate, start = Decimal(0), None
        for band in plan.bands:
            if band.from_ is not None and band.from_ <= cumulative_base:
                rate, start = band.rate, band.from_
        if start is None:
            lines.append("累计核定基数未达到最低一档的起点，不予补助。")
        else:
            lines.append(f"累计核定基数达到{yuan(start)}，整个基数按 {percent(rate)} 计算补助。")
    else:
        first = plan.bands[0].over if plan.bands and plan.bands[0].over is not None else ZERO
        if first > 0:
            lines.append(f"每期累计核定基数中{yuan(first)}及以下的部分为起付标准，不予补助。")
        uses = band_uses(plan, prior, cumulative_base)
        if not uses:
            lines.append("本次的核定基数没有超过起付标准的部分。")
        lines.extend(use.text + "。" for use in uses)
        banded = sum((u.aid for u in uses), ZERO)
        if plan.min_aid is not None and aid > banded and prior == 0:
            lines.append(f"按分段计算不足最低补助标准，按最低 {format_money(plan.min_aid)} 元补助。")
        elif aid + Decimal("0.05") < banded:  # a cap, not the fen of rounding each band
            lines.append("本期或个人累计补助已接近最高限额，本次按限额内的余额补助。")
    lines.append(f"本次补助 {format_money(aid)} 元。")
    return lines
