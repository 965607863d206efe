"""Pure rules of issue 9: a settlement's identities (services/claims/domain/settlement.py) and branch scoping by
path segments (shared/scope.py)."""

from __future__ import annotations

import io
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st
from pypdf import PdfWriter

from services.claims.domain.documents import content_problem
from services.claims.domain.settlement import amounts_of, check_settlement
from shared.auth import Principal
from shared.scope import in_branch

D = Decimal
fen = st.integers(min_value=0, max_value=10_000_000_00).map(lambda n: D(n).scaleb(-2))


def whole(hifp: Decimal, maf: Decimal, acct: Decimal, cash: Decimal, own: Decimal) -> dict[str, Decimal]:
    """A settlement whose identities hold by construction (the reference's field names)."""
    psn = acct + cash
    return {"hifp_pay": hifp, "maf_pay": maf, "fund_pay_sumamt": hifp + maf, "acct_pay": acct,
            "psn_cash_pay": cash, "psn_part_amt": psn, "fulamt_ownpay_amt": min(own, psn),
            "medfee_sumamt": hifp + maf + psn}


@given(fen, fen, fen, fen, fen)
def test_a_settlement_whose_identities_hold_is_plausible(hifp: Decimal, maf: Decimal, acct: Decimal, cash: Decimal,
                                                         own: Decimal) -> None:
    assert check_settlement(whole(hifp, maf, acct, cash, own)) == []


@given(fen, fen, fen, fen, st.sampled_from(["medfee_sumamt", "fund_pay_sumamt", "psn_part_amt"]),
       st.integers(min_value=2, max_value=10**9))
def test_a_total_off_by_more_than_a_fen_is_named_with_its_difference(
        hifp: Decimal, maf: Decimal, acct: Decimal, cash: Decimal, field: str, off: int) -> None:
    s = whole(hifp, maf, acct, cash, D("0.00"))
    s[field] += D(off).scaleb(-2)
    problems = check_settlement(s)
    assert problems and field in {p.field for p in problems}
    named = next(p for p in problems if p.field == field)
    assert named.difference == D(off).scaleb(-2) and "相差" in named.message


def test_one_fen_of_rounding_is_tolerated_two_are_not() -> None:
    s = whole(D("100.00"), D("0.00"), D("0.00"), D("50.00"), D("0.00"))
    assert check_settlement({**s, "medfee_sumamt": D("150.01")}) == []
    [p] = check_settlement({**s, "medfee_sumamt": D("150.02")})
    assert (p.code, str(p.difference)) == ("settlement_total_mismatch", "0.02")


def test_the_attack_personal_part_larger_than_the_bill_fails_the_total() -> None:
    problems = check_settlement({"medfee_sumamt": D("900.00"), "fund_pay_sumamt": D("0.00"),
                                 "psn_part_amt": D("999999999999.00"), "fulamt_ownpay_amt": D("0.00")})
    assert [p.code for p in problems] == ["settlement_total_mismatch"]
    assert problems[0].as_error()["difference"] == "-999999999099.00"


def test_each_identity_has_its_own_code() -> None:
    base = whole(D("600.00"), D("0.00"), D("100.00"), D("200.00"), D("50.00"))
    assert [p.code for p in check_settlement({**base, "hifp_pay": D("500.00")})] == \
        ["settlement_fund_parts_mismatch"]
    assert [p.code for p in check_settlement({**base, "acct_pay": D("0.00")})] == \
        ["settlement_person_parts_mismatch"]
    assert [p.code for p in check_settlement({**base, "fulamt_ownpay_amt": D("300.01")})] == \
        ["settlement_ownpay_exceeds_person"]
    # The hospital's part counts where it is sent.
    assert check_settlement({**base, "hosp_part_amt": D("10.00"), "medfee_sumamt": D("910.00")}) == []


def test_identities_are_checked_only_when_their_parts_are_sent() -> None:
    assert check_settlement({"medfee_sumamt": D("900.00"), "psn_part_amt": D("300.00")}) == []
    assert check_settlement({"medfee_sumamt": D("900.00"), "fund_pay_sumamt": D("600.00"),
                             "psn_part_amt": D("300.00")}) == []


def test_a_reversal_negates_every_figure_and_stays_plausible() -> None:
    s = whole(D("600.00"), D("0.00"), D("100.00"), D("200.00"), D("50.00"))
    assert check_settlement({k: -v for k, v in s.items()}) == []


def test_raw_bureau_figures_that_are_not_amounts_are_named() -> None:
    amounts, bad = amounts_of({"medfee_sumamt": "NaN", "psn_part_amt": "12.30", "acct_pay": True,
                               "fund_pay_sumamt": "1e", "hifp_pay": 5, "oth_pay": "Infinity"})
    assert sorted(bad) == ["acct_pay", "fund_pay_sumamt", "medfee_sumamt", "oth_pay"]
    assert amounts == {"psn_part_amt": D("12.30"), "hifp_pay": D("5")}


# --- branch scoping by path segments -------------------------------------------------------------------
def test_a_branch_is_a_prefix_of_whole_segments_never_a_pattern() -> None:
    assert in_branch(["YN", "YN-KM", "YN-KM-WH", "U1"], ["YN", "YN-KM"])
    assert in_branch(["YN", "YN-KM"], ["YN", "YN-KM"])
    assert not in_branch(["YN", "YN-KMX"], ["YN", "YN-KM"])  # a longer code is another office
    assert not in_branch(["YN", "YNAKM"], ["YN", "YN_KM"])  # "_" is a character, not a wildcard
    assert not in_branch(["YN"], ["YN", "YN-KM"])  # the centre's own objects are above an office
    assert not in_branch(["YN", "YN-KM"], [])  # no organisation: nothing


def test_a_principal_covers_only_its_subtree_and_the_admin_everything() -> None:
    office = Principal(user_id="1", username="f", role="finance", org="YN_KM", org_level="office",
                       org_path=("YN", "YN_KM"))
    assert office.covers(["YN", "YN_KM", "A", "U"]) and not office.covers(["YN", "YNxKM", "A", "U"])
    assert not office.fund_wide
    centre = Principal(user_id="2", username="c", role="finance", org="YN", org_level="centre", org_path=("YN",))
    assert centre.covers(["YN", "YNxKM", "A", "U"]) and centre.fund_wide
    admin = Principal(user_id="3", username="a", role="admin", org="", org_level="", org_path=())
    assert admin.covers(["ANY", "PATH"]) and admin.fund_wide


# --- documents by content ---------------------------------------------------------------------------------
def test_a_pdf_with_a_scanners_loose_xref_is_a_pdf_and_html_behind_a_pdf_header_is_not() -> None:
    out = io.BytesIO()
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    writer.write(out)
    good = out.getvalue()
    loose = good.replace(b"startxref\n", b"startxref\n9")  # an xref offset off by digits, as scanners write
    assert loose != good
    assert content_problem(good, "application/pdf") is None
    assert content_problem(loose, "application/pdf") is None
    assert content_problem(b"%PDF-<html><script>alert(1)</script></html>", "application/pdf") is not None
    assert content_problem(b"%PDF-1.7\n<html>" + b"A" * 1000 + b"\n%%EOF", "application/pdf") is not None
