"""Issue #9 items 2 and 3, each attack as it was made, now refused: bodies bounded before anything reads them
(413), text nobody can store, JSON too deep, amounts out of range, NaN, impossible dates and duplicate calendar
days (422 naming the field). Over ASGI against real PostgreSQL; the same over real TCP (keep-alive, memory) is
in tests/e2e/test_hostile_requests.py."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi import FastAPI

from shared.guards import BodyLimit
from tests.conftest import ServiceClient, token_for
from tests.service.test_claims import claim_body, settlement, setup
from tests.service.test_enrollment import World as EnrollmentWorld
from tests.service.test_enrollment import admin, people, roster_body, world  # noqa: F401 (fixtures)

MiB = 1024 * 1024
TODAY = date.today()
ADMIN = token_for("admin")

# A bureau account (feeds only): the guard refuses these bodies before any branch is looked at.
BUREAU = token_for("bureau", "YN", ("YN",), "centre")


def refused(r: Any, status: int, code: str, loc: list[Any] | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    if loc is not None:
        assert loc in [e["loc"] for e in body["errors"]], body["errors"]
    return body


async def raw_call(app: FastAPI, path: str, headers: list[tuple[bytes, bytes]],
                   chunks: Callable[[], Awaitable[dict[str, Any]]]) -> tuple[int, dict[str, Any]]:
    """Drive the ASGI app with a hand-made receive, to see how much of a body is read before the answer."""
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"test"), *headers], "client": ("127.0.0.1", 1), "server": ("test", 80)}
    await app(scope, chunks, send)  # type: ignore[arg-type]
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body)


# --- item 2: bounded requests ----------------------------------------------------------------------------
@pytest.mark.parametrize("service", ["enrollment", "claims", "payments", "notifications"])
async def test_a_50_mb_json_body_without_a_token_is_413_before_a_byte_of_it_is_read(
        rolled_back: ServiceClient, service: str) -> None:
    app, _ = await rolled_back(service)
    reads = 0

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"x" * 65536, "more_body": True}

    status, body = await raw_call(app, "/api/v1/claims", [(b"content-type", b"application/json"),
                                                          (b"content-length", str(50 * MiB).encode())], receive)
    assert (status, body["code"], reads) == (413, "body_too_large", 0)
    assert body["errors"][0]["limit"] == MiB


async def test_a_chunked_body_without_a_length_is_counted_and_cut_at_the_limit(rolled_back: ServiceClient) -> None:
    app, _ = await rolled_back("claims")
    reads = 0

    async def receive() -> dict[str, Any]:  # an endless chunked body
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b" " * 65536, "more_body": True}

    status, body = await raw_call(app, "/api/v1/claims", [(b"content-type", b"application/json"),
                                                          (b"transfer-encoding", b"chunked")], receive)
    assert (status, body["code"]) == (413, "body_too_large")
    assert reads == MiB // 65536 + 1  # read up to the limit, then not one chunk more


async def test_a_100_mb_roster_upload_by_a_unit_agent_is_413(rolled_back: ServiceClient) -> None:
    app, _ = await rolled_back("enrollment")
    reads = 0

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"a" * 65536, "more_body": True}

    agent = token_for("unit_agent", "U1", ("C", "O", "A", "U1"), "unit")["Authorization"].encode()
    status, body = await raw_call(app, "/api/v1/periods/p/units/U1/rosters", [
        (b"authorization", agent), (b"content-type", b"multipart/form-data; boundary=x"),
        (b"content-length", str(100 * MiB).encode())], receive)
    assert (status, body["code"], reads) == (413, "body_too_large", 0)
    assert body["errors"][0]["limit"] == 20 * MiB


async def test_the_roster_route_takes_more_than_the_default_limit(world: EnrollmentWorld) -> None:
    members = people(1)
    members[0]["bank_name"] = "中国工商银行" + " " * (2 * MiB)  # 2 MiB: over the default, under the roster limit
    r = await world.submit(roster_body(members))
    assert r.status_code == 422, r.text  # read and checked (the bank name is too long), not refused as too large
    assert r.json()["code"] == "roster_rejected"
    r = await world.client.post("/api/v1/orgs", headers=world.admin,
                                json={"code": "X", "name": " " * (2 * MiB), "level": "centre"})
    refused(r, 413, "body_too_large")


# --- item 3: text nobody can store ----------------------------------------------------------------------
async def test_a_nul_in_the_login_name_is_422_naming_the_field(rolled_back: ServiceClient) -> None:
    _, client = await rolled_back("enrollment")
    r = await client.post("/api/v1/auth/token", data={"username": "ad\x00min", "password": "admin"})
    refused(r, 422, "invalid_text", ["body", "username"])


async def test_a_nul_in_a_query_or_path_parameter_is_422_naming_it(rolled_back: ServiceClient) -> None:
    _, client = await rolled_back("enrollment")
    r = await client.get("/api/v1/members", params={"certno": "53010219800101001\x00"}, headers=ADMIN)
    refused(r, 422, "invalid_text", ["query", "certno"])
    r = await client.get("/api/v1/periods/yn%00x", headers=ADMIN)
    refused(r, 422, "invalid_text", ["path", "code"])


async def test_a_nul_in_a_roster_name_is_422_naming_the_row(world: EnrollmentWorld) -> None:
    members = people(2)
    members[1]["name"] = "张\x00三"
    r = await world.submit(roster_body(members))
    refused(r, 422, "invalid_text", ["body", "members", 1, "name"])


async def test_a_nul_in_a_roster_file_is_422_naming_the_row_and_line(world: EnrollmentWorld) -> None:
    members = people(1)
    m = members[0]
    csv = ("姓名,身份证号码,手机号码,性别,人员类别,银行账号,开户银行\n"
           f"王\x00芳,{m['certno']},{m['phone']},女,在职,{m['bank_account']},{m['bank_name']}\n")
    r = await world.client.post(f"/api/v1/periods/{world.period}/units/{world.tree.unit}/rosters", headers=world.admin,
                                files={"file": ("名单.csv", csv.encode(), "text/csv")},
                                data={"staff_total": "1", "staff_in_service": "1", "staff_basic_insured_in_service": "1"})
    body = refused(r, 422, "roster_rejected", ["members", 0, "name"])  # the first member, 0-based
    assert body["errors"][0]["line"] == 2 and body["errors"][0]["code"] == "invalid_text"


async def test_a_nul_or_a_lone_surrogate_in_a_diagnosis_is_422_naming_the_field(
        rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    body = claim_body(member)
    body["diagnosis"]["name"] = "心肌\x00梗死"
    r = await client.post("/api/v1/claims", json=body, headers=member.branch.unit_agent())
    refused(r, 422, "invalid_text", ["body", "diagnosis", "name"])
    raw = json.dumps(claim_body(member), ensure_ascii=False).replace("急性心肌梗死", "\\ud800").encode()
    r = await client.post("/api/v1/claims", content=raw,
                          headers={**member.branch.unit_agent(), "Content-Type": "application/json"})
    refused(r, 422, "invalid_text")


async def test_json_nested_100000_deep_is_refused_before_the_parser_recurses(rolled_back: ServiceClient) -> None:
    _, client = await rolled_back("claims")
    for path in ("/api/v1/claims", "/api/v1/settlements"):
        r = await client.post(path, content=b"[" * 100_000 + b"]" * 100_000,
                              headers={**BUREAU, "Content-Type": "application/json"})
        refused(r, 422, "json_too_deep")
    r = await client.post("/api/v1/settlements", content=b"{\"a\":" * 65 + b"1" + b"}" * 65,
                          headers={**BUREAU, "Content-Type": "application/json"})
    refused(r, 422, "json_too_deep")


# --- item 3: money and dates ----------------------------------------------------------------------------
async def test_an_amount_of_1e20_is_422_naming_the_field(rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    body = claim_body(member)
    body["settlement"]["medfee_sumamt"] = 1e20
    r = await client.post("/api/v1/claims", json=body, headers=member.branch.unit_agent())
    refused(r, 422, "validation_failed", ["body", "settlement", "medfee_sumamt"])
    body = claim_body(member)
    body["settlement"]["acct_pay"] = "1e20"  # a national field beyond the declared ones
    r = await client.post("/api/v1/claims", json=body, headers=member.branch.unit_agent())
    refused(r, 422, "validation_failed", ["body", "settlement", "acct_pay"])


async def test_nan_in_a_settlement_is_422(rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    raw = json.dumps(claim_body(member)).replace('"fulamt_ownpay_amt": "1000.00"', '"fulamt_ownpay_amt": NaN')
    r = await client.post("/api/v1/claims", content=raw.encode(),
                          headers={**member.branch.unit_agent(), "Content-Type": "application/json"})
    refused(r, 422, "not_a_number", ["body", "settlement", "fulamt_ownpay_amt"])
    for value in ("NaN", "Infinity", "sNaN"):
        body = claim_body(member)
        body["settlement"]["psn_part_amt"] = value
        r = await client.post("/api/v1/claims", json=body, headers=member.branch.unit_agent())
        refused(r, 422, "validation_failed", ["body", "settlement", "psn_part_amt"])
    r = await client.post("/api/v1/settlements", content=b'[{"setl_id": "S1", "medfee_sumamt": NaN}]',
                          headers={**BUREAU, "Content-Type": "application/json"})
    refused(r, 422, "not_a_number", ["body", 0, "medfee_sumamt"])
    setl_id = f"S{uuid.uuid4().hex}"
    r = await client.post("/api/v1/settlements", json=[settlement(setl_id, member, psn_part_amt="NaN")], headers=BUREAU)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 0 and "psn_part_amt" in r.json()["rejected"][0]["reason"]


async def test_a_calendar_with_the_same_date_twice_is_422(rolled_back: ServiceClient) -> None:
    _, client = await rolled_back("claims")
    year = TODAY.year + 1
    r = await client.post(f"/api/v1/calendar/{year}", headers=ADMIN, json={
        "holidays": [{"date": f"{year}-01-01", "name": "元旦"}, {"date": f"{year}-01-01", "name": "元旦"}]})
    body = refused(r, 422, "calendar_invalid", ["body", "holidays", 1, "date"])
    assert body["errors"][0]["code"] == "duplicate_date"


@pytest.mark.parametrize("admission, discharge", [
    ("0001-01-01", None), ("1899-12-31", None), (None, "9999-12-31"),
    (None, (TODAY + timedelta(days=1)).isoformat()),  # discharge tomorrow: a claim comes after the stay
])
async def test_claim_dates_out_of_range_are_422(rolled_back: ServiceClient, admission: str | None,
                                                discharge: str | None) -> None:
    _, client, member = await setup(rolled_back)
    body = claim_body(member)
    if admission:
        body["admission_date"] = admission
    if discharge:
        body["discharge_date"] = discharge
    r = await client.post("/api/v1/claims", json=body, headers=member.branch.unit_agent())
    refused(r, 422, "validation_failed", ["body", "admission_date" if admission else "discharge_date"])


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
async def test_withdrawal_and_payment_dates_out_of_range_are_422(world: EnrollmentWorld,
                                                                 day: str) -> None:
    r = await world.client.post(f"/api/v1/members/{uuid.uuid4()}/withdrawal", headers=world.admin,
                                json={"date": day, "reason": "离职"})
    refused(r, 422, "validation_failed", ["body", "date"])
    r = await world.client.post(f"/api/v1/rosters/{uuid.uuid4()}/payments", headers=world.admin,
                                json={"amount": "150.00", "reference": "B-1", "paid_at": day})
    refused(r, 422, "validation_failed", ["body", "paid_at"])
    r = await world.client.post(f"/api/v1/periods/{world.period}/remittances", headers=world.admin,
                                json={"office": world.tree.office, "amount": "1e20", "reference": "B-2",
                                      "remitted_at": day})
    body = refused(r, 422, "validation_failed", ["body", "remitted_at"])
    assert ["body", "amount"] in [e["loc"] for e in body["errors"]]


def test_route_limits_match_path_templates_one_segment_per_parameter() -> None:
    limit = BodyLimit(lambda s, r, w: None, default=1, routes=[("/api/v1/claims/{claim_id}/documents", 10)])  # type: ignore[arg-type, return-value]
    assert limit.limit_for("/api/v1/claims/abc/documents") == 10
    assert limit.limit_for("/api/v1/claims/a/b/documents") == 1
    assert limit.limit_for("/api/v1/claims/abc/documents/x") == 1


async def test_a_value_the_database_finds_too_long_is_a_422_not_a_500() -> None:
    """The last resort behind the models: SQLSTATE class 22 (data exception) is the input's fault."""
    import httpx
    from sqlalchemy.exc import DBAPIError

    from shared.errors import install_error_handlers

    class Orig(Exception):
        def __init__(self, sqlstate: str) -> None:
            self.sqlstate = sqlstate

    app = FastAPI()
    install_error_handlers(app)

    @app.get("/fail/{sqlstate}")
    async def fail(sqlstate: str) -> None:
        raise DBAPIError("INSERT ...", {}, Orig(sqlstate))

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                 base_url="http://t") as client:
        refused(await client.get("/fail/22001"), 422, "value_out_of_range")  # string_data_right_truncation
        refused(await client.get("/fail/40001"), 500, "internal_error")  # a serialization failure is ours


async def test_a_rulebook_nested_too_deep_or_with_a_nul_escape_is_422(world: EnrollmentWorld) -> None:
    for raw in (b"a: " + b"[" * 100_000, b'code: "yn\\0"\nname: "x"\n'):
        r = await world.client.post("/api/v1/periods", content=raw,
                                    headers={**world.admin, "Content-Type": "application/yaml"})
        refused(r, 422, "invalid_rulebook")
