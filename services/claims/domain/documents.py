"""Documents of a claim (Yuncheng's list, seed 001: 医保结算单, 出院证, 身份证, 银行卡, 诊断证明 ...): pure rules.

Which types a claim needs depends on its plan's kind; the rulebooks do not list documents yet, so the lists
live here (one place) until a rulebook key carries them.
"""

from __future__ import annotations

import io
import logging
import unicodedata
from urllib.parse import quote

from PIL import Image
from pypdf import PdfReader

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


MAX_IMAGE_PIXELS = 40_000_000  # a 40-megapixel photo; larger claims are decompression bombs until shown not


def content_problem(content: bytes, content_type: str, max_pixels: int = MAX_IMAGE_PIXELS) -> str | None:
    """Why the bytes are not what their first bytes claim (Chinese, for the person), or None when they are: a
    PDF must parse as a PDF with at least one page; an image must decode whole as the format its magic names
    (Pillow ``verify()`` then ``load()``), at most ``max_pixels`` pixels, checked before any pixel is decoded.
    Pure and CPU-bound: run it off the event loop."""
    if content_type == "application/pdf":
        try:
            reader = PdfReader(io.BytesIO(content), strict=False)  # scanners write loose xrefs
            if len(reader.pages) < 1:
                return "PDF 文件没有页面。"
            for page in reader.pages:
                _ = page.mediabox
        except Exception:  # pypdf raises many kinds for a broken file: every one means "not a PDF"
            return "文件以 %PDF- 开头，但不是可以打开的 PDF。"
        return None
    expected = {"image/jpeg": "JPEG", "image/png": "PNG"}.get(content_type)
    if expected is None:
        return "只接受 JPEG、PNG 照片或 PDF 文件。"
    try:
        with Image.open(io.BytesIO(content), formats=[expected]) as probe:
            width, height = probe.size
            if width * height > max_pixels:
                return f"图片像素过多（{width}×{height}），不能超过 {max_pixels} 像素。"
            probe.verify()
        with Image.open(io.BytesIO(content), formats=[expected]) as image:
            image.load()
    except Exception:  # Pillow raises OSError, SyntaxError, ValueError ... for a broken image
        return f"文件以 {expected} 文件头开头，但不是可以打开的图片。"
    return None


def filename_problem(filename: str) -> str | None:
    """A file name with a NUL or another control character (or an unpaired surrogate) is refused whole."""
    for ch in filename:
        if ch == "\x00" or unicodedata.category(ch) in ("Cc", "Cs"):
            return "文件名含有不允许的控制字符。"
    return None


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the real one as RFC 5987 ``filename*`` (UTF-8)."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in filename)
    return f"attachment; filename=\"{fallback or 'document'}\"; filename*=UTF-8''{quote(filename, safe='')}"


logging.getLogger("pypdf").setLevel(logging.ERROR)  # a refused PDF is answered, not logged as a warning


def missing_documents(plan_kind: str, present: set[str]) -> list[str]:
    return [code for code in EXPECTED.get(plan_kind, EXPECTED["banded"]) if code not in present]
