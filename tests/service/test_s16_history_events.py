"""A history import reaches claims (issue #16 item 1: years of participation "history imports included"):
enrollment publishes ``period.history_recorded`` with the imported ID numbers, in chunks."""

from __future__ import annotations

import pytest

from services.enrollment import history as history_module
from tests.service.test_enrollment import World, admin, world  # noqa: F401 (fixtures used by name)
from tests.service.test_enrollment_history import crowd, history, import_json, past_period
from tests.service.test_enrollment_lifecycle import events


async def test_a_history_import_publishes_its_id_numbers_for_claims_in_chunks(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    p17 = await past_period(world)
    people = crowd(5) + crowd(2, "retired")
    monkeypatch.setattr(history_module, "HISTORY_EVENT_SIZE", 3)
    r = await import_json(world, p17, history(people, world.tree.unit))
    assert r.status_code == 200, r.text
    sent = await events(world, "period.history_recorded", period=p17)
    assert [len(e["certnos"]) for e in sent] == [3, 3, 1]
    assert sorted(c for e in sent for c in e["certnos"]) == sorted(p["certno"] for p in people)
    # A refused import publishes nothing.
    bad = history(crowd(1), "NO-SUCH-UNIT")
    r = await import_json(world, p17, bad)
    assert r.status_code == 422
    assert len(await events(world, "period.history_recorded", period=p17)) == 3
