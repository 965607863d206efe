"""One roster upload measured in a process of its own (so its peak memory is its own): a CSV or XLSX file
through the real enrollment endpoint (multipart, parsing, every check, COPY into PostgreSQL) over ASGI.

Usage: python -m bench.roster_upload DATABASE_URL csv|xlsx ROWS START -> one JSON line on stdout.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import httpx

from bench.people import csv_bytes, xlsx_bytes
from services.enrollment.app import spec
from shared.rulebook import load_rulebook
from shared.service import build_app
from shared.settings import EnrollmentSettings


async def main(database_url: str, kind: str, count: int, start: int, rulebook_path: str) -> dict[str, object]:
    data = csv_bytes(count, start) if kind == "csv" else xlsx_bytes(count, start)
    rulebook = load_rulebook(Path(rulebook_path).read_bytes())
    app = build_app(spec(EnrollmentSettings(local_stack=True, database_url=database_url)), run_workers=False)
    async with app.router.lifespan_context(app):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://enrollment", timeout=600)
        token = (await client.post("/api/v1/auth/token", data={"username": "admin", "password": "admin"})).json()
        admin = {"Authorization": f"Bearer {token['access_token']}"}
        tag = f"{kind}{start}"
        for code, level, parent in ((f"BC{tag}", "centre", None), (f"BO{tag}", "office", f"BC{tag}"),
                                    (f"BA{tag}", "agency_point", f"BO{tag}"), (f"BU{tag}", "unit", f"BA{tag}")):
            await client.post("/api/v1/orgs", json={"code": code, "name": code, "level": level, "parent": parent},
                              headers=admin)
        document = rulebook.to_document()
        today = date.today()
        document.update(code=f"bench-{tag}", previous_period=None, windows={
            "enrolment": {"from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=30))},
            "coverage": {"from": str(today), "to": str(today + timedelta(days=364))},
            "claims": {"from": str(today), "to": str(today + timedelta(days=500))}})
        await client.post("/api/v1/periods", json=document, headers=admin)
        name = "名单.csv" if kind == "csv" else "名单.xlsx"
        started = time.perf_counter()
        r = await client.post(
            f"/api/v1/periods/bench-{tag}/units/BU{tag}/rosters", headers=admin,
            files={"file": (name, data, "text/csv" if kind == "csv" else
                            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")},
            data={"staff_total": str(count), "staff_in_service": str(count),
                  "staff_basic_insured_in_service": str(count)})
        seconds = time.perf_counter() - started
        if r.status_code != 201:
            raise SystemExit(f"upload failed: {r.status_code} {r.text[:2000]}")
        await client.aclose()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"kind": kind, "rows": count, "file_mib": round(len(data) / 2**20, 1), "seconds": round(seconds, 3),
            "rows_per_second": round(count / seconds), "peak_rss_mib": round(peak_mib), "fee_total": r.json()["fee_total"]}


if __name__ == "__main__":
    url, kind, rows, start, rulebook = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    print(json.dumps(asyncio.run(main(url, kind, rows, start, rulebook))))
