"""The web pages: ask a question, read a cited source."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from allo.knowledge.service import KnowledgeBase
from allo.web.dependencies import knowledge

templates = Jinja2Templates(directory=str(Path(__file__).parent.parent / "templates"))
router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    """The question page (French)."""
    return templates.TemplateResponse(request, "index.html", {})


@router.get("/documents/{document_id}", response_class=HTMLResponse)
def document_page(
    request: Request, document_id: str, kb: Annotated[KnowledgeBase, Depends(knowledge)]
) -> HTMLResponse:
    """A document's passages, each with an anchor that citations link to."""
    document, chunks = kb.document(document_id)
    return templates.TemplateResponse(
        request, "document.html", {"document": document, "chunks": chunks}
    )
