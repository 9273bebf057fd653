"""The one exception tree of Allo.

Callers can tell *their* mistakes (bad input, bad configuration: fix and retry) from
runtime failures (a dependency down: ``retryable`` says whether trying again can help)::

    AlloError
    ├── UserError                 the caller must change something
    │   ├── ConfigError           settings invalid or a model file missing
    │   ├── InvalidInputError     a request or a file Allo cannot accept
    │   │   ├── UnsupportedFormatError
    │   │   ├── FileTooLargeError
    │   │   ├── EmptyDocumentError
    │   │   ├── CorruptFileError
    │   │   └── UnsafePathError
    │   ├── NotFoundError         an unknown id
    │   ├── PolicyRefusal         no model allowed for this data can serve the request
    │   └── BudgetExceededError   the team's token budget for the period is spent
    └── RuntimeFailure            something outside the caller's control failed
        ├── StorageError
        ├── ModelError            a model or provider failed (``retryable`` says if worth retrying)
        │   └── ModelTimeoutError
        └── RateLimitedError      too many requests for now (``retry_after`` seconds)

Every message says what is wrong *and* what to do about it.
"""

from __future__ import annotations


class AlloError(Exception):
    """Base of every error raised on purpose by Allo."""


class UserError(AlloError):
    """The caller's mistake: retrying the same thing will fail the same way."""


class ConfigError(UserError):
    """Invalid settings, or a model or file the configuration points to is missing."""


class InvalidInputError(UserError):
    """A request, a file or a value that Allo cannot accept as it is."""


class UnsupportedFormatError(InvalidInputError):
    """A file type that no parser handles."""


class FileTooLargeError(InvalidInputError):
    """A file or upload over the configured size limit."""


class EmptyDocumentError(InvalidInputError):
    """A file with no text to index."""


class CorruptFileError(InvalidInputError):
    """A file that claims a format but cannot be read as such (or is encrypted)."""


class UnsafePathError(InvalidInputError):
    """A user-supplied name that would escape the data folder."""


class NotFoundError(UserError):
    """An id that does not exist (or that the caller may not see)."""


class PolicyRefusal(UserError):  # noqa: N818 - a refusal, not a crash
    """The data in a request may not reach any model that could serve it.

    Raised instead of silently sending confidential data to a model the policy forbids;
    the message names the data class and the kinds of model that would be allowed.
    """


class BudgetExceededError(UserError):
    """The team's token budget for the current period is spent."""


class RuntimeFailure(AlloError):  # noqa: N818 - paired with UserError by design
    """A failure outside the caller's control.

    ``retryable`` tells whether the same call may succeed later (a server restarting)
    or not (a database file that is not a database).
    """

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class StorageError(RuntimeFailure):
    """The store could not be read or written."""


class EngineBusyError(RuntimeFailure):
    """Another process runs the engine of this NOC stream (see :mod:`allo.noc.owner`)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


class BrokerError(RuntimeFailure):
    """The stream broker is unreachable, refuses us, or is in a state we cannot use."""


class ModelError(RuntimeFailure):
    """A model could not be loaded or run."""


class ModelTimeoutError(ModelError):
    """A model did not answer in time; trying again (or another model) may help."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


class RateLimitedError(RuntimeFailure):
    """Too many requests in the current window; ``retry_after`` says when to try again."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, retryable=True)
        self.retry_after = retry_after
