"""Pure rules around claims: document types by magic bytes, overdue notices, the admin calendar."""

from __future__ import annotations

from datetime import date

from services.claims.domain.documents import document_type, missing_documents, sniff
from services.claims.domain.workdays import WorkCalendar, add_working_days, working_days_between
from services.claims.overdue import level_above, notices_due, org_at


def test_only_jpeg_png_and_pdf_are_recognised_by_their_first_bytes() -> None:
    assert sniff(b"\xff\xd8\xff\xe1rest") == ("image/jpeg", "jpg")
    assert sniff(b"\x89PNG\r\n\x1a\n....") == ("image/png", "png")
    assert sniff(b"%PDF-1.4") == ("application/pdf", "pdf")
    assert sniff(b"GIF89a") is None and sniff(b"PK\x03\x04") is None and sniff(b"") is None


def test_document_types_are_named_by_code_or_in_chinese() -> None:
    assert document_type("出院证") == "discharge_certificate" == document_type("discharge_certificate")
    assert document_type("体检报告") is None
    assert missing_documents("banded", {"id_card"}) == ["settlement_sheet", "discharge_certificate", "bank_card"]
    assert "diagnosis_certificate" in missing_documents("fixed", set())


def test_a_reminder_once_past_due_and_an_escalation_two_working_days_later() -> None:
    friday = date(2026, 11, 20)
    assert notices_due(friday, friday, None) == []
    assert notices_due(friday, date(2026, 11, 23), None) == ["reminder"]
    assert notices_due(friday, date(2026, 11, 24), None) == ["reminder"]  # due + 2 working days is Tuesday
    assert notices_due(friday, date(2026, 11, 25), None) == ["reminder", "escalation"]


def test_the_reviewing_organisation_and_the_one_above_come_from_the_units_path() -> None:
    path = ["YN", "YN-KM", "YN-KM-WH", "YN-KM-WH-001"]
    assert [org_at(path, lv) for lv in ("agency_point", "office", "centre")] == ["YN-KM-WH", "YN-KM", "YN"]
    assert level_above("agency_point") == "office" and level_above("centre") == "centre"


def test_an_admin_calendar_decides_working_days_for_the_years_it_knows() -> None:
    calendar = WorkCalendar(years=frozenset({2099}), holidays={date(2099, 10, 1): "国庆节"},
                            workdays={date(2099, 10, 10): "调休"})
    assert calendar.is_working_day(date(2099, 10, 1)) == (False, True)  # Thursday off
    assert calendar.is_working_day(date(2099, 10, 10)) == (True, True)  # Saturday worked
    assert calendar.is_working_day(date(2100, 1, 4)) == (True, False)  # unknown year: Monday-Friday
    due = add_working_days(date(2099, 12, 30), 3, calendar)
    assert due.due == date(2100, 1, 4) and due.warning is not None and "2100" in due.warning
    assert working_days_between(date(2099, 9, 30), date(2099, 10, 2), calendar) == 1
