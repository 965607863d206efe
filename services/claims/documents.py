"""Claim documents (issue 4 §6): photos and PDFs stored outside the database, listed and served per claim.

Only JPEG, PNG and PDF are accepted, recognised by their magic bytes (a renamed file is refused) and then
checked whole: a PDF must parse as a PDF, an image must decode (at most ``CLAIMS_MAX_IMAGE_PIXELS`` pixels,
against decompression bombs); at most ``CLAIMS_MAX_DOCUMENT_BYTES`` (10 MiB); a file name with a NUL or another
control character is refused. Bytes go to ``CLAIMS_DOCUMENTS_DIR/<claim id>/<document id>.<ext>`` only once
the database row has committed: they are written to a temporary file first, renamed into place after the
commit, and removed if the commit fails; the database keeps the metadata and a SHA-256. Downloads are sent as
``attachment`` (RFC 5987 ``filename*``) with ``X-Content-Type-Options: nosniff``. Whoever may read the claim (the member, staff in the member's
branch, finance, admin) may list and download its documents; the member, their unit's agent and reviewers in
the branch may upload.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse
from sqlalchemy import select

from services.claims.domain.documents import (
    DOCUMENT_TYPES,
    content_disposition,
    content_problem,
    document_type,
    filename_problem,
    missing_documents,
    sniff,
)
from services.claims.models import ClaimDocument
from services.claims.queries import plan_kinds
from services.claims.repository import load_claim
from services.claims.schemas import DocumentListOut, DocumentOut
from services.claims.settings import document_settings
from shared.auth import CurrentUser, Principal, require_roles
from shared.deps import SessionDep
from shared.errors import Invalid, NotFound, Problem
from shared.schemas import problem_responses
from shared.vocab import Role

router = APIRouter(prefix="/api/v1", tags=["documents"])
UPLOADERS = (Role.MEMBER, Role.UNIT_AGENT, Role.AGENCY_REVIEWER, Role.OFFICE_REVIEWER, Role.CENTRE_REVIEWER,
             Role.ADMIN)


class TooLarge(Problem):
    status, code, title = 413, "document_too_large", "文件过大"


def document_out(doc: ClaimDocument) -> dict[str, Any]:
    return {"document_id": str(doc.id), "claim_id": str(doc.claim_id), "doc_type": doc.doc_type,
            "doc_type_zh": DOCUMENT_TYPES.get(doc.doc_type, doc.doc_type), "filename": doc.filename,
            "content_type": doc.content_type, "size": doc.size, "sha256": doc.sha256,
            "uploaded_by": doc.uploaded_by, "uploaded_at": doc.uploaded_at.isoformat()}


@router.post("/claims/{claim_id}/documents", status_code=201, response_model=DocumentOut,
             responses=problem_responses(401, 403, 404, 413, 415, 422))
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
    filename = file.filename or ""
    bad_name = filename_problem(filename)
    if bad_name is not None:
        raise Invalid(bad_name, code="document_filename_invalid",
                      errors=[{"loc": ["body", "file", "filename"], "msg": bad_name}])
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
    problem = await asyncio.to_thread(content_problem, content, content_type, settings.max_image_pixels)
    if problem is not None:
        raise Invalid(problem, code="document_content_invalid",
                      errors=[{"loc": ["body", "file"], "msg": problem}])
    doc_id = uuid.uuid4()
    key = f"{claim.id}/{doc_id}.{extension}"
    target = settings.documents_dir / key
    doc = ClaimDocument(id=doc_id, claim_id=claim.id, doc_type=code,
                        filename=Path(filename or f"{code}.{extension}").name[:255], content_type=content_type,
                        size=len(content), sha256=hashlib.sha256(content).hexdigest(), storage_key=key,
                        uploaded_by=actor.username)
    # The file's commit point is the row's: bytes to a temporary file, the row committed, then the rename.
    partial = await asyncio.to_thread(_write_partial, target, content)
    try:
        async with request.app.state.db.transaction() as own:
            own.add(doc)
        await asyncio.to_thread(os.replace, partial, target)
    except BaseException:
        await asyncio.to_thread(partial.unlink, missing_ok=True)
        if not target.exists():  # committed but not renamed: the row goes too, nothing is half-stored
            async with request.app.state.db.transaction() as own:
                stored = await own.get(ClaimDocument, doc_id)
                if stored is not None:
                    await own.delete(stored)
        raise
    return document_out(doc)


def _write_partial(target: Path, content: bytes) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
    with partial.open("wb") as out:
        out.write(content)
        out.flush()
        os.fsync(out.fileno())
    return partial


@router.get("/claims/{claim_id}/documents", response_model=DocumentListOut,
            responses=problem_responses(401, 403, 404, 422))
async def list_documents(claim_id: uuid.UUID, session: SessionDep, actor: CurrentUser) -> dict[str, Any]:
    claim = await load_claim(session, claim_id, actor)
    docs = list((await session.execute(select(ClaimDocument).where(ClaimDocument.claim_id == claim.id)
                                       .order_by(ClaimDocument.uploaded_at))).scalars())
    kinds = await plan_kinds(session, {(claim.period or "", claim.plan)})
    missing = missing_documents(kinds.get((claim.period or "", claim.plan), "banded"), {d.doc_type for d in docs})
    return {"claim_id": str(claim.id), "documents": [document_out(d) for d in docs], "missing_documents": missing,
            "missing_documents_zh": [DOCUMENT_TYPES[m] for m in missing]}


@router.get("/claims/{claim_id}/documents/{document_id}", response_class=FileResponse,
            responses={200: {"content": {t: {"schema": {"type": "string", "format": "binary"}}
                                         for t in ("image/jpeg", "image/png", "application/pdf")},
                             "description": "材料原文件"}, **problem_responses(401, 403, 404, 422)})
async def download_document(claim_id: uuid.UUID, document_id: uuid.UUID, session: SessionDep,
                            actor: CurrentUser) -> FileResponse:
    claim = await load_claim(session, claim_id, actor)
    doc = await session.get(ClaimDocument, document_id)
    if doc is None or doc.claim_id != claim.id:
        raise NotFound("材料不存在。", code="document_not_found")
    path = document_settings().documents_dir / doc.storage_key
    if not path.is_file():
        raise NotFound("材料文件已不在存储中。", code="document_file_missing")
    return FileResponse(path, media_type=doc.content_type, headers={
        "Content-Disposition": content_disposition(doc.filename), "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox"})
