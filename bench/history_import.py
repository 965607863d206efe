"""The previous period's members imported (issue #8), against the real enrollment service process: a
100,000-line CSV history (身份证号码, 单位代码, 人员类别, 是否获得补助) posted by the admin, the same file again
(every row unchanged: the idempotent path), then a roster of the same 100,000 people in the next period, whose
fees (120 renewal each, seed 003 第四条) are read from that history, against the reference of a roster of
100,000 other people in a period with no previous one, in the same run (these machines are shared: compare
within one run).

``python -m bench.history_import`` runs it alone (its own PostgreSQL, broker and enrollment process) and
writes ``bench-results/history.json``; ``make bench`` runs it with the rest."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.people import csv_bytes, unique_certno
from bench.procfs import peak_rss_mib
from deploy.localstack import Stack
from shared.rulebook import RULEBOOKS_DIR, load_rulebook

START = 2_000_000  # people no other figure of the bench uses


def history_csv(count: int, unit: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["身份证号码", "单位代码", "人员类别", "是否获得补助"])
    for i in range(START, START + count):
        writer.writerow([unique_certno(i), unit, "在职", "否"])
    return out.getvalue().encode("utf-8-sig")


def run(stack: Stack, rulebook_path: Path, count: int) -> dict[str, Any]:
    http = httpx.Client(base_url=stack.url("enrollment"), timeout=600)
    token = http.post("/api/v1/auth/token", data={"username": "admin", "password": "admin"}).json()
    admin = {"Authorization": f"Bearer {token['access_token']}"}
    for code, level, parent in (("HC", "centre", None), ("HO", "office", "HC"), ("HA", "agency_point", "HO"),
                                ("HU", "unit", "HA")):
        http.post("/api/v1/orgs", json={"code": code, "name": code, "level": level, "parent": parent},
                  headers=admin).raise_for_status()
    rulebook = load_rulebook(rulebook_path.read_bytes()).to_document()
    today = date.today()
    for code, previous, enrol in (("bench-yn-17", None, (today - timedelta(days=400), today - timedelta(days=300))),
                                  ("bench-yn-18", "bench-yn-17", (today - timedelta(days=1), today + timedelta(days=30))),
                                  ("bench-first", None, (today - timedelta(days=1), today + timedelta(days=30)))):
        http.post("/api/v1/periods", headers=admin, json=dict(rulebook, code=code, previous_period=previous, windows={
            "enrolment": {"from": str(enrol[0]), "to": str(enrol[1])},
            "coverage": {"from": str(enrol[0]), "to": str(enrol[0] + timedelta(days=364))},
            "claims": {"from": str(enrol[0]), "to": str(enrol[0] + timedelta(days=500))}})).raise_for_status()
    data = history_csv(count, "HU")
    timings: dict[str, Any] = {"rows": count, "file_mib": round(len(data) / 2**20, 1)}
    for name, expected in (("first_import", "added"), ("same_file_again", "unchanged")):
        started = time.perf_counter()
        r = http.post("/api/v1/periods/bench-yn-17/history", headers=admin,
                      files={"file": ("第十七期参互名单.csv", data, "text/csv")})
        seconds = time.perf_counter() - started
        if r.status_code != 200 or r.json()[expected] != count:
            raise SystemExit(f"history import failed: {r.status_code} {r.text[:2000]}")
        timings[name] = {"seconds": round(seconds, 3), "rows_per_second": round(count / seconds)}
    for name, period, start, fee in (("reference_roster_upload_no_previous_period", "bench-first", START + count, 150),
                                     ("renewing_roster_upload", "bench-yn-18", START, 120)):
        started = time.perf_counter()
        r = http.post(f"/api/v1/periods/{period}/units/HU/rosters", headers=admin,
                      files={"file": ("名单.csv", csv_bytes(count, start), "text/csv")},
                      data={"staff_total": str(count), "staff_in_service": str(count),
                            "staff_basic_insured_in_service": str(count)})
        seconds = time.perf_counter() - started
        if r.status_code != 201 or r.json()["fee_total"] != f"{fee * count}.00":
            raise SystemExit(f"roster upload failed: {r.status_code} {r.text[:2000]}")
        timings[name] = {"seconds": round(seconds, 3), "rows_per_second": round(count / seconds),
                         "fee_total": r.json()["fee_total"]}
    timings["server_peak_rss_mib"] = round(peak_rss_mib(stack.procs["enrollment"].pid))
    timings["load_average_1m"] = round(os.getloadavg()[0], 1)  # other work on this shared machine
    return timings


def main() -> None:
    from deploy.infra import free_port, wipe
    from deploy.localstack import SERVICES

    root = Path(__file__).resolve().parents[1]
    home = Path(os.environ.get("BENCH_HOME", "/tmp/huzhu-bench-history"))
    wipe(home)
    stack = Stack(home=home, pg_port=free_port(), kafka_port=free_port(),
                  ports={name: free_port() for name in SERVICES}, partitions=3)
    try:
        stack.start_infra()
        stack.start_service("enrollment")
        stack.wait_ready(["enrollment"])
        result = run(stack, RULEBOOKS_DIR / "yunnan-18.yaml", int(os.environ.get("BENCH_HISTORY_ROWS", "100000")))
    finally:
        stack.stop()
    (root / "bench-results").mkdir(exist_ok=True)
    (root / "bench-results" / "history.json").write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
