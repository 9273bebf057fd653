"""Who is calling: shared-secret checks for advisors and admins, API keys for teams.

Secrets come from settings (``ALLO_ADVISOR_TOKEN``, ``ALLO_ADMIN_TOKEN``,
``ALLO_ADVISORS``, ``ALLO_API_KEYS``, the NOC's ``ALLO_NOC_TOKEN``, ``ALLO_NOC_OPERATORS`` and
``ALLO_NOC_INGEST_TOKEN``) and are compared in constant time; a feature whose secret is not
configured answers 503 rather than being open to everyone.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Annotated
from urllib.parse import unquote

from fastapi import Header, HTTPException, Request
from pydantic import SecretStr

from allo.config import PersonalSecret, Settings
from allo.gateway.call import Caller

ANONYMOUS = Caller(user="anonymous", team="public")


def app_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


def same_secret(presented: str | None, expected: SecretStr) -> bool:
    """Constant-time comparison of a presented secret with the configured one."""
    if not presented:
        return False
    return hmac.compare_digest(
        presented.encode("utf-8", "replace"), expected.get_secret_value().encode("utf-8")
    )


def check_secret(
    presented: str | None, expected: SecretStr | None, *, setting: str, header: str
) -> None:
    """503 when the secret is not configured, 401 when it is missing or wrong."""
    if expected is None:
        raise HTTPException(503, f"access not configured: set {setting} on the server")
    if not same_secret(presented, expected):
        raise HTTPException(401, f"missing or wrong {header} header")


def personal_holder(
    presented: str | None, shared: SecretStr | None, personal: Sequence[PersonalSecret]
) -> tuple[bool, str | None]:
    """Whether ``presented`` is the ``shared`` secret or one of the ``personal`` ones, and
    the holder's name when it is personal."""
    # every secret is compared, so the time taken does not tell which one matched
    named = [p.name for p in personal if same_secret(presented, p.token)]
    is_shared = shared is not None and same_secret(presented, shared)
    return (bool(named) or is_shared, named[0] if named else None)


def holder_of(
    presented: str | None,
    shared: SecretStr | None,
    personal: Sequence[PersonalSecret],
    *,
    setting: str,
    credential: str,
) -> str | None:
    """Who holds ``presented``: the name of a personal secret, ``None`` for the shared one;
    503 when neither kind is configured, 401 when it matches none (``credential`` names
    what was presented, e.g. "X-NOC-Token header")."""
    if shared is None and not personal:
        raise HTTPException(503, f"access not configured: set {setting} on the server")
    known, name = personal_holder(presented, shared, personal)
    if not known:
        raise HTTPException(401, f"missing or wrong {credential}")
    return name


def advisor_name(
    request: Request,
    x_advisor_token: Annotated[str | None, Header()] = None,
    x_advisor_name: Annotated[str | None, Header()] = None,
) -> str:
    """Check the advisor's secret; their name: the holder of a personal secret
    (``ALLO_ADVISORS``), else ``X-Advisor-Name`` (default "conseiller") for the shared one.

    The name header is percent-encoded UTF-8 (``%C5%81ukasz``): browsers refuse to send
    a header outside Latin-1, so the desk encodes it and this decodes it."""
    settings = app_settings(request)
    name = holder_of(
        x_advisor_token,
        settings.advisor_token,
        settings.advisors,
        setting="ALLO_ADVISOR_TOKEN or ALLO_ADVISORS",
        credential="X-Advisor-Token header",
    )
    return name if name is not None else (unquote(x_advisor_name or "") or "conseiller")


def require_admin(request: Request, x_admin_token: Annotated[str | None, Header()] = None) -> None:
    """Administrators only: the audit log, and changing the knowledge base."""
    check_secret(
        x_admin_token,
        app_settings(request).admin_token,
        setting="ALLO_ADMIN_TOKEN",
        header="X-Admin-Token",
    )


def api_caller(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Caller | None:
    """The caller named by a ``Bearer`` API key; ``None`` without a header.

    A header with an unknown key is refused (401) rather than treated as anonymous.
    """
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "Authorization must be 'Bearer <API key>'")
    for key in app_settings(request).api_keys:
        if same_secret(token.strip(), key.token):
            return Caller(user=key.user, team=key.team)
    raise HTTPException(401, "unknown API key")


def noc_operator_name(settings: Settings, x_noc_token: str | None) -> str | None:
    """The operator holding ``x_noc_token``: their name for a personal secret, ``None``
    for the shared one; 401 for any other value, 503 when no NOC secret is configured."""
    return holder_of(
        x_noc_token,
        settings.noc_token,
        settings.noc_operators,
        setting="ALLO_NOC_TOKEN or ALLO_NOC_OPERATORS",
        credential="X-NOC-Token header",
    )


def require_noc_operator(
    request: Request, x_noc_token: Annotated[str | None, Header()] = None
) -> str | None:
    """NOC operators: incidents, their status, silences and maintenance windows.

    A silence hides alarms, so reading or changing any of it needs an operator's secret.
    Returns the operator's name when the secret is personal (see :func:`noc_operator_name`).
    """
    return noc_operator_name(app_settings(request), x_noc_token)


def recorded_author(operator: str | None, typed: str) -> str:
    """Who an action is recorded under: the signed-in operator's name when their secret is
    personal (a typed name cannot override it), else what the caller typed."""
    return typed if operator is None else operator


def noc_source_refusal(
    settings: Settings, authorization: str | None, x_noc_token: str | None
) -> HTTPException | None:
    """Why an alarm source is refused, or ``None`` when it may send alarms.

    Sources present ``Authorization: Bearer <ALLO_NOC_INGEST_TOKEN>`` (what Alertmanager's
    ``http_config.authorization`` sends); an operator's ``X-NOC-Token`` may send alarms
    too (test alarms from the console's side), never the other way round: a leaked source
    secret cannot silence anything. Shared by the HTTP routes and the alarm socket.
    """
    ingest = settings.noc_ingest_token
    if ingest is None and settings.noc_token is None and not settings.noc_operators:
        return HTTPException(
            503, "alarm ingest not configured: set ALLO_NOC_INGEST_TOKEN on the server"
        )
    scheme, _, presented = (authorization or "").partition(" ")
    if ingest is not None and scheme.lower() == "bearer" and same_secret(presented.strip(), ingest):
        return None
    if personal_holder(x_noc_token, settings.noc_token, settings.noc_operators)[0]:
        return None
    return HTTPException(
        401, "missing or wrong 'Authorization: Bearer <ingest token>' (or X-NOC-Token) header"
    )


def require_noc_source(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_noc_token: Annotated[str | None, Header()] = None,
) -> None:
    """Alarm sources (HTTP): see :func:`noc_source_refusal`."""
    refusal = noc_source_refusal(app_settings(request), authorization, x_noc_token)
    if refusal is not None:
        raise refusal
