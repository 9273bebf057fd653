"""The data class of a request: the most sensitive of its documents and its personal data.

Documents carry tags set at ingestion (front matter ``tags:``); the settings name the tags
that make a document confidential or internal. Personal data found in the request
raises the class too: payment and identity numbers (IBAN, card, NIR) make it
confidential, other personal data (names, phones, e-mails, addresses, customer ids)
internal. The class decides which models may receive the request (``policy``).
"""

from __future__ import annotations

from collections.abc import Iterable

from allo.gateway.call import DocumentUse
from allo.gateway.config import DataClass, GatewaySettings

CONFIDENTIAL_PII = frozenset({"IBAN", "CARD", "NIR"})


def document_class(tags: Iterable[str], settings: GatewaySettings) -> DataClass:
    """The class of one document from its tags (case-insensitive)."""
    folded = {tag.casefold() for tag in tags}
    if folded & {tag.casefold() for tag in settings.confidential_tags}:
        return DataClass.CONFIDENTIAL
    if folded & {tag.casefold() for tag in settings.internal_tags}:
        return DataClass.INTERNAL
    return settings.untagged


def pii_class(kinds: Iterable[str]) -> DataClass:
    """The class that the personal data found in a request implies."""
    found = {str(kind).upper() for kind in kinds}
    if found & CONFIDENTIAL_PII:
        return DataClass.CONFIDENTIAL
    if found:
        return DataClass.INTERNAL
    return DataClass.PUBLIC


def classify(
    documents: Iterable[DocumentUse], pii_kinds: Iterable[str], settings: GatewaySettings
) -> DataClass:
    """The most sensitive class among the documents used and the personal data found."""
    classes = [document_class(document.tags, settings) for document in documents]
    classes.append(pii_class(pii_kinds))
    return max(classes, key=lambda data_class: data_class.rank)
