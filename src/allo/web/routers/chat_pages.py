"""The chat pages: a demo page embedding the widget, and the advisor desk (French)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

templates = Jinja2Templates(directory=str(Path(__file__).parent.parent / "templates"))
router = APIRouter(include_in_schema=False)


@router.get("/chat", response_class=HTMLResponse)
def chat_demo(request: Request) -> HTMLResponse:
    """A page that embeds the chat widget with its one script tag."""
    origin = str(request.base_url).rstrip("/")
    return templates.TemplateResponse(request, "chat.html", {"origin": origin})


@router.get("/advisor", response_class=HTMLResponse)
def advisor_desk(request: Request) -> HTMLResponse:
    """The advisor page: the queue with summaries, take a conversation, reply."""
    return templates.TemplateResponse(request, "advisor.html", {})
