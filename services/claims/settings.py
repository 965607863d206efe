"""Claims' own settings beyond shared.settings.ClaimsSettings: where claim documents are stored."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class DocumentSettings(BaseSettings):
    """``CLAIMS_DOCUMENTS_DIR``: a folder outside the database for uploaded photos and PDFs."""

    model_config = SettingsConfigDict(env_prefix="CLAIMS_", extra="ignore")
    documents_dir: Path = Path(".localstack/documents")
    max_document_bytes: int = 10 * 1024 * 1024
    max_image_pixels: int = 40_000_000  # decompression bombs: a photo claiming more pixels is refused unread


def document_settings() -> DocumentSettings:
    return DocumentSettings()
