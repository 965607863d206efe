"""New members' ids of one roster (issue #15): valid version 7 UUIDs, all different, ascending in the order of the
rows, so PostgreSQL appends them to its keys; two rosters loaded at once do not share an id."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

from services.enrollment.rosters import _Load


def _load() -> _Load:
    roster: Any = SimpleNamespace(period="yn-19", id=uuid.uuid4())
    return _Load(roster, "C1-KM-WH-001", {})


def test_the_ids_of_a_roster_are_time_ordered_uuids_ascending_row_by_row() -> None:
    load = _load()
    ids = [load._new_id() for _ in range(20_000)]  # more than one bulk read of randomness, past 4,096 a block
    parsed = [uuid.UUID(i) for i in ids]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 and str(u) == i for u, i in zip(parsed, ids, strict=True))
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_two_rosters_started_in_the_same_millisecond_do_not_share_an_id() -> None:
    first, second = _load(), _load()
    second._millisecond = first._millisecond
    assert not {first._new_id() for _ in range(5_000)} & {second._new_id() for _ in range(5_000)}
