"""``POST /v1/ask``: a cited answer from the knowledge base."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from allo.knowledge.service import KnowledgeBase
from allo.web.dependencies import knowledge
from allo.web.schemas import AskRequest, AskResponse

router = APIRouter(prefix="/v1", tags=["answers"])


@router.post("/ask", response_model=AskResponse)
def ask(body: AskRequest, kb: Annotated[KnowledgeBase, Depends(knowledge)]) -> AskResponse:
    """Answer from the documents only, with numbered citations, or abstain.

    ``abstained`` is true when nothing relevant enough was found: the answer then says
    so and offers an advisor, in the question's language.
    """
    return AskResponse.of(kb.ask(body.question, body.mode, body.lang))
