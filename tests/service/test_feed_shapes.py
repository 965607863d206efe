"""Feeds shaped wrong in ways a bureau's export can be (issue #12 item 1): a known field holding an object or a list
is refused by line and field; a CSV whose heading names a column twice is refused whole (which cell would a record
take?), and nothing of it is kept."""

from __future__ import annotations

import json

from tests.conftest import ServiceClient
from tests.service.test_claims import bureau, setup
from tests.service.test_settlement_feeds import NHSA, as_table, kept, stay


async def test_a_known_field_holding_an_object_or_a_list_is_refused_by_line_and_field(
        rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    good, named, listed = stay(member), stay(member), stay(member)
    named["psn_name"] = {"family": "欧阳", "given": "𠮷"}
    listed["fixmedins_name"] = ["昆明医科大学第一附属医院"]
    body = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in (good, named, listed)).encode()
    r = await client.post("/api/v1/settlements", content=body,
                          headers={**bureau(member.branch), "Content-Type": "application/x-ndjson"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert [(x["line"], x["field"], x["code"]) for x in answer["rejected"]] == [
        (2, "psn_name", "settlement_record_invalid"), (3, "fixmedins_name", "settlement_record_invalid")]
    assert (answer["received"], answer["accepted"], answer["rejected_count"]) == (3, 1, 2)
    assert await kept(app, member.certno) == {good["setl_id"]}


async def test_a_csv_heading_naming_a_column_twice_is_refused_whole(rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    record = stay(member)
    table = as_table([record], ",").decode("utf-8")
    heading, rows = table.split("\r\n", 1)
    twice = heading.replace("psn_part_amt", "medfee_sumamt", 1)
    assert twice.count("medfee_sumamt") == 2 and NHSA.count("psn_part_amt") == 1
    r = await client.post("/api/v1/settlements", headers=bureau(member.branch),
                          files={"file": ("setlinfo.csv", (twice + "\r\n" + rows).encode(), "text/csv")})
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["code"] == "feed_headings_repeated" and "medfee_sumamt" in problem["detail"]
    assert [e["loc"] for e in problem["errors"]] == [["file", "line 1"]]
    assert await kept(app, member.certno) == set()
