"""The bureau's feeds against the real claims service and PostgreSQL (issue #12): every format, gzip or not,
with good, repeated and malformed lines named; records of non-members counted and not kept; the same file
again changing nothing; the unclaimed list in the caller's branch; the daily totals matched and not."""

from __future__ import annotations

import csv
import gzip
import io
import json
import uuid
from datetime import date, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from services.claims.models import FeedReceipt, Settlement
from tests.conftest import ServiceClient, token_for
from tests.service.test_claims import Branch, Member, bureau, cover, setup, short, submit

TODAY = date.today()
SETTLED = TODAY - timedelta(days=12)
NHSA = ["setl_id", "mdtrt_id", "psn_name", "psn_cert_type", "certno", "insutype", "med_type", "setl_time",
        "begndate", "enddate", "medfee_sumamt", "fund_pay_sumamt", "hifp_pay", "psn_part_amt", "acct_pay",
        "psn_cash_pay", "fulamt_ownpay_amt"]


def stay(member: Member | None, *, certno: str | None = None, setl_id: str | None = None, base: int = 5000,
         day: date = SETTLED, **changes: Any) -> dict[str, Any]:
    """A plausible 2304 record: the bill is three times the person's part, a quarter of it from the account."""
    record: dict[str, Any] = {
        "setl_id": setl_id or f"S{uuid.uuid4().hex[:20]}", "mdtrt_id": f"M{uuid.uuid4().hex[:12]}",
        "psn_name": "𠮷䶮", "psn_cert_type": "01", "certno": certno or (member.certno if member else ""),
        "insutype": "310", "med_type": "21", "setl_time": f"{day} 15:04:05",
        "begndate": str(day - timedelta(days=6)), "enddate": str(day), "medfee_sumamt": f"{base * 3}.00",
        "fund_pay_sumamt": f"{base * 2}.00", "hifp_pay": f"{base * 2}.00", "psn_part_amt": f"{base}.00",
        "acct_pay": f"{base // 4}.00", "psn_cash_pay": f"{base - base // 4}.00", "fulamt_ownpay_amt": "300.00"}
    record.update(changes)
    return record


def outsider_certno() -> str:
    from shared.idnumber import check_digit

    body = f"53042319{70 + uuid.uuid4().int % 30:02d}0612{uuid.uuid4().int % 900 + 100:03d}"
    return body + check_digit(body)


def feed_lines(member: Member, repeated: dict[str, Any]) -> list[dict[str, Any] | str]:
    """Line 1 good, 2 a repeat of line 1, 3 not JSON, 4 a wrong check digit, 5 good, 6 a non-member's,
    7 an amount that does not add up, 8 an unknown med_type."""
    wrong = member.certno[:17] + ("0" if member.certno[17] != "0" else "1")
    return [repeated, repeated, '{"setl_id": "S-broken", "certno": ', stay(member, certno=wrong), stay(member),
            stay(None, certno=outsider_certno()), stay(member, medfee_sumamt="15000.02"),
            stay(member, med_type="99")]


EXPECTED_REJECTED = [(3, "line", "invalid_json"), (4, "certno", "invalid_certno"),
                     (7, "medfee_sumamt", "settlement_implausible"), (8, "med_type", "settlement_code_invalid")]


def as_ndjson(lines: list[dict[str, Any] | str]) -> bytes:
    return "".join((x if isinstance(x, str) else json.dumps(x, ensure_ascii=False)) + "\n" for x in lines).encode()


def as_table(lines: list[dict[str, Any] | str], delimiter: str, encoding: str = "utf-8") -> bytes:
    """The same records as a CSV or TXT with NHSA headings (the broken JSON line becomes a row too long)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(NHSA)
    for x in lines:
        writer.writerow([*NHSA, "extra"] if isinstance(x, str) else [x.get(k, "") for k in NHSA])
    return out.getvalue().encode(encoding)


async def post_file(client: httpx.AsyncClient, member: Member, name: str, data: bytes,
                    headers: dict[str, str] | None = None) -> dict[str, Any]:
    r = await client.post("/api/v1/settlements", files={"file": (name, data, "application/octet-stream")},
                          headers=headers or bureau(member.branch))
    assert r.status_code == 200, r.text
    return r.json()


def assert_first_feed(body: dict[str, Any], rejected: list[tuple[int, str, str]]) -> None:
    assert (body["received"], body["accepted"], body["duplicates"], body["not_members"], body["reversals"]) == \
        (8, 2, 1, 1, 0), body
    assert [(x["line"], x["field"], x["code"]) for x in body["rejected"]] == rejected
    assert body["rejected_count"] == len(rejected)


async def kept(app: FastAPI, certno: str) -> set[str]:
    async with app.state.db.transaction() as session:
        return set((await session.execute(select(Settlement.setl_id).where(Settlement.certno == certno))).scalars())


async def test_ndjson_with_good_repeated_and_malformed_lines_names_each_line(rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    first = stay(member)
    lines = feed_lines(member, first)
    r = await client.post("/api/v1/settlements", content=as_ndjson(lines),
                          headers={**bureau(member.branch), "Content-Type": "application/x-ndjson"})
    assert r.status_code == 200, r.text
    assert_first_feed(r.json(), EXPECTED_REJECTED)
    assert await kept(app, member.certno) == {first["setl_id"], lines[4]["setl_id"]}  # type: ignore[index]
    assert r.json()["rejected"][2]["errors"][0]["difference"] == "0.02"

    # The same file again changes nothing: all duplicates, the same refusals.
    r = await client.post("/api/v1/settlements", content=as_ndjson(lines),
                          headers={**bureau(member.branch), "Content-Type": "application/x-ndjson"})
    body = r.json()
    assert (body["accepted"], body["duplicates"], body["not_members"]) == (0, 3, 1)
    assert await kept(app, member.certno) == {first["setl_id"], lines[4]["setl_id"]}  # type: ignore[index]


async def test_each_file_format_gzip_or_not_gives_the_same_answer(rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    table_rejected = [(4, "line", "feed_columns"), (5, "certno", "invalid_certno"),
                      (8, "medfee_sumamt", "settlement_implausible"), (9, "med_type", "settlement_code_invalid")]
    formats: list[tuple[str, Any, list[tuple[int, str, str]]]] = [
        ("setlinfo.ndjson", as_ndjson, EXPECTED_REJECTED),
        ("setlinfo.csv", lambda lines: b"\xef\xbb\xbf" + as_table(lines, ","), table_rejected),  # Excel's BOM
        ("setlinfo.txt", lambda lines: as_table(lines, "\t"), table_rejected),
        ("setlinfo.csv", lambda lines: as_table(lines, ",", "gb18030"), table_rejected),  # Excel on Windows
    ]
    for name, encode, rejected in formats:
        for compress in (False, True):
            first = stay(member)
            lines = feed_lines(member, first)
            data = encode(lines)
            if compress:  # told by its magic bytes, whatever the file is called
                data = gzip.compress(data)
            body = await post_file(client, member, name, data)
            assert_first_feed(body, rejected)
            again = await post_file(client, member, name + ".gz" if compress else name, data)
            assert (again["accepted"], again["duplicates"]) == (0, 3), (name, compress)
            async with app.state.db.transaction() as session:
                stored = await session.get(Settlement, first["setl_id"])
            assert stored is not None and stored.record["psn_name"] == "𠮷䶮", (name, compress)
            assert str(stored.medfee_sumamt) == "15000.00" and stored.setl_date == SETTLED


async def test_a_file_without_headings_or_a_broken_gzip_is_422_and_nothing_is_kept(
        rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    r = await client.post("/api/v1/settlements", headers=bureau(member.branch),
                          files={"file": ("x.csv", f"S1,{member.certno},310\n".encode(), "text/csv")})
    assert r.status_code == 422 and r.json()["code"] == "feed_headings_missing", r.text
    data = gzip.compress(as_ndjson([stay(member) for _ in range(50)]))
    r = await client.post("/api/v1/settlements", headers=bureau(member.branch),
                          files={"file": ("x.ndjson.gz", data[: len(data) // 2], "application/gzip")})
    assert r.status_code == 422 and r.json()["code"] == "invalid_gzip", r.text
    assert await kept(app, member.certno) == set()  # one commit point: a feed cut off keeps nothing
    r = await client.post("/api/v1/settlements", headers=bureau(member.branch),
                          files={"other": ("x.ndjson", as_ndjson([stay(member)]), "application/x-ndjson")})
    assert r.status_code == 422 and r.json()["code"] == "file_missing", r.text


async def test_ndjson_lines_with_nul_nan_or_not_an_object_are_named(rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    good = json.dumps(stay(member), ensure_ascii=False)
    body = "\n".join([good, good.replace("𠮷䶮", "\\u0000"), good.replace('"15000.00"', "NaN"), "[1, 2]", "",
                      good.replace("𠮷䶮", "\\ud800"), good.replace('"01"', "1e999999"),
                      json.dumps(stay(member), ensure_ascii=False)[:-1] + ', "note": {"x": [1e-999999, 2.5]}}']).encode()
    r = await client.post("/api/v1/settlements", content=body,
                          headers={**bureau(member.branch), "Content-Type": "application/x-ndjson"})
    assert r.status_code == 200, r.text
    assert [(x["line"], x["code"]) for x in r.json()["rejected"]] == [
        (2, "invalid_text"), (3, "invalid_json"), (4, "settlement_record_invalid"), (6, "invalid_json"),
        (7, "invalid_number")]
    assert (r.json()["received"], r.json()["accepted"]) == (7, 2)  # line 8's tiny number is kept as 0.0


async def test_records_of_non_members_are_counted_not_kept_but_count_in_the_totals(
        rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    elsewhere = await cover(app, member.period, Branch())  # a member of another centre
    outsider = outsider_certno()
    records = [stay(None, certno=outsider), stay(elsewhere), stay(member)]
    r = await client.post("/api/v1/settlements", json=records, headers=bureau(member.branch))
    assert (r.json()["accepted"], r.json()["not_members"], r.json()["outside_branch"]) == (1, 2, 2), r.text
    assert await kept(app, outsider) == set() and await kept(app, elsewhere.certno) == set()
    async with app.state.db.transaction() as session:  # no person in the receipts: only a digest and figures
        columns = set(FeedReceipt.__table__.columns.keys())
        assert columns == {"sender_org", "digest", "setl_date", "insutype", "medfee_sumamt", "psn_part_amt"}
        receipts = (await session.execute(select(func.count()).select_from(FeedReceipt).where(
            FeedReceipt.sender_org == member.branch.centre))).scalar_one()
    assert receipts == 3


async def test_a_reversal_in_a_file_after_its_settlement_reverses_it(rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    first = stay(member)
    reversal = stay(member, setl_id=f"R{short()}", mdtrt_id=first["mdtrt_id"], refd_setl_flag="1")
    body = await post_file(client, member, "day.ndjson", as_ndjson([first, reversal]))
    assert (body["accepted"], body["reversals"]) == (2, 1), body
    async with app.state.db.transaction() as session:
        stored = await session.get(Settlement, first["setl_id"])
    assert stored is not None and stored.reversed_at is not None


async def test_unclaimed_lists_covered_members_records_without_a_claim_in_the_callers_branch(
        rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    sibling = await cover(app, member.period, member.branch.sibling())  # same office, another agency point
    claimed = f"S{short()}"
    await submit(client, member, base="5000.00", setl_id=claimed)
    records = [stay(member), stay(member, med_type="52"), stay(sibling), stay(member, setl_id=claimed),
               stay(member, day=TODAY - timedelta(days=400))]  # before the cover: not the fund's
    r = await client.post("/api/v1/settlements", json=records, headers=bureau(member.branch))
    assert r.json()["accepted"] == 5, r.text

    async def listed(headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
        r = await client.get("/api/v1/settlements/unclaimed", params={"period": member.period, **params},
                             headers=headers)
        assert r.status_code == 200, r.text
        return r.json()["items"]

    mine = await listed(member.branch.unit_agent())
    assert {x["setl_id"] for x in mine} == {records[0]["setl_id"], records[1]["setl_id"]}
    assert {x["exclusion"] for x in mine} == {None, "excluded_maternity"}
    item = next(x for x in mine if x["exclusion"] is None)
    assert item["certno"] != member.certno and item["certno"].startswith(member.certno[:6]) and "*" in item["certno"]
    assert item["name"] == "王*" and item["medfee_sumamt"] == "15000.00" and item["psn_part_amt"] == "5000.00"
    office = await listed(member.branch.office_reviewer())
    assert {x["setl_id"] for x in office} == {records[0]["setl_id"], records[1]["setl_id"], records[2]["setl_id"]}
    assert {x["setl_id"] for x in await listed(member.branch.office_reviewer(), unit=sibling.branch.unit)} == \
        {records[2]["setl_id"]}
    # one at a time, by cursor
    page = await client.get("/api/v1/settlements/unclaimed", params={"period": member.period, "limit": 2},
                            headers=member.branch.office_reviewer())
    rest = await client.get("/api/v1/settlements/unclaimed", params={
        "period": member.period, "limit": 2, "cursor": page.json()["next_cursor"]},
        headers=member.branch.office_reviewer())
    assert len(page.json()["items"]) == 2 and [x["setl_id"] for x in rest.json()["items"]] == \
        sorted(x["setl_id"] for x in office)[2:] and rest.json()["next_cursor"] is None
    assert await listed(Branch().office_reviewer()) == []
    r = await client.get("/api/v1/settlements/unclaimed", headers=bureau(member.branch))
    assert r.status_code == 403


async def test_daily_totals_match_or_name_the_difference_until_the_detail_is_sent_again(
        rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    centre = f"C{short()}"
    sender = token_for("bureau", centre, (centre,), "centre")  # a bureau whose feeds nobody else's touch
    day = TODAY - timedelta(days=3)
    records = [stay(member, day=day, base=4000), stay(None, certno=outsider_certno(), day=day, base=2000),
               stay(member, day=day, base=1000, insutype="390")]
    r = await client.post("/api/v1/settlements", json=records[:1] + records[2:], headers=sender)
    assert r.status_code == 200, r.text
    totals = {"totals": [
        {"date": str(day), "insutype": "310", "count": 2, "medfee_sumamt": "18000.00", "psn_part_amt": "6000.00"},
        {"date": str(day), "insutype": "390", "count": 1, "medfee_sumamt": "3000.00", "psn_part_amt": "1000.00"}]}
    r = await client.post("/api/v1/settlements/totals", json=totals, headers=sender)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "mismatch"
    assert [(t["insutype"], t["status"]) for t in body["totals"]] == [("310", "mismatch"), ("390", "matched")]
    assert body["totals"][0]["differences"] == {"count": 1, "medfee_sumamt": "6000.00", "psn_part_amt": "2000.00"}
    assert body["totals"][0]["received"] == {"count": 1, "medfee_sumamt": "12000.00", "psn_part_amt": "4000.00"}

    # The detail file again, whole this time: the missing record (of a non-member) is counted, nothing doubles.
    r = await client.post("/api/v1/settlements", json=records, headers=sender)
    assert (r.json()["duplicates"], r.json()["not_members"]) == (0, 3), r.text  # this bureau covers no one
    r = await client.get("/api/v1/settlements/totals", params={"date": str(day)}, headers=sender)
    assert r.status_code == 200 and r.json()["status"] == "matched", r.text
    assert all(t["differences"] == {"count": None, "medfee_sumamt": None, "psn_part_amt": None}
               for t in r.json()["totals"])
    r = await client.get("/api/v1/settlements/totals", params={"date": str(day)}, headers=member.branch.unit_agent())
    assert r.status_code == 403


async def test_ndjson_sent_to_a_json_route_is_refused_not_a_5xx(rolled_back: ServiceClient) -> None:
    """NDJSON bodies are no longer buffered by the input guard (only the feed reads them, line by line): any
    other route given one answers 4xx, whatever it holds."""
    _, client, member = await setup(rolled_back)
    for body in (b'{"member_id": "M1\\u0000"}\n{"a": 1}\n', b"\x00\xff" * 1000):
        r = await client.post("/api/v1/claims", content=body,
                              headers={**member.branch.unit_agent(), "Content-Type": "application/x-ndjson"})
        assert 400 <= r.status_code < 500, r.text


async def test_a_totals_day_is_yyyy_mm_dd_text(rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    for day in ("0", "20261101", "2026-02-30", str(TODAY + timedelta(days=1))):
        r = await client.get("/api/v1/settlements/totals", params={"date": day}, headers=bureau(member.branch))
        assert r.status_code == 422, (day, r.text)
    r = await client.post("/api/v1/settlements/totals", headers=bureau(member.branch), json={"totals": [
        {"date": 0, "insutype": "310", "count": 1, "medfee_sumamt": "1.00", "psn_part_amt": "1.00"}]})
    assert r.status_code == 422, r.text
