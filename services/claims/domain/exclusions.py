"""The reviewer's checklist of the exclusions no data shows (seed 003 第十二条), pure: no I/O.

Intake refuses what a settlement shows by itself (maternity, work injury where coded, outpatient types:
``domain/bureau.py``). What no field shows (a fight, drunkenness, self-harm, a crime, a medical accident paid by
the hospital, third-party liability, new local payments, fraud ...) is asked of the reviewer: the rulebook lists
it as ``exclusions_checklist`` (code, text, article) and :func:`answers_to_record` checks the reviewer's answers
to it, ``{code: true}`` meaning "this exclusion applies to the claim":

- the approving decision (the one that makes the claim approved) must answer every item, and no item may apply:
  422 ``exclusions_checklist_incomplete`` naming each missing item, 422 ``exclusion_applies`` naming each item
  answered true (such a claim is rejected, citing the item);
- a decision at a lower level, a rejection or a return may answer some items or none;
- a rejection whose ``reason_code`` is an item's code records that item as applying;
- an answer to an item the rulebook does not list is 422 ``exclusion_unknown``.

The answers returned are recorded with the decision (the claim's audit step).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shared.errors import Invalid
from shared.rulebook import ExclusionCheck

__all__ = ["FIELD", "answers_to_record", "cited_item"]

FIELD = "exclusions_checklist"


def cited_item(checklist: Sequence[ExclusionCheck] | None, reason_code: str | None) -> ExclusionCheck | None:
    """The checklist item a rejection cites as its reason code, if any."""
    return next((item for item in checklist or () if item.code == reason_code), None)


def answers_to_record(checklist: Sequence[ExclusionCheck] | None, answers: Mapping[str, bool] | None, *,
                      kind: str, approving: bool, reason_code: str | None = None) -> dict[str, bool] | None:
    """The answers to record with a decision of ``kind`` (``approving``: it makes the claim approved), or the
    refusal of the decision as a 422 naming the field ``exclusions_checklist`` and the item."""
    items = list(checklist or ())
    codes = [item.code for item in items]
    given = dict(answers or {})
    unknown = [code for code in given if code not in codes]
    if unknown:
        raise Invalid(f"核查项不在本期规则书的除外责任清单中：{'、'.join(unknown)}。", code="exclusion_unknown",
                      errors=[{"loc": ["body", FIELD, code], "msg": "不认识的核查项"} for code in unknown])
    if kind == "approve":
        applying = [item for item in items if given.get(item.code) is True]
        if applying:
            raise Invalid("有除外责任情形成立，不能批准；请驳回并以该项为原因代码（reason_code）。",
                          code="exclusion_applies",
                          errors=[{"loc": ["body", FIELD, item.code], "msg": f"{item.text}（{item.article}）"}
                                  for item in applying])
        missing = [item for item in items if item.code not in given] if approving else []
        if missing:
            raise Invalid(f"批准前须逐项核查除外责任（{'、'.join(item.article for item in missing)}）："
                          f"{'；'.join(item.text for item in missing)}。", code="exclusions_checklist_incomplete",
                          errors=[{"loc": ["body", FIELD, item.code], "msg": f"未核查：{item.text}"}
                                  for item in missing])
    if kind == "reject" and (cited := cited_item(items, reason_code)) is not None:
        given[cited.code] = True
    if not given:
        return None
    return {code: given[code] for code in codes if code in given}  # in the rulebook's order
