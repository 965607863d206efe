"""Pure combining of the services' figures for the dashboard: the payout ratio by month and system health
from Prometheus text. No I/O here (tests/unit/test_dashboard_figures.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from shared.money import format_money

ZERO = Decimal("0.00")


def payout_by_month(approved: Iterable[Mapping[str, Any]], paid: Iterable[Mapping[str, Any]],
                    fees: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per month with aid approved (claims), aid paid (payments, top-ups included) and fees received
    (enrollment), and the payout ratio so far: aid paid to date / fees received to date (None before any fee).
    Amounts stay Decimal strings; the ratio is a float rounded to 4 places (a display figure)."""
    months: dict[str, dict[str, Decimal]] = {}

    def row(month: str) -> dict[str, Decimal]:
        return months.setdefault(month, {"approved": ZERO, "paid": ZERO, "fees": ZERO})

    for r in approved:
        row(r["month"])["approved"] += Decimal(r["approved"])
    for r in paid:
        row(r["month"])["paid"] += Decimal(r["paid"])
    for r in fees:
        row(r["month"])["fees"] += Decimal(r["received"])
    out, paid_to_date, fees_to_date = [], ZERO, ZERO
    for month in sorted(months):
        figures = months[month]
        paid_to_date += figures["paid"]
        fees_to_date += figures["fees"]
        ratio = round(float(paid_to_date / fees_to_date), 4) if fees_to_date else None
        out.append({"month": month, "approved": format_money(figures["approved"]),
                    "paid": format_money(figures["paid"]), "fees_received": format_money(figures["fees"]),
                    "paid_to_date": format_money(paid_to_date), "fees_to_date": format_money(fees_to_date),
                    "payout_ratio_to_date": ratio})
    return out


def health_from_metrics(text: str) -> dict[str, Any]:
    """The figures of one service's /metrics the health panel shows."""
    out: dict[str, Any] = {"outbox_backlog": 0, "outbox_oldest_unpublished_seconds": 0.0, "consumer_lag": {},
                           "events_dead_lettered": 0, "events_applied": 0, "events_duplicates_skipped": 0,
                           "outbox_published": 0}
    simple = {"outbox_oldest_unpublished_seconds": "outbox_oldest_unpublished_seconds",
              "events_dead_lettered_total": "events_dead_lettered", "events_applied_total": "events_applied",
              "events_duplicates_skipped_total": "events_duplicates_skipped",
              "outbox_published_total": "outbox_published"}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "outbox_backlog":
                out["outbox_backlog"] += int(sample.value)
            elif sample.name == "consumer_lag":
                topic = sample.labels.get("topic", "")
                out["consumer_lag"][topic] = out["consumer_lag"].get(topic, 0) + int(sample.value)
            elif sample.name in simple:
                value = sample.value
                out[simple[sample.name]] = value if isinstance(out[simple[sample.name]], float) else int(value)
    return out
