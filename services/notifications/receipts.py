"""SMS delivery receipts (issue #13 item 5): the provider's callback marks a sent SMS ``delivered`` (or
``failed`` with the operator's reason), matched by the reference the provider gave when it accepted the message
(``deliveries.provider_ref``).

The callback comes from the provider, not a user: it carries no token of ours, so its URL holds a secret
(``NOTIFICATIONS_SMS_RECEIPT_TOKEN``; empty turns receipts off). Bodies as the providers document them, a JSON
array of reports:
- Aliyun SMS report (SmsReport): ``{"biz_id", "success": true|false, "err_code", "err_msg", "phone_number", ...}``;
- Tencent Cloud SMS status callback: ``{"sid", "report_status": "SUCCESS"|"FAIL", "errmsg", "description", ...}``;
- the local endpoint of ``make run``: ``{"id", "status": "delivered"|"failed", "error"}``.
A report for an unknown reference, or for a delivery already final, changes nothing (callbacks may repeat).
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import update

from services.notifications.delivery import DeliveryChannel, DeliveryStatus
from services.notifications.models import Delivery
from shared.deps import SessionDep
from shared.errors import Invalid, NotFound
from shared.schemas import problem_responses

router = APIRouter(prefix="/api/v1", tags=["notifications"])
MAX_REPORTS = 1000


class ReceiptsOut(BaseModel):
    received: int
    delivered: int
    failed: int


def parse_report(report: Any) -> tuple[str, bool, str] | None:
    """(provider reference, delivered?, error) of one report in any of the three shapes; None if unreadable."""
    if not isinstance(report, dict):
        return None
    if "biz_id" in report:  # Aliyun
        ok = report.get("success") in (True, "true")
        return str(report["biz_id"]), ok, "" if ok else f"{report.get('err_code', '')} {report.get('err_msg', '')}"
    if "sid" in report:  # Tencent
        ok = str(report.get("report_status", "")).upper() == "SUCCESS"
        return str(report["sid"]), ok, "" if ok else f"{report.get('errmsg', '')} {report.get('description', '')}"
    if "id" in report and report.get("status") in ("delivered", "failed"):  # local
        return str(report["id"]), report["status"] == "delivered", str(report.get("error", ""))
    return None


@router.post("/sms/receipts/{token}", response_model=ReceiptsOut, responses=problem_responses(404, 422))
async def sms_receipts(token: str, request: Request, session: SessionDep) -> ReceiptsOut:
    expected = request.app.state.settings.sms_receipt_token
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        raise NotFound("未找到。", code="not_found")
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise Invalid("回执不是有效的 JSON。", code="invalid_json") from None
    reports = body if isinstance(body, list) else [body]
    if len(reports) > MAX_REPORTS:
        raise Invalid(f"一次最多 {MAX_REPORTS} 条回执。", code="too_many_reports")
    delivered = failed = 0
    parsed_reports = [parsed for parsed in map(parse_report, reports) if parsed is not None and parsed[0]]
    if parsed_reports and all(ok for _, ok, _ in parsed_reports):
        # The usual batch, every report a delivery: one statement (a report of one already marked counts nothing).
        stmt = update(Delivery).where(Delivery.channel == DeliveryChannel.SMS,
                                      Delivery.provider_ref.in_(sorted({ref[:100] for ref, _, _ in parsed_reports})),
                                      Delivery.status == DeliveryStatus.SENT)
        changed = (await session.execute(stmt.values(status=DeliveryStatus.DELIVERED).returning(Delivery.id))).all()
        return ReceiptsOut(received=len(reports), delivered=len(changed), failed=0)
    for ref, ok, error in parsed_reports:  # failures among them: in the order sent, each with its error
        stmt = update(Delivery).where(Delivery.channel == DeliveryChannel.SMS, Delivery.provider_ref == ref[:100],
                                      Delivery.status == DeliveryStatus.SENT)
        values: dict[str, Any] = {"status": DeliveryStatus.DELIVERED} if ok else {
            "status": DeliveryStatus.FAILED, "last_error": ("运营商回执：" + error.strip())[:1000]}
        changed = (await session.execute(stmt.values(**values).returning(Delivery.id))).all()
        delivered += len(changed) if ok else 0
        failed += 0 if ok else len(changed)
    return ReceiptsOut(received=len(reports), delivered=delivered, failed=failed)
