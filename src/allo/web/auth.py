"""Who is calling: shared-secret checks for advisors and admins, API keys for teams.

Secrets come from settings (``ALLO_ADVISOR_TOKEN``, ``ALLO_ADMIN_TOKEN``,
``ALLO_API_KEYS``) and are compared in constant time; a feature whose secret is not
configured answers 503 rather than being open to everyone.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Header, HTTPException, Request
from pydantic import SecretStr

from allo.config import Settings
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


def advisor_name(
    request: Request,
    x_advisor_token: Annotated[str | None, Header()] = None,
    x_advisor_name: Annotated[str | None, Header()] = None,
) -> str:
    """Check the advisor token; the advisor's name (``X-Advisor-Name``, default "conseiller")."""
    check_secret(
        x_advisor_token,
        app_settings(request).advisor_token,
        setting="ALLO_ADVISOR_TOKEN",
        header="X-Advisor-Token",
    )
    return x_advisor_name or "conseiller"


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


def require_noc_operator(
    request: Request, x_noc_token: Annotated[str | None, Header()] = None
) -> None:
    """NOC operators: incidents, their status, silences and maintenance windows.

    A silence hides alarms, so reading or changing any of it needs the operators' secret.
    """
    check_secret(
        x_noc_token,
        app_settings(request).noc_token,
        setting="ALLO_NOC_TOKEN",
        header="X-NOC-Token",
    )


def noc_source_refusal(
    settings: Settings, authorization: str | None, x_noc_token: str | None
) -> HTTPException | None:
    """Why an alarm source is refused, or ``None`` when it may send alarms.

    Sources present ``Authorization: Bearer <ALLO_NOC_INGEST_TOKEN>`` (what Alertmanager's
    ``http_config.authorization`` sends); an operator's ``X-NOC-Token`` may send alarms
    too (test alarms from the console's side), never the other way round: a leaked source
    secret cannot silence anything. Shared by the HTTP routes and the alarm socket.
    """
    ingest, operator = settings.noc_ingest_token, settings.noc_token
    if ingest is None and operator is None:
        return HTTPException(
            503, "alarm ingest not configured: set ALLO_NOC_INGEST_TOKEN on the server"
        )
    scheme, _, presented = (authorization or "").partition(" ")
    if ingest is not None and scheme.lower() == "bearer" and same_secret(presented.strip(), ingest):
        return None
    if operator is not None and same_secret(x_noc_token, operator):
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
