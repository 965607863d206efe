"""Messages to members, one per event that concerns them, in Chinese (templates below)."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications.models import Notification, Recipient
from shared.events import (
    ClaimApproved,
    ClaimRejected,
    ClaimReturned,
    ClaimRevoked,
    ClaimSubmitted,
    Envelope,
    EventPayload,
    MemberCovered,
    PaymentFailed,
    PaymentInstructionCreated,
    PaymentSettled,
)
from shared.messaging import Handler
from shared.money import format_money

STATUS_ZH = {"in_review": "审核中", "rejected": "未通过", "submitted": "已提交"}


def render(event: EventPayload) -> tuple[str, str] | None:
    """(template, text) for an event, or None when the member need not hear of it."""
    match event:
        case MemberCovered():
            return "member_covered", (f"{event.name}，您已加入 {event.period} 期职工医疗互助，"
                                      f"保障期 {event.coverage_from} 至 {event.coverage_to}。")
        case ClaimSubmitted():
            return "claim_submitted", f"您的补助申请已受理（{STATUS_ZH.get(event.status, event.status)}）。"
        case ClaimApproved():
            if event.aid_amount > 0:
                return "claim_approved", f"您的补助申请已批准，补助金额 {format_money(event.aid_amount)} 元，将转入您本人的银行账户。"
            return "claim_approved_zero", "您的补助申请已审核：本次住院费用未达到补助起付标准，补助金额为 0 元，本期累计基数已记录。"
        case ClaimRejected():
            return "claim_rejected", f"您的补助申请未通过：{event.detail}（{event.code}）。"
        case ClaimReturned():
            return "claim_returned", f"您的补助申请需补充材料：{event.reason}。请联系本单位工会经办人。"
        case ClaimRevoked():
            return "claim_revoked", f"您的补助已被撤销：{event.reason}。已发放的补助将予追回。"
        case PaymentInstructionCreated():
            return "payment_scheduled", f"补助 {format_money(event.amount)} 元已进入银行转账流程。"
        case PaymentSettled():
            return "payment_paid", f"补助 {format_money(event.amount)} 元已转入您的银行账户。"
        case PaymentFailed():
            return "payment_failed", f"补助转账未成功（{event.reason}），请联系本单位工会经办人核对银行账户。"
    return None


async def record(session: AsyncSession, envelope: Envelope, event: EventPayload) -> None:
    if isinstance(event, MemberCovered):
        values = dict(member_id=event.member_id, name=event.name, phone=event.phone, unit_path=event.unit_path)
        await session.execute(insert(Recipient).values(**values).on_conflict_do_update(
            index_elements=["member_id"], set_=values))
    rendered = render(event)
    member_id = getattr(event, "member_id", None)
    if rendered is None or member_id is None:
        return
    template, text = rendered
    await session.execute(insert(Notification).values(
        source_event_id=envelope.event_id, member_id=member_id, channel="in_app", template=template, text=text,
        status="recorded").on_conflict_do_nothing())


HANDLERS: dict[str, Handler] = {
    cls.TYPE: record
    for cls in (MemberCovered, ClaimSubmitted, ClaimApproved, ClaimRejected, ClaimReturned, ClaimRevoked,
                PaymentInstructionCreated, PaymentSettled, PaymentFailed)
}
