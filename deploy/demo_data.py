"""Demo data for the local stack, loaded over the public API when the database is empty.

An organisation tree 云南省职工医疗互助中心 -> 昆明市办事处 -> 五华区代办点 -> two unit unions, one account per
role, a period built from ``rulebooks/yunnan-18.yaml`` re-dated to the current year, and a paid
roster. The enrolment window of a period re-dated to this year has usually closed, so the roster is entered
by the admin as an audited late entry (the centre back-entering the year's paper records).

Next to it, next year's period (``rulebooks/yunnan-19.yaml``, previous period: this year's demo period) whose
enrolment window is open today, so that a unit agent can upload and pay a roster as on a real first day.
Every ``make run`` checks that window: if it has closed since the data was loaded, the admin moves it to
today by an audited rulebook correction.
"""

from __future__ import annotations

import os
import random
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, cast

from deploy.client import ApiError, Huzhu, Session, wait_for
from deploy.people import person
from shared.rulebook import RULEBOOKS_DIR, load_rulebook

if TYPE_CHECKING:
    from deploy.localstack import Stack

DEMO_PASSWORD = "huzhu-demo"
CENTRE, OFFICE, AGENCY = "YN", "YN-KM", "YN-KM-WH"
UNITS = {"YN-KM-WH-001": "云南省某机械厂工会", "YN-KM-WH-002": "五华区某小学工会"}
ORGS = [
    (CENTRE, "云南省职工医疗互助中心", "centre", None),
    (OFFICE, "昆明市职工医疗互助办事处", "office", CENTRE),
    (AGENCY, "五华区职工医疗互助代办点", "agency_point", OFFICE),
    *[(code, name, "unit", AGENCY) for code, name in UNITS.items()],
]
STAFF = {  # username: (role, org)
    "centre": ("centre_reviewer", CENTRE),
    "office": ("office_reviewer", OFFICE),
    "agency": ("agency_reviewer", AGENCY),
    "agent1": ("unit_agent", "YN-KM-WH-001"),
    "agent2": ("unit_agent", "YN-KM-WH-002"),
    "finance1": ("finance", CENTRE),
    "finance2": ("finance", CENTRE),
    "bureau": ("bureau", CENTRE),
}


def demo_period_code(year: int) -> str:
    return f"yn-18-{year}"


def demo_rulebook_document(year: int) -> dict[str, object]:
    rulebook = load_rulebook((RULEBOOKS_DIR / "yunnan-18.yaml").read_bytes()).redated(year)
    document = rulebook.to_document()
    document.update(code=demo_period_code(year), name=f"{rulebook.name}（演示：{year}年）", previous_period=None)
    return document


def enrolment_period_code(year: int) -> str:
    """Next year's period, the one whose enrolment is under way (yn-19 rules: the retiree rule, second aid)."""
    return f"yn-19-{year + 1}"


def enrolment_period_document(today: date) -> dict[str, Any]:
    """yunnan-19 re-dated to next year, renewing from this year's demo period, its enrolment window open today.

    The window is the rulebook's (20 Dec - 25 Feb before the coverage year), widened to include today - 5 days
    to today + 60 days, so that roster payments dated today are inside it (第五条 "必须在规定时限内交费").
    """
    year = today.year
    rulebook = load_rulebook((RULEBOOKS_DIR / "yunnan-19.yaml").read_bytes()).redated(year + 1)
    document = rulebook.to_document()
    window = rulebook.windows.enrolment
    document["windows"]["enrolment"] = {"from": min(window.from_, today - timedelta(days=5)).isoformat(),
                                        "to": max(window.to, today + timedelta(days=60)).isoformat()}
    document.update(code=enrolment_period_code(year), name=f"{rulebook.name}（演示：{year + 1}年，参互登记进行中）",
                    previous_period=demo_period_code(year))
    return document


def ensure_enrolment_open(admin: Session, today: date) -> str:
    """Create next year's period, or move its enrolment window to today if it has closed since it was made."""
    document = enrolment_period_document(today)
    code = str(document["code"])
    try:
        stored = admin.get("enrollment", f"/api/v1/periods/{code}")
    except ApiError as exc:
        if exc.status != 404:
            raise
        _create(admin, "/api/v1/periods", document)
        return code
    window = stored["windows"]["enrolment"]
    if not window["from"] <= today.isoformat() <= window["to"]:
        admin.call("PUT", "enrollment", f"/api/v1/periods/{code}/rulebook",
                   params={"reason": "演示数据：参互登记窗口移至今日，供单位经办人试用"}, json=document)
    return code


def open_period_document(code: str) -> dict[str, Any]:
    """yunnan-18 with windows around today, so a roster can be entered and claims made now."""
    document = load_rulebook((RULEBOOKS_DIR / "yunnan-18.yaml").read_bytes()).to_document()
    today = date.today()
    document.update(code=code, previous_period=None, windows={
        "enrolment": {"from": (today - timedelta(days=5)).isoformat(), "to": (today + timedelta(days=30)).isoformat()},
        "coverage": {"from": (today - timedelta(days=60)).isoformat(), "to": (today + timedelta(days=300)).isoformat()},
        "claims": {"from": (today - timedelta(days=60)).isoformat(), "to": (today + timedelta(days=500)).isoformat()},
    })
    return document


def admin_session(api: Huzhu) -> Session:
    return api.login("admin", os.environ.get("ADMIN_PASSWORD", "admin"))


def load_if_empty(stack: Stack) -> dict[str, tuple[str, str, str]]:
    api = Huzhu({name: stack.url(name) for name in stack.ports})
    admin = admin_session(api)
    accounts = {"admin": ("admin", "-", os.environ.get("ADMIN_PASSWORD", "admin"))}
    accounts.update({u: (role, org, DEMO_PASSWORD) for u, (role, org) in STAFF.items()})
    accounts["member1"] = ("member", "YN-KM-WH-001", DEMO_PASSWORD)
    try:
        api.login("member1", DEMO_PASSWORD)  # the last thing the loader makes
        print("demo data already loaded")
    except ApiError as exc:
        if exc.status != 401:
            raise
        load(api, admin)
    code = ensure_enrolment_open(admin, date.today())
    print(f"period {code}: enrolment open today (agent1 / agent2 may upload and pay rosters)")
    return accounts


def demo_members() -> list[dict[str, object]]:
    rng = random.Random(18)
    return [person(rng) for _ in range(8)] + [person(rng, "retired") for _ in range(2)]


def _create(admin: Session, path: str, body: dict[str, object]) -> None:
    """Create, or accept that an earlier, interrupted load already created it (409)."""
    admin.post("enrollment", path, json=body, expect=(201, 409))


def load(api: Huzhu, admin: Session) -> None:
    year = date.today().year
    for code, name, level, parent in ORGS:
        _create(admin, "/api/v1/orgs", {"code": code, "name": name, "level": level, "parent": parent})
    for username, (role, org) in STAFF.items():
        _create(admin, "/api/v1/users", {"username": username, "password": DEMO_PASSWORD, "role": role, "org": org})
    period = demo_period_code(year)
    document = demo_rulebook_document(year)
    _create(admin, "/api/v1/periods", document)
    # 第五条: a fee counts by its bank date, which must lie within the enrolment window and not in the future
    windows = cast(dict[str, dict[str, str]], document["windows"])
    window_end = date.fromisoformat(windows["enrolment"]["to"])
    paid_on = min(window_end - timedelta(days=5), date.today())
    members = demo_members()
    found = admin.get("enrollment", "/api/v1/members", params={"certno": members[0]["certno"]})
    mine = [c for c in (found[0]["coverages"] if found else []) if c["period"] == period]
    if mine:  # an interrupted earlier load stored the roster already
        roster = admin.get("enrollment", f"/api/v1/rosters/{mine[0]['roster_id']}")
    else:
        roster = admin.post(
            "enrollment", f"/api/v1/periods/{period}/units/YN-KM-WH-001/rosters",
            params={"late_reason": "演示数据：补录本年度已缴费的纸质名单"},
            json={"staff": {"total": 12, "in_service": 10, "basic_insured_in_service": 10}, "members": members},
        )
    if roster["status"] == "awaiting_payment":
        admin.post("enrollment", f"/api/v1/rosters/{roster['roster_id']}/payments",
                   json={"amount": roster["fee_total"], "reference": f"DEMO-{year}-001", "paid_at": paid_on.isoformat()})
    first = admin.get("enrollment", "/api/v1/members", params={"certno": members[0]["certno"]})[0]
    admin.post("enrollment", "/api/v1/users", json={"username": "member1", "password": DEMO_PASSWORD,
                                                     "role": "member", "member_id": first["member_id"]})
    # Claims learns coverage from enrollment's events: wait until it has, so the demo can claim at once.
    agent = api.login("agent1", DEMO_PASSWORD)
    wait_for("claims to learn the demo coverage", lambda: _claims_knows(agent, str(members[0]["certno"])), 60)
    print(f"demo data loaded: period {period}, {len(members)} members covered in YN-KM-WH-001")


def _claims_knows(agent: Session, certno: str) -> bool:
    r = agent.api.http.get(f"{agent.api.urls['claims']}/api/v1/coverages", params={"certno": certno},
                           headers={"Authorization": f"Bearer {agent.token}"})
    return r.status_code == 200 and bool(r.json())
