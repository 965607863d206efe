"""Messages to members, one per event that concerns them, in Chinese (templates below)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications.delivery import enqueue
from services.notifications.models import Notification, Recipient, StaffNotification
from shared.events import (
    ClaimAdjusted,
    ClaimApproved,
    ClaimOverdue,
    ClaimRejected,
    ClaimReturned,
    ClaimRevoked,
    ClaimSubmitted,
    Envelope,
    EventPayload,
    LoyaltyGranted,
    LoyaltyRevoked,
    MemberContactChanged,
    MemberCovered,
    MemberDetailsCorrected,
    PaymentFailed,
    PaymentInstructionCreated,
    PaymentSettled,
)
from shared.messaging import Handler
from shared.money import format_money
from shared.parking import ReferenceMissing
from shared.vocab import LEVEL_REVIEWER, Role

BEIJING = timezone(timedelta(hours=8))
STATUS_ZH = {"in_review": "审核中", "rejected": "未通过", "submitted": "已提交"}


def zh_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def scrub(text: str) -> str:
    """Free text from elsewhere (a bank's reason, a reviewer's note) may carry an ID or account number: any run
    of 6 or more digits (or an ID number ending in X) is masked before it can reach a message."""
    return LONG_NUMBER.sub(lambda m: m.group(0)[:2] + "*" * (len(m.group(0)) - 4) + m.group(0)[-2:], text)


LONG_NUMBER = re.compile(r"\d{5,}[\dXx]")


def render(event: EventPayload, day: date | None = None) -> tuple[str, str] | None:
    """(template, text) for an event, or None when the member need not hear of it. ``day`` is the event's date
    (Beijing time); no message carries an ID number or a bank account (tests/unit/test_notification_templates.py)."""
    on = zh_date(day or datetime.now(BEIJING).date())
    match event:
        case MemberCovered():
            return "member_covered", (f"{event.name}，您已加入 {event.period} 期职工医疗互助，"
                                      f"保障期 {zh_date(event.coverage_from)} 至 {zh_date(event.coverage_to)}。")
        case LoyaltyGranted():  # 第十五条
            periods = "、".join(event.periods_without_aid)
            return "loyalty_granted", (f"{on}，您连续参加职工医疗互助（{periods} 期）未获得补助，{event.period} 期获赠"
                                       "一份意外伤害保障（实施办法附则），本期内发生意外伤害可按规定申请补助，"
                                       "请联系本单位工会经办人。")
        case LoyaltyRevoked():  # 第十五条: aid found later in the chain
            aided = "、".join(event.aided_periods)
            return "loyalty_revoked", (f"{on}，经复核，您在 {aided} 期获得了补助，不符合连续参加未获得补助的条件（第十五条），"
                                       f"{event.period} 期获赠的意外伤害保障予以取消；如已就该保障提出补助申请，"
                                       "该申请照常办理。详情请联系本单位工会经办人。")
        case ClaimSubmitted():
            return "claim_submitted", f"{on}，您的补助申请已受理（{STATUS_ZH.get(event.status, event.status)}）。"
        case ClaimApproved():
            if event.aid_amount > 0:
                return "claim_approved", (f"{on}，您的补助申请已批准，补助金额 {format_money(event.aid_amount)} 元，"
                                          "将转入您本人的银行账户。")
            return "claim_approved_zero", (f"{on}，您的补助申请已审核：本次住院费用未达到补助起付标准，补助金额为 0 元，"
                                           "本期累计基数已记录。")
        case ClaimRejected():
            return "claim_rejected", f"{on}，您的补助申请未通过：{scrub(event.detail)}（{event.code}）。"
        case ClaimReturned():
            return "claim_returned", f"{on}，您的补助申请需补充材料：{scrub(event.reason)}。请联系本单位工会经办人。"
        case ClaimRevoked():
            return "claim_revoked", f"{on}，您的补助已被撤销：{scrub(event.reason)}。已发放的补助将予追回。"
        case PaymentInstructionCreated():
            return "payment_scheduled", f"{on}，补助 {format_money(event.amount)} 元已进入银行转账流程。"
        case PaymentSettled():
            return "payment_paid", f"{on}，补助 {format_money(event.amount)} 元已转入您的银行账户。"
        case PaymentFailed():
            return "payment_failed", (f"{on}，补助转账未成功（{scrub(event.reason)}），"
                                      "请联系本单位工会经办人核对银行账户。")
        case ClaimAdjusted():
            if event.amount > 0:
                return "claim_topped_up", (f"{on}，您本期的补助已重新核算（{scrub(event.reason)}），将补发 "
                                           f"{format_money(event.amount)} 元。")
            return "claim_recovery", (f"{on}，您本期的补助已重新核算（{scrub(event.reason)}），多发的 "
                                      f"{format_money(-event.amount)} 元需要退回，本单位工会经办人会与您联系。")
    return None


def render_for_staff(event: EventPayload, recipient: Recipient | None) -> tuple[str, str, str, str] | None:
    """(org, role, template, text) of a message to staff, or None."""
    match event:
        case ClaimOverdue():
            role = LEVEL_REVIEWER.get(event.level, Role.CENTRE_REVIEWER)
            if event.kind == "escalation":
                return event.org, role, "claim_escalated", (
                    f"申请 {event.claim_id[:8]} 在下级逾期未审（应于 {event.due_date} 前办结），已上报贵级督办。")
            return event.org, role, "claim_overdue", (
                f"申请 {event.claim_id[:8]} 已到办结期限 {event.due_date}（第十条：5 个工作日），请尽快审批。")
        case PaymentFailed() if recipient is not None:
            return recipient.unit_path[-1], "unit_agent", "payment_failed_fix", (
                f"会员 {recipient.name} 的补助转账未成功：{event.reason}。请核对其银行账户，"
                "在系统中更新后将自动重新转账。")
        case ClaimReturned() if recipient is not None:
            return recipient.unit_path[-1], "unit_agent", "claim_returned_fix", (
                f"会员 {recipient.name} 的申请被退回：{event.reason}。请补充材料后重新提交。")
    return None


NEEDS_RECIPIENT = (PaymentFailed, ClaimReturned)  # staff are told which member: wait until it is known


async def contact_changed(session: AsyncSession, envelope: Envelope, event: EventPayload) -> None:
    """A new phone or bank account: the member is told by sms at the phone they had before the change (if it
    was not them, they hear of it where they still are), and in the app; later messages go to the new phone,
    unless a newer change is already known (the member's version: events may arrive out of order)."""
    assert isinstance(event, MemberContactChanged)
    recipient = await session.get(Recipient, event.member_id, with_for_update=True)
    if recipient is None:
        raise ReferenceMissing(f"member:{event.member_id}")
    previous = event.previous_phone or recipient.phone
    if recipient.member_version <= event.member_version:
        recipient.phone, recipient.name, recipient.member_version = event.phone, event.name, event.member_version
        if event.email is not None:
            recipient.email = event.email or None
    text = ("您在职工医疗互助登记的银行账号或手机号已变更。如非本人申请，请立即联系本单位工会或互助中心；"
            "变更后的账号在核实前暂不付款。")
    created = (await session.execute(insert(Notification).values(
        source_event_id=envelope.event_id, member_id=event.member_id, channel="sms" if previous else "in_app",
        to_phone=previous or None, template="contact_changed", text=text, status="recorded",
    ).on_conflict_do_nothing().returning(Notification.id))).scalar_one_or_none()
    if created is not None:
        await enqueue(session, created, "contact_changed", recipient, sms_to=previous or None)


async def record(session: AsyncSession, envelope: Envelope, event: EventPayload) -> None:
    if isinstance(event, MemberCovered):
        values = dict(member_id=event.member_id, name=event.name, phone=event.phone, unit_path=event.unit_path,
                      member_version=event.member_version)
        # Details move only forward by the member's version (a late or replayed copy changes nothing).
        await session.execute(insert(Recipient).values(**values).on_conflict_do_update(
            index_elements=["member_id"], set_=values, where=Recipient.member_version <= event.member_version))
    member_id = getattr(event, "member_id", None)
    recipient = await session.get(Recipient, member_id) if member_id else None
    if recipient is None and member_id and isinstance(event, NEEDS_RECIPIENT):
        raise ReferenceMissing(f"member:{member_id}")
    for_staff = render_for_staff(event, recipient)
    if for_staff is not None:
        org, role, template, text = for_staff
        await session.execute(insert(StaffNotification).values(
            source_event_id=envelope.event_id, org=org, audience=role, template=template, text=text,
            subject=getattr(event, "claim_id", None) or member_id).on_conflict_do_nothing())
    rendered = render(event, envelope.occurred_at.astimezone(BEIJING).date())
    if rendered is None or member_id is None:
        return
    template, text = rendered
    created = (await session.execute(insert(Notification).values(
        source_event_id=envelope.event_id, member_id=member_id, channel="in_app", template=template, text=text,
        status="recorded").on_conflict_do_nothing().returning(Notification.id))).scalar_one_or_none()
    if created is not None:
        await enqueue(session, created, template, recipient)


async def details_changed(session: AsyncSession, _: Envelope, event: EventPayload) -> None:
    """A corrected name: kept only when newer than what is known (the member's version)."""
    assert isinstance(event, MemberContactChanged | MemberDetailsCorrected)
    known = await session.get(Recipient, event.member_id, with_for_update=True)
    if known is None:
        raise ReferenceMissing(f"member:{event.member_id}")
    if known.member_version > event.member_version:
        return
    known.name, known.member_version = event.name, event.member_version
    if isinstance(event, MemberContactChanged):
        known.phone = event.phone


HANDLERS: dict[str, Handler] = {
    **{cls.TYPE: record
       for cls in (MemberCovered, LoyaltyGranted, LoyaltyRevoked, ClaimSubmitted, ClaimApproved, ClaimRejected, ClaimReturned, ClaimRevoked,
                   ClaimAdjusted, ClaimOverdue, PaymentInstructionCreated, PaymentSettled, PaymentFailed)},
    MemberContactChanged.TYPE: contact_changed,
    MemberDetailsCorrected.TYPE: details_changed,
}
