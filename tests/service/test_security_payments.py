"""Issue 9 §5 against payments: the branch filter compares path segments (an office code with ``_`` saw other
offices' payments through an unescaped LIKE); finance acts within its branch, the fund's batches and books are
the centre's."""

from __future__ import annotations

import random
import uuid

from deploy.people import luhn_account
from tests.conftest import ServiceClient, apply_event, token_for
from tests.service.test_payments import approved, covered, instructions


async def test_an_office_code_with_an_underscore_sees_only_its_own_payments(rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("payments")
    s = uuid.uuid4().hex[:6]
    mine = ["CENTRE", f"K_{s}", f"K_{s}-A", f"K_{s}-A-U"]
    theirs = ["CENTRE", f"KM{s}", f"KM{s}-A", f"KM{s}-A-U"]  # "_" as a LIKE pattern matches "M"
    claims = {}
    for name, path in (("mine", mine), ("theirs", theirs)):
        member_id, claim_id = f"M{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
        assert await apply_event(app, covered(member_id, path, luhn_account(random.Random(member_id))))
        assert await apply_event(app, approved(claim_id, member_id))
        claims[name] = claim_id
    office = token_for("office_reviewer", mine[1], tuple(mine[:2]), "office")
    office_finance = token_for("finance", mine[1], tuple(mine[:2]), "office")
    for headers in (office, office_finance):
        assert len(await instructions(client, claims["mine"], headers)) == 1
        assert await instructions(client, claims["theirs"], headers) == []  # the attack as made
    centre_finance = token_for("finance", "CENTRE", ("CENTRE",), "centre")
    assert len(await instructions(client, claims["theirs"], centre_finance)) == 1


async def test_the_funds_batches_and_books_are_not_an_office_finance_officers(rolled_back: ServiceClient) -> None:
    _, client = await rolled_back("payments")
    office_finance = token_for("finance", "K1", ("CENTRE", "K1"), "office")
    for method, path, kwargs in (
        ("POST", "/api/v1/payment-batches", {"json": {"format": "bank_csv"}}),
        ("GET", "/api/v1/payment-batches", {}),
        ("GET", "/api/v1/ledger/periods/yn-18", {}),
        ("GET", "/api/v1/recoveries", {}),
    ):
        r = await client.request(method, path, headers=office_finance, **kwargs)
        assert r.status_code == 403 and r.json()["code"] == "outside_subtree", (path, r.text)
