"""Objects the routes need, taken from the application state."""

from __future__ import annotations

from fastapi import Request

from allo.knowledge.service import KnowledgeBase


def knowledge(request: Request) -> KnowledgeBase:
    """The application's knowledge base."""
    kb: KnowledgeBase = request.app.state.knowledge
    return kb
