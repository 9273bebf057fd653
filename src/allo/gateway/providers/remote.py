"""What the HTTP API providers share: keys, token estimates, error mapping, deadlines.

Token estimates. OpenAI's and Anthropic's tokenizers are not usable offline (tiktoken
downloads its tables; Anthropic publishes none) and asking the API would cost a round
trip per budget check, so remote providers estimate. The estimate leans high on
purpose: it refuses prompts longer than the context and charges team budgets before
the call, where counting too few is the worse error. Measured with Qwen2.5's tokenizer
(what a vLLM or llama.cpp server behind this provider often runs), French text takes
3.3 to 3.5 characters per token at the median (demo knowledge base, PIAF paragraphs)
and 2.9 at the first percentile; the larger vocabularies of OpenAI's and Anthropic's
tokenizers need fewer tokens. One token per ``CHARS_PER_TOKEN`` = 3 characters, plus a
few per message for the chat template, is therefore high for nearly every prompt (the
same rule as ``allo.knowledge.grounded.prompt.estimate_tokens``). The provider's own
count, when a response carries one, replaces it.

Errors. Both official SDKs raise the same shapes (a timeout, a connection error, an
HTTP status with a body); ``status_error`` turns a status into Allo's tree so that the
gateway knows whether to retry, fall back or tell the operator to fix a setting.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Mapping

from allo.errors import AlloError, ConfigError, InvalidInputError, ModelError, ModelTimeoutError
from allo.gateway.config import ModelSpec
from allo.gateway.protocol import ChatMessage, ChatRequest

CHARS_PER_TOKEN = 3.0
TOKENS_PER_MESSAGE = 4
TOKENS_FOR_REPLY = 3
CHECK_TIMEOUT_S = 5.0

# A provider's error message is shown only if it does not quote the request: a window of
# this many characters found in both means it does, and the message is withheld.
_QUOTE_WINDOW = 24
_DETAIL_CHARS = 200

# 429 codes that mean "the money is spent", not "slow down": retrying will not help.
_SPENT_CODES = frozenset(
    {"insufficient_quota", "enforced_spend_limit_reached", "contract_spend_limit_reached"}
)


def estimate_text_tokens(text: str) -> int:
    """Tokens ``text`` takes, estimated from its length (0 for an empty text)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0


def estimate_chat_tokens(messages: Iterable[ChatMessage]) -> int:
    """Tokens a chat prompt made of ``messages`` takes, estimated (see the module doc)."""
    total = TOKENS_FOR_REPLY
    for message in messages:
        total += TOKENS_PER_MESSAGE + estimate_text_tokens(message.content)
    return total


def read_api_key(spec: ModelSpec) -> str | None:
    """The API key from the environment variable ``spec.api_key_env`` names.

    ``None`` when the spec names no variable (a local server that wants no key);
    ``ConfigError`` when it names one that is unset or empty.
    """
    if spec.api_key_env is None:
        return None
    key = os.environ.get(spec.api_key_env, "").strip()
    if not key:
        raise ConfigError(
            f"model {spec.name!r} needs an API key: set the environment variable "
            f"{spec.api_key_env} (settings only name the variable, never the key)"
        )
    return key


def safe_detail(detail: object, request: ChatRequest | None) -> str:
    """A provider's error message, shortened, or withheld if it quotes the request.

    Providers sometimes echo part of the input in validation errors; Allo's messages and
    logs must never carry request text (it may hold personal data).
    """
    if not isinstance(detail, str) or not detail.strip():
        return "no detail"
    text = " ".join(detail.split())[:_DETAIL_CHARS]
    if request is not None:
        contents = [message.content for message in request.messages]
        for start in range(max(1, len(text) - _QUOTE_WINDOW + 1)):
            window = text[start : start + _QUOTE_WINDOW]
            if len(window) == _QUOTE_WINDOW and any(window in content for content in contents):
                return "detail withheld: it quotes the request"
    return text


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The delay a ``Retry-After`` (or ``retry-after-ms``) header asks for, if any."""
    milliseconds = headers.get("retry-after-ms")
    seconds = headers.get("retry-after")
    try:
        if milliseconds is not None:
            return max(0.0, float(milliseconds) / 1000.0)
        if seconds is not None:
            return max(0.0, float(seconds))
    except ValueError:
        return None  # an HTTP date: rare from these APIs, and the gateway backs off anyway
    return None


def status_error(
    spec: ModelSpec,
    label: str,
    status: int,
    *,
    detail: str,
    code: str | None = None,
    retry_after: float | None = None,
) -> AlloError:
    """The Allo error for an HTTP error status from ``label`` (the provider's name)."""
    where = f"{label} (HTTP {status}: {detail})"
    if status in (400, 413, 422):
        return InvalidInputError(
            f"{where} refused the request for model {spec.name!r} as invalid; retrying "
            "will not help: shorten the prompt or the documents, or lower max_tokens"
        )
    if status == 401:
        # No provider detail here: some echo a masked part of the key.
        key = spec.api_key_env or "the key variable"
        return ConfigError(f"{label} (HTTP 401) refused the API key: check the key in {key}")
    if status == 403:
        return ConfigError(
            f"{where} does not let this API key use model {spec.model!r}: check the "
            "key's permissions or choose another model"
        )
    if status == 404:
        return ConfigError(
            f"{where} does not serve model {spec.model!r}: check 'model' and base_url "
            f"of {spec.name!r}"
        )
    if status == 408:
        return ModelTimeoutError(f"{where} timed out serving {spec.name!r}; try again")
    if status == 402 or (status == 429 and code in _SPENT_CODES):
        return ModelError(
            f"{where}: the account's quota or spend limit is reached; add credit, raise the "
            "limit or use another model",
            retryable=False,
        )
    if status == 429:
        wait = f" in {retry_after:g} s" if retry_after is not None else " later"
        return ModelError(f"{where} rate-limited {spec.name!r}: try again{wait}", retryable=True)
    if status == 529:
        return ModelError(f"{where} is overloaded: try again shortly", retryable=True)
    if status == 409 or status >= 500:
        return ModelError(
            f"{where} failed serving {spec.name!r}: a server-side error, try again",
            retryable=True,
        )
    return ModelError(
        f"{where} refused the request for {spec.name!r}; check the model's settings",
        retryable=False,
    )


class Deadline:
    """A point in time after which a call must stop, for streams read piece by piece.

    An SDK's HTTP timeout bounds each read, not the whole answer: a server that trickles
    one token a second would never time out. Streams check this between events.
    """

    def __init__(self, seconds: float, label: str) -> None:
        self.seconds = seconds
        self.label = label
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left (may be negative)."""
        return self._end - time.monotonic()

    def check(self) -> None:
        """Raise ``ModelTimeoutError`` if the deadline has passed."""
        if time.monotonic() > self._end:
            raise ModelTimeoutError(
                f"{self.label} did not finish within {self.seconds:g} s; try again, raise "
                "timeout_s or ask for fewer tokens"
            )
