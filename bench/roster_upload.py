"""Roster uploads against the real enrollment service process (uvicorn, its own PostgreSQL database, the
Tansu broker): a CSV or XLSX file posted as a unit agent's app would, timed from the first byte sent to the
201 answer (multipart, parsing, every check, COPY into PostgreSQL, commit). The server's peak memory is read
from /proc (VmHWM) after each upload."""

from __future__ import annotations

import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.people import csv_bytes, xlsx_bytes
from bench.procfs import peak_rss_mib
from deploy.localstack import Stack
from shared.rulebook import load_rulebook

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class Uploader:
    def __init__(self, stack: Stack, rulebook_path: Path) -> None:
        self.stack = stack
        self.http = httpx.Client(base_url=stack.url("enrollment"), timeout=600)
        token = self.http.post("/api/v1/auth/token", data={"username": "admin", "password": "admin"}).json()
        self.admin = {"Authorization": f"Bearer {token['access_token']}"}
        self.rulebook = load_rulebook(rulebook_path.read_bytes()).to_document()

    def world(self, tag: str) -> tuple[str, str]:
        for code, level, parent in ((f"BC{tag}", "centre", None), (f"BO{tag}", "office", f"BC{tag}"),
                                    (f"BA{tag}", "agency_point", f"BO{tag}"), (f"BU{tag}", "unit", f"BA{tag}")):
            self.http.post("/api/v1/orgs", json={"code": code, "name": code, "level": level, "parent": parent},
                           headers=self.admin).raise_for_status()
        today = date.today()
        document = dict(self.rulebook, code=f"bench-{tag}", previous_period=None, windows={
            "enrolment": {"from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=30))},
            "coverage": {"from": str(today), "to": str(today + timedelta(days=364))},
            "claims": {"from": str(today), "to": str(today + timedelta(days=500))}})
        self.http.post("/api/v1/periods", json=document, headers=self.admin).raise_for_status()
        return f"bench-{tag}", f"BU{tag}"

    def upload(self, kind: str, count: int, start: int) -> dict[str, Any]:
        data = csv_bytes(count, start) if kind == "csv" else xlsx_bytes(count, start)
        period, unit = self.world(f"{kind}{start}")
        started = time.perf_counter()
        r = self.http.post(
            f"/api/v1/periods/{period}/units/{unit}/rosters", headers=self.admin,
            files={"file": (f"名单.{kind}", data, "text/csv" if kind == "csv" else XLSX_TYPE)},
            data={"staff_total": str(count), "staff_in_service": str(count),
                  "staff_basic_insured_in_service": str(count)})
        seconds = time.perf_counter() - started
        if r.status_code != 201:
            raise SystemExit(f"upload failed: {r.status_code} {r.text[:2000]}")
        return {"kind": kind, "rows": count, "file_mib": round(len(data) / 2**20, 1), "seconds": round(seconds, 3),
                "rows_per_second": round(count / seconds), "fee_total": r.json()["fee_total"],
                "server_peak_rss_mib": round(peak_rss_mib(self.stack.procs["enrollment"].pid))}
