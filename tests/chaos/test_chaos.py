"""A short, bounded chaos run in ``make test`` (the long one is ``make chaos SEED=… DURATION=…``): claims flow
through the real stack while each service, the broker and PostgreSQL are SIGKILLed at random points (each at
least once) and started again; then every invariant of deploy/chaos.py must hold."""

from __future__ import annotations

import json

import pytest

from deploy.chaos import TARGETS, run_chaos

SEED = 11


def test_claims_survive_every_process_being_killed(tmp_path_factory: pytest.TempPathFactory) -> None:
    report = run_chaos(tmp_path_factory.mktemp("chaos"), seed=SEED, duration=30, members=10, settle_timeout=90)
    summary = report.as_dict()
    (tmp_path_factory.getbasetemp() / "chaos-report.json").write_text(json.dumps(summary, ensure_ascii=False,
                                                                                 indent=2))
    assert all(report.kills[target] >= 1 for target in TARGETS), summary["kills"]
    assert report.claims_decided > 0, summary
    failed = {name: v for name, v in report.invariants.items() if not v["ok"]}
    assert not failed, json.dumps(summary, ensure_ascii=False, indent=2)
