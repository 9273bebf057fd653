"""How models, data policy and budgets are declared in settings (``ALLO_GATEWAY__*``).

Models are a JSON list in ``ALLO_GATEWAY__MODELS``; API keys are never written in the
settings, only the *name* of the environment variable that holds them.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, Field, field_validator, model_validator


class ProviderKind(StrEnum):
    """Which code talks to the model."""

    EXTRACTIVE = "extractive"  # no model: sentences taken from the passages
    LOCAL = "local"  # llama.cpp in process, a GGUF file
    OPENAI = "openai"  # any OpenAI-compatible server: OpenAI, vLLM, Ollama, llama.cpp, Mistral
    ANTHROPIC = "anthropic"


class DataLocation(StrEnum):
    """Where a request's data goes when this model serves it.

    ``local``: this machine; ``sovereign``: a host the operator controls or trusts under
    its own jurisdiction (an in-house vLLM, a sovereign cloud); ``external``: a third
    party's cloud (OpenAI, Anthropic...). PII is redacted before anything goes external.
    """

    LOCAL = "local"
    SOVEREIGN = "sovereign"
    EXTERNAL = "external"


class DataClass(StrEnum):
    """How sensitive a request's data is, from its documents' tags and the PII in it."""

    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"

    @property
    def rank(self) -> int:
        """Order of sensitivity: public < internal < confidential."""
        return _RANK[self]


_RANK = {DataClass.PUBLIC: 0, DataClass.INTERNAL: 1, DataClass.CONFIDENTIAL: 2}

PACKAGED_MODELS = ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")


class ModelSpec(BaseModel):
    """One model the gateway may call, and what calling it means for data and cost."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
    provider: ProviderKind
    model: str = Field(default="", description="The provider's own model id (API providers).")
    location: DataLocation = DataLocation.LOCAL
    context_length: int = Field(default=4096, ge=256)
    cost_per_1k_input: float = Field(default=0.0, ge=0.0, description="Currency units.")
    cost_per_1k_output: float = Field(default=0.0, ge=0.0)
    base_url: str | None = None
    api_key_env: str | None = Field(
        default=None, description="Name of the environment variable holding the API key."
    )
    gguf_path: Path | None = None
    packaged: str | None = Field(
        default=None, description=f"A GGUF installed by an extra: one of {PACKAGED_MODELS}."
    )
    threads: int | None = Field(default=None, ge=1, le=256)
    timeout_s: float = Field(default=60.0, gt=0.0, le=3600.0)
    max_retries: int = Field(default=1, ge=0, le=5)
    max_output_tokens: int = Field(default=400, ge=1, le=8192)

    @field_validator("packaged")
    @classmethod
    def _known_package(cls, value: str | None) -> str | None:
        if value is not None and value not in PACKAGED_MODELS:
            raise ValueError(f"packaged must be one of {', '.join(PACKAGED_MODELS)}")
        return value

    @model_validator(mode="after")
    def _complete(self) -> ModelSpec:
        if self.provider is ProviderKind.LOCAL and (self.gguf_path is None) == (
            self.packaged is None
        ):
            raise ValueError(f"model {self.name!r}: a local model needs gguf_path or packaged")
        if self.provider in (ProviderKind.OPENAI, ProviderKind.ANTHROPIC) and not self.model:
            raise ValueError(f"model {self.name!r}: give the provider's model id in 'model'")
        if self.provider is ProviderKind.OPENAI and not self.base_url:
            raise ValueError(
                f"model {self.name!r}: an OpenAI-compatible model needs base_url "
                "(https://api.openai.com/v1 for OpenAI itself)"
            )
        if self.provider in (ProviderKind.EXTRACTIVE, ProviderKind.LOCAL) and (
            self.location is not DataLocation.LOCAL
        ):
            raise ValueError(f"model {self.name!r}: {self.provider} models run locally")
        return self


class TeamBudget(BaseModel):
    """Limits for one team; ``None`` means unlimited."""

    tokens_per_day: int | None = Field(default=None, ge=0)
    requests_per_minute: int | None = Field(default=None, ge=0)


def _default_models() -> list[ModelSpec]:
    return [
        ModelSpec(name="extractive", provider=ProviderKind.EXTRACTIVE),
        ModelSpec(
            name="qwen-0.5b",
            provider=ProviderKind.LOCAL,
            packaged="qwen2.5-coder-0.5b",
            context_length=4096,
        ),
        ModelSpec(
            name="qwen-1.5b",
            provider=ProviderKind.LOCAL,
            packaged="qwen2.5-coder-1.5b",
            context_length=4096,
        ),
    ]


def _default_policy() -> dict[DataClass, list[DataLocation]]:
    return {
        DataClass.PUBLIC: [DataLocation.LOCAL, DataLocation.SOVEREIGN, DataLocation.EXTERNAL],
        DataClass.INTERNAL: [DataLocation.LOCAL, DataLocation.SOVEREIGN, DataLocation.EXTERNAL],
        DataClass.CONFIDENTIAL: [DataLocation.LOCAL, DataLocation.SOVEREIGN],
    }


class GatewaySettings(BaseModel):
    """Models, routing policy and budgets of the model gateway."""

    models: list[ModelSpec] = Field(default_factory=_default_models)
    default_model: str = "extractive"
    fallbacks: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Model name -> models to try next, in order, when it fails or may not "
        "receive the data. The extractive answer is always the last resort.",
    )
    policy: dict[DataClass, list[DataLocation]] = Field(
        default_factory=_default_policy,
        description="Which model locations may receive each data class.",
    )
    confidential_tags: list[str] = Field(default_factory=lambda: ["confidentiel", "confidential"])
    internal_tags: list[str] = Field(default_factory=lambda: ["interne", "internal"])
    untagged: DataClass = Field(
        default=DataClass.PUBLIC, description="Class of documents with none of the tags above."
    )
    budgets: dict[str, TeamBudget] = Field(default_factory=dict)
    default_budget: TeamBudget = TeamBudget()

    @model_validator(mode="after")
    def _consistent(self) -> GatewaySettings:
        names = [spec.name for spec in self.models]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"model names must be unique; repeated: {', '.join(duplicates)}")
        known = set(names)
        if self.default_model not in known:
            raise ValueError(f"default_model {self.default_model!r} is not among the models")
        for source, targets in self.fallbacks.items():
            for name in [source, *targets]:
                if name not in known:
                    raise ValueError(f"fallbacks name an unknown model {name!r}")
        for data_class in DataClass:
            self.policy.setdefault(data_class, [])
        return self

    def spec(self, name: str) -> ModelSpec | None:
        """The declared model called ``name``, if any."""
        return next((spec for spec in self.models if spec.name == name), None)

    def budget_of(self, team: str) -> TeamBudget:
        """The limits that apply to ``team``."""
        return self.budgets.get(team, self.default_budget)
