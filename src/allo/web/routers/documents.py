"""``/v1/documents``: upload, list, read and delete documents.

Reading is open (customers follow citations to the documents); changing the knowledge
base (upload, delete) is for administrators (``X-Admin-Token``), since what it holds is
what the assistants tell customers.
"""

from __future__ import annotations

import os
import tempfile
from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, UploadFile, status

from allo.knowledge.service import KnowledgeBase
from allo.web.auth import require_admin
from allo.web.dependencies import knowledge
from allo.web.schemas import DocumentOut, DocumentPage, UploadResponse
from allo.web.uploads import read_limited, safe_filename

router = APIRouter(prefix="/v1/documents", tags=["documents"])
KB = Annotated[KnowledgeBase, Depends(knowledge)]


@router.post(
    "",
    response_model=UploadResponse,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(require_admin)],
)
async def upload(
    kb: KB, file: Annotated[UploadFile, File(description="The document.")]
) -> UploadResponse:
    """Upload one file (Markdown, HTML, PDF, DOCX, text, JSON lines) and index it.

    Re-uploading a file of the same name replaces its document. Invalid files get a 4xx
    naming the problem, and nothing is stored.
    """
    name = safe_filename(file.filename)
    data = await read_limited(file, kb.settings.max_file_bytes)
    from starlette.concurrency import run_in_threadpool

    report = await run_in_threadpool(kb.ingestor.ingest_bytes, data, name, f"upload/{name}")
    await run_in_threadpool(_keep_copy, kb, name, data)
    return UploadResponse(
        added=len(report.added),
        updated=len(report.updated),
        unchanged=len(report.unchanged),
        chunks=report.chunks,
        documents=[DocumentOut.of(doc) for doc in report.documents],
    )


def _keep_copy(kb: KnowledgeBase, name: str, data: bytes) -> None:
    """Keep the uploaded file under the data folder (atomic write, name already safe)."""
    folder = kb.settings.uploads_dir
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".upload-")
    with os.fdopen(handle, "wb") as out:
        out.write(data)
    os.replace(temporary, folder / name)


@router.get("", response_model=DocumentPage)
def list_documents(
    kb: KB,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> DocumentPage:
    """Documents ordered by title, a page at a time."""
    items = kb.documents(offset=offset, limit=limit)
    return DocumentPage(
        total=kb.store.count_documents(),
        offset=offset,
        limit=limit,
        items=[DocumentOut.of(doc) for doc in items],
    )


@router.get("/{document_id}", response_model=DocumentOut)
def get_document(kb: KB, document_id: str) -> DocumentOut:
    """One document's metadata."""
    document, _ = kb.document(document_id)
    return DocumentOut.of(document)


@router.delete(
    "/{document_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[Depends(require_admin)],
)
def delete_document(kb: KB, document_id: str) -> None:
    """Delete a document and its passages."""
    kb.delete(document_id)
