"""Masking personal data in responses for anyone who does not need it whole."""

from __future__ import annotations


def mask_certno(certno: str) -> str:
    """Resident ID: keep the region (6) and the last 4: 530102********123X."""
    if len(certno) <= 10:
        return "*" * len(certno)
    return certno[:6] + "*" * (len(certno) - 10) + certno[-4:]


def mask_account(account: str) -> str:
    if len(account) <= 8:
        return "*" * len(account)
    return account[:4] + "*" * (len(account) - 8) + account[-4:]


def mask_phone(phone: str) -> str:
    if len(phone) < 7:
        return "*" * len(phone)
    return phone[:3] + "****" + phone[-4:]
