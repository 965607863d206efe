"""Pure figures of the ops dashboard (issue #14): days from discharge to payment, the payout ratio by month,
and the health figures read from Prometheus text."""

from __future__ import annotations

from services.claims.stats import day_figures
from services.dashboard.figures import health_from_metrics, payout_by_month


def test_day_figures_median_p90_and_buckets() -> None:
    figures = day_figures([3, 10, 12, 40, 100, 5, 7, 9, 11, 13])
    assert figures["count"] == 10 and figures["median"] == 10.5 and figures["p90"] == 40
    assert [b["count"] for b in figures["buckets"]] == [3, 5, 0, 1, 0, 1]
    assert [(b["from"], b["to"]) for b in figures["buckets"]][-1] == (91, None)


def test_day_figures_of_nothing_and_of_one() -> None:
    assert day_figures([])["median"] is None and day_figures([])["p90"] is None
    assert day_figures([0])["median"] == 0.0 and day_figures([0])["p90"] == 0


def test_payout_ratio_is_aid_paid_to_date_over_fees_received_to_date() -> None:
    rows = payout_by_month(
        approved=[{"month": "2026-03", "approved": "3460.00"}, {"month": "2026-04", "approved": "1000.00"}],
        paid=[{"month": "2026-04", "paid": "3460.00"}],
        fees=[{"month": "2026-01", "received": "90000.00"}, {"month": "2026-04", "received": "10000.00"}])
    assert [r["month"] for r in rows] == ["2026-01", "2026-03", "2026-04"]
    assert rows[0]["payout_ratio_to_date"] == 0.0 and rows[0]["fees_to_date"] == "90000.00"
    assert rows[1]["approved"] == "3460.00" and rows[1]["paid"] == "0.00"
    assert rows[2]["paid_to_date"] == "3460.00" and rows[2]["fees_to_date"] == "100000.00"
    assert rows[2]["payout_ratio_to_date"] == 0.0346


def test_payout_ratio_before_any_fee_is_none() -> None:
    rows = payout_by_month(approved=[], paid=[{"month": "2026-02", "paid": "10.00"}], fees=[])
    assert rows == [{"month": "2026-02", "approved": "0.00", "paid": "10.00", "fees_received": "0.00",
                     "paid_to_date": "10.00", "fees_to_date": "0.00", "payout_ratio_to_date": None}]


def test_health_from_metrics_sums_lag_per_topic_and_backlog() -> None:
    text = "\n".join([
        "# HELP outbox_backlog x", "# TYPE outbox_backlog gauge",
        'outbox_backlog{topic="claims.events"} 3.0', 'outbox_backlog{topic="huzhu.dead-letter"} 1.0',
        "# HELP consumer_lag x", "# TYPE consumer_lag gauge",
        'consumer_lag{topic="enrollment.events"} 7.0', 'consumer_lag{topic="payments.events"} 0.0',
        "# HELP events_dead_lettered_total x", "# TYPE events_dead_lettered_total gauge",
        "events_dead_lettered_total 2.0",
        "# HELP outbox_oldest_unpublished_seconds x", "# TYPE outbox_oldest_unpublished_seconds gauge",
        "outbox_oldest_unpublished_seconds 12.5", ""])
    health = health_from_metrics(text)
    assert health["outbox_backlog"] == 4
    assert health["consumer_lag"] == {"enrollment.events": 7, "payments.events": 0}
    assert health["events_dead_lettered"] == 2
    assert health["outbox_oldest_unpublished_seconds"] == 12.5
