"""``GET /v1/models``: the declared language models and whether each can be used now."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from allo.knowledge.service import KnowledgeBase
from allo.web.dependencies import knowledge

router = APIRouter(prefix="/v1", tags=["models"])


class ModelOut(BaseModel):
    """A declared model: where its data goes, what it costs, whether it answers."""

    name: str
    provider: str
    location: str
    context_length: int
    cost_per_1k_input: float
    cost_per_1k_output: float
    default: bool
    reachable: bool
    detail: str


@router.get("/models", response_model=list[ModelOut])
def list_models(kb: Annotated[KnowledgeBase, Depends(knowledge)]) -> list[ModelOut]:
    """Every declared model (addresses and keys are never shown)."""
    return [
        ModelOut(
            name=status.spec.name,
            provider=str(status.spec.provider),
            location=str(status.spec.location),
            context_length=status.spec.context_length,
            cost_per_1k_input=status.spec.cost_per_1k_input,
            cost_per_1k_output=status.spec.cost_per_1k_output,
            default=status.is_default,
            reachable=status.reachability.reachable,
            detail=status.reachability.detail,
        )
        for status in kb.models.statuses()
    ]
