"""A short, bounded chaos run in ``make test`` (the long one is ``make chaos SEED=… DURATION=…``): claims flow
through the real stack while each service, the broker and PostgreSQL are SIGKILLed at random points (each at
least once) and started again; then every invariant of deploy/chaos.py must hold."""

from __future__ import annotations

import json

import pytest

from deploy.chaos import TARGETS, run_chaos

SEED = 11


# Known bug (issue #11 stays open): with two or three broker losses in the 30 s round, a few deliveries (2-11 of
# about 2,000) can still be lost: a consumer that meets a new broker with its old positions commits past records
# it never read, and the publisher then counts them as confirmed. Rows confirmed in the ten minutes before a loss
# are now published again (shared/broker_watch.py RECONFIRM_WINDOW), which fixed the two-losses case in most runs
# but not all. The round still runs in `make test`, writes its report and shows as XPASS when every invariant
# holds (strict=False only because the loss is intermittent; make it strict once fixed).
@pytest.mark.xfail(strict=False, reason="intermittent loss of a few deliveries after repeated broker losses "
                                        "(issue #11, see the comment above)")
def test_claims_survive_every_process_being_killed(tmp_path_factory: pytest.TempPathFactory) -> None:
    report = run_chaos(tmp_path_factory.mktemp("chaos"), seed=SEED, duration=30, members=10, settle_timeout=90)
    summary = report.as_dict()
    (tmp_path_factory.getbasetemp() / "chaos-report.json").write_text(json.dumps(summary, ensure_ascii=False,
                                                                                 indent=2))
    assert all(report.kills[target] >= 1 for target in TARGETS), summary["kills"]
    assert report.claims_decided > 0, summary
    failed = {name: v for name, v in report.invariants.items() if not v["ok"]}
    assert not failed, json.dumps(summary, ensure_ascii=False, indent=2)
