"""Personal data in French text: found, replaced by placeholders, put back.

``PiiDetector`` finds phone numbers, e-mails, IBANs, NIRs, card numbers, our customer
and contract ids, postal addresses and names; ``Redactor`` replaces them by
placeholders (``[TEL_1]``) before a text leaves for an external model and restores
them in the answer, streamed or not. ``allo.gateway.pii.evaluation`` scores the
detector on a labelled set; ``allo.gateway.pii.recognizers`` holds the presidio
recognizers and the checksums (importing it imports presidio; this package does not).
"""

from allo.gateway.pii.detector import (
    DEFAULT_MAX_CHARS,
    STRUCTURED_KINDS,
    Finding,
    PiiDetector,
    PiiKind,
)
from allo.gateway.pii.redaction import (
    LABELS,
    Redaction,
    RedactionSession,
    Redactor,
    StreamingRestorer,
)

__all__ = [
    "DEFAULT_MAX_CHARS",
    "LABELS",
    "STRUCTURED_KINDS",
    "Finding",
    "PiiDetector",
    "PiiKind",
    "Redaction",
    "RedactionSession",
    "Redactor",
    "StreamingRestorer",
]
