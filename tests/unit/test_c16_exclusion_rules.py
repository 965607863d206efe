"""第十二条 (seed 003): what intake refuses from the data, and the reviewer's checklist for the rest
(services/claims/domain/exclusions.py, the project's yunnan-18.yaml)."""

from __future__ import annotations

from datetime import date

import pytest

from services.claims.domain.exclusions import answers_to_record
from services.claims.domain.intake import CoverageFacts, IntakeFacts, screen
from shared.errors import Invalid
from shared.rulebook import RULEBOOKS_DIR, RulebookError, load_rulebook, parse_rulebook

YUNNAN = load_rulebook((RULEBOOKS_DIR / "yunnan-18.yaml").read_text(encoding="utf-8"))
CHECKLIST = YUNNAN.exclusions_checklist
STAY = IntakeFacts(plan="inpatient", discharge_date=date(2022, 5, 1), med_type="21",
                   coverage=CoverageFacts("yn-18", ("inpatient",), None))


@pytest.mark.parametrize(("med_type", "code"), [
    ("21", None), ("22", None), ("23", None), ("24", None),
    ("28", None),                      # 日间手术: an admission (第六条 住院), not an outpatient settlement
    ("52", "excluded_maternity"),      # 第十二条第三款 女职工生育
    ("14", "excluded_outpatient"),     # 第十二条第四款 门诊慢特病
    ("13", "excluded_outpatient"),     # 第十二条第四款 急诊
])
def test_intake_refuses_what_the_settlement_shows_and_admits_day_surgery(med_type: str, code: str | None) -> None:
    refusal = screen(IntakeFacts(**{**STAY.__dict__, "med_type": med_type}), YUNNAN, date(2022, 6, 1))
    assert (refusal.code if refusal else None) == code


def test_the_checklist_is_the_part_of_article_12_no_data_shows() -> None:
    assert CHECKLIST is not None
    assert [(i.code, i.article) for i in CHECKLIST] == [
        ("excluded_work_injury", "第十二条第三款"), ("excluded_third_party", "第十二条第三款"),
        ("excluded_new_local_payments", "第十二条第五款"), ("excluded_fraud", "第十二条第六款")]
    assert load_rulebook((RULEBOOKS_DIR / "yunnan-19.yaml").read_text(encoding="utf-8")).exclusions_checklist \
        == CHECKLIST


def test_the_approving_decision_answers_every_item_none_applying() -> None:
    none = {i.code: False for i in CHECKLIST or []}
    assert answers_to_record(CHECKLIST, none, kind="approve", approving=True) == none
    with pytest.raises(Invalid) as missing:
        answers_to_record(CHECKLIST, {"excluded_fraud": False}, kind="approve", approving=True)
    assert missing.value.code == "exclusions_checklist_incomplete" and len(missing.value.errors) == 3
    with pytest.raises(Invalid) as applies:
        answers_to_record(CHECKLIST, {**none, "excluded_fraud": True}, kind="approve", approving=False)
    assert applies.value.code == "exclusion_applies"
    # a level that passes the claim up may leave it to the approver
    assert answers_to_record(CHECKLIST, None, kind="approve", approving=False) is None
    # a rulebook without a checklist asks nothing, and takes no answers
    assert answers_to_record(None, None, kind="approve", approving=True) is None
    with pytest.raises(Invalid) as unknown:
        answers_to_record(None, {"excluded_fraud": False}, kind="approve", approving=True)
    assert unknown.value.code == "exclusion_unknown"


def test_a_rejection_citing_an_item_records_it_as_applying() -> None:
    assert answers_to_record(CHECKLIST, None, kind="reject", approving=False, reason_code="excluded_work_injury") \
        == {"excluded_work_injury": True}
    assert answers_to_record(CHECKLIST, None, kind="reject", approving=False, reason_code="incomplete") is None


def test_a_checklist_code_given_twice_is_refused() -> None:
    doc = YUNNAN.to_document()
    doc["exclusions_checklist"] = [*doc["exclusions_checklist"], doc["exclusions_checklist"][0]]
    with pytest.raises(RulebookError) as error:
        parse_rulebook(doc)
    assert error.value.errors[0]["loc"] == ["exclusions_checklist", 4, "code"]
