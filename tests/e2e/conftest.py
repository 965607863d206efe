"""The real local stack (embedded PostgreSQL, Tansu, four service processes) on free ports, once per session,
and a world built over HTTP in it: an organisation tree, staff, a period open today and a paid roster."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest

from deploy.client import Huzhu, Session, wait_for
from deploy.demo_data import open_period_document
from deploy.infra import free_port
from deploy.localstack import SERVICES, Stack
from deploy.people import person

PASSWORD = "e2e-password"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(home=tmp_path_factory.mktemp("stack"), pg_port=free_port(), kafka_port=free_port(),
              ports={name: free_port() for name in SERVICES}, partitions=3)
    started = time.monotonic()
    try:
        s.start()
        s.ready_seconds = time.monotonic() - started  # type: ignore[attr-defined]
        yield s
    finally:
        s.stop()


@dataclass
class World:
    api: Huzhu
    admin: Session
    period: str
    unit: str
    members: list[dict[str, Any]]
    member_ids: list[str]

    def login(self, username: str) -> Session:
        return self.api.login(username, PASSWORD)


@pytest.fixture(scope="session")
def world(stack: Stack) -> World:
    api = Huzhu({name: stack.url(name) for name in SERVICES})
    admin = api.login("admin", "admin")
    tag = uuid.uuid4().hex[:4].upper()
    tree = [(f"C{tag}", "互助中心", "centre", None), (f"C{tag}-O", "办事处", "office", f"C{tag}"),
            (f"C{tag}-A", "代办点", "agency_point", f"C{tag}-O"), (f"C{tag}-U1", "一号工会", "unit", f"C{tag}-A"),
            (f"C{tag}-U2", "二号工会", "unit", f"C{tag}-A")]
    for code, name, level, parent in tree:
        admin.post("enrollment", "/api/v1/orgs", json={"code": code, "name": name, "level": level, "parent": parent})
    staff = {"centre": ("centre_reviewer", f"C{tag}"), "office": ("office_reviewer", f"C{tag}-O"),
             "agency": ("agency_reviewer", f"C{tag}-A"), "agency2": ("agency_reviewer", f"C{tag}-A"),
             "agent": ("unit_agent", f"C{tag}-U1"), "agent2": ("unit_agent", f"C{tag}-U2"),
             "finance": ("finance", f"C{tag}"), "finance2": ("finance", f"C{tag}")}
    for username, (role, org) in staff.items():
        admin.post("enrollment", "/api/v1/users", json={"username": username, "password": PASSWORD, "role": role,
                                                        "org": org})
    period = f"e2e-{tag.lower()}"
    admin.post("enrollment", "/api/v1/periods", json=open_period_document(period))
    rng = random.Random(tag)
    members = [person(rng) for _ in range(6)]
    agent = api.login("agent", PASSWORD)
    roster = agent.post("enrollment", f"/api/v1/periods/{period}/units/C{tag}-U1/rosters",
                        json={"staff": {"total": 6, "in_service": 6, "basic_insured_in_service": 6},
                              "members": members})
    assert roster["status"] == "awaiting_payment" and roster["fee_total"] == "900.00"
    paid = agent.post("enrollment", f"/api/v1/rosters/{roster['roster_id']}/payments",
                      json={"amount": "900.00", "reference": "E2E-1", "paid_at": date.today().isoformat()})
    assert paid["status"] == "active"
    member_ids = [agent.get("enrollment", "/api/v1/members", params={"certno": m["certno"]})[0]["member_id"]
                  for m in members]
    admin.post("enrollment", "/api/v1/users", json={"username": "member0", "password": PASSWORD, "role": "member",
                                                     "member_id": member_ids[0]})
    # Claims and payments learn the coverage from enrollment's events.
    wait_for("claims to learn the coverage", lambda: agent.get("claims", "/api/v1/coverages",
                                                               params={"member_id": member_ids[-1]}), 60)
    return World(api=api, admin=admin, period=period, unit=f"C{tag}-U1", members=members, member_ids=member_ids)
