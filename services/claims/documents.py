"""Claim documents (issue 4 §6): photos and PDFs stored outside the database, listed and served per claim.

Only JPEG, PNG and PDF are accepted, recognised by their magic bytes (a renamed file is refused), at most
``CLAIMS_MAX_DOCUMENT_BYTES`` (10 MiB). Bytes go to ``CLAIMS_DOCUMENTS_DIR/<claim id>/<document id>.<ext>``;
the database keeps the metadata and a SHA-256. Whoever may read the claim (the member, staff in the member's
branch, finance, admin) may list and download its documents; the member, their unit's agent and reviewers in
the branch may upload.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse
from sqlalchemy import select

from services.claims.api import load_claim, plan_kinds
from services.claims.domain.documents import DOCUMENT_TYPES, document_type, missing_documents, sniff
from services.claims.models import ClaimDocument
from services.claims.settings import document_settings
from shared.auth import CurrentUser, Principal, require_roles
from shared.deps import SessionDep
from shared.errors import Invalid, NotFound, Problem

router = APIRouter(prefix="/api/v1", tags=["documents"])
UPLOADERS = ("member", "unit_agent", "agency_reviewer", "office_reviewer", "centre_reviewer", "admin")


class TooLarge(Problem):
    status, code, title = 413, "document_too_large", "文件过大"


def document_out(doc: ClaimDocument) -> dict[str, Any]:
    return {"document_id": str(doc.id), "claim_id": str(doc.claim_id), "doc_type": doc.doc_type,
            "doc_type_zh": DOCUMENT_TYPES.get(doc.doc_type, doc.doc_type), "filename": doc.filename,
            "content_type": doc.content_type, "size": doc.size, "sha256": doc.sha256,
            "uploaded_by": doc.uploaded_by, "uploaded_at": doc.uploaded_at.isoformat()}


@router.post("/claims/{claim_id}/documents", status_code=201)
async def upload_document(request: Request, claim_id: uuid.UUID, session: SessionDep,
                          actor: Annotated[Principal, require_roles(*UPLOADERS)],
                          file: Annotated[UploadFile, File()],
                          doc_type: Annotated[str, Form(max_length=40)]) -> dict[str, Any]:
    claim = await load_claim(session, claim_id, actor)
    code = document_type(doc_type)
    if code is None:
        raise Invalid(f"不认识的材料类型：{doc_type}。", code="document_type_unknown",
                      errors=[{"loc": ["body", "doc_type"], "msg": "可选：" + "、".join(DOCUMENT_TYPES.values())}])
    settings = document_settings()
    content = await file.read(settings.max_document_bytes + 1)
    if len(content) > settings.max_document_bytes:
        raise TooLarge(f"文件不能超过 {settings.max_document_bytes // (1024 * 1024)} MiB。",
                       errors=[{"loc": ["body", "file"], "msg": "文件过大"}])
    if not content:
        raise Invalid("文件为空。", code="document_empty", errors=[{"loc": ["body", "file"], "msg": "文件为空"}])
    sniffed = sniff(content[:16])
    if sniffed is None:
        raise Invalid("只接受 JPEG、PNG 照片或 PDF 文件。", code="document_type_not_allowed",
                      errors=[{"loc": ["body", "file"], "msg": "只接受 JPEG、PNG 或 PDF"}])
    content_type, extension = sniffed
    doc_id = uuid.uuid4()
    key = f"{claim.id}/{doc_id}.{extension}"
    target = settings.documents_dir / key
    await asyncio.to_thread(_write, target, content)
    doc = ClaimDocument(id=doc_id, claim_id=claim.id, doc_type=code,
                        filename=Path(file.filename or f"{code}.{extension}").name[:255], content_type=content_type,
                        size=len(content), sha256=hashlib.sha256(content).hexdigest(), storage_key=key,
                        uploaded_by=actor.username)
    session.add(doc)
    await session.flush()
    return document_out(doc)


def _write(target: Path, content: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".part")
    partial.write_bytes(content)
    partial.replace(target)


@router.get("/claims/{claim_id}/documents")
async def list_documents(claim_id: uuid.UUID, session: SessionDep, actor: CurrentUser) -> dict[str, Any]:
    claim = await load_claim(session, claim_id, actor)
    docs = list((await session.execute(select(ClaimDocument).where(ClaimDocument.claim_id == claim.id)
                                       .order_by(ClaimDocument.uploaded_at))).scalars())
    kinds = await plan_kinds(session, {(claim.period or "", claim.plan)})
    missing = missing_documents(kinds.get((claim.period or "", claim.plan), "banded"), {d.doc_type for d in docs})
    return {"claim_id": str(claim.id), "documents": [document_out(d) for d in docs], "missing_documents": missing,
            "missing_documents_zh": [DOCUMENT_TYPES[m] for m in missing]}


@router.get("/claims/{claim_id}/documents/{document_id}")
async def download_document(claim_id: uuid.UUID, document_id: uuid.UUID, session: SessionDep,
                            actor: CurrentUser) -> FileResponse:
    claim = await load_claim(session, claim_id, actor)
    doc = await session.get(ClaimDocument, document_id)
    if doc is None or doc.claim_id != claim.id:
        raise NotFound("材料不存在。", code="document_not_found")
    path = document_settings().documents_dir / doc.storage_key
    if not path.is_file():
        raise NotFound("材料文件已不在存储中。", code="document_file_missing")
    return FileResponse(path, media_type=doc.content_type, filename=doc.filename)
