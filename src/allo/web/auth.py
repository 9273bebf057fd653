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
    """Only administrators read the audit log."""
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
