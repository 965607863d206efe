"""Documents of a claim (Yuncheng's list, seed 001: 医保结算单, 出院证, 身份证, 银行卡, 诊断证明 ...): pure rules.

Which types a claim needs depends on its plan's kind; the rulebooks do not list documents yet, so the lists
live here (one place) until a rulebook key carries them.
"""

from __future__ import annotations

DOCUMENT_TYPES: dict[str, str] = {
    "settlement_sheet": "医保结算单",
    "discharge_certificate": "出院证",
    "id_card": "身份证",
    "bank_card": "银行卡",
    "diagnosis_certificate": "诊断证明",
    "referral_approval": "转诊审批",
    "other": "其他",
}
_BY_LABEL = {label: code for code, label in DOCUMENT_TYPES.items()}

# What a complete application holds, by plan kind (第十条 "资料齐全").
EXPECTED: dict[str, tuple[str, ...]] = {
    "banded": ("settlement_sheet", "discharge_certificate", "id_card", "bank_card"),
    "fixed": ("settlement_sheet", "discharge_certificate", "diagnosis_certificate", "id_card", "bank_card"),
    "second_aid": ("settlement_sheet", "diagnosis_certificate", "id_card", "bank_card"),
}

MAX_DOCUMENT_BYTES = 10 * 1024 * 1024

# Magic bytes decide the type, never the file name or the declared content type.
_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"%PDF-", "application/pdf", "pdf"),
)


def document_type(value: str) -> str | None:
    """The code of a document type given as its code (``id_card``) or its Chinese name (``身份证``)."""
    value = value.strip()
    if value in DOCUMENT_TYPES:
        return value
    return _BY_LABEL.get(value)


def sniff(head: bytes) -> tuple[str, str] | None:
    """(content type, file extension) of a JPEG, PNG or PDF by its first bytes; None for anything else."""
    for magic, content_type, extension in _MAGIC:
        if head.startswith(magic):
            return content_type, extension
    return None


def missing_documents(plan_kind: str, present: set[str]) -> list[str]:
    return [code for code in EXPECTED.get(plan_kind, EXPECTED["banded"]) if code not in present]
