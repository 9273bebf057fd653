"""The gateway's audit log and budgets over HTTP.

``GET /v1/audit`` is for administrators (``X-Admin-Token``). ``GET /v1/usage`` shows a
team where it stands against its budget: administrators see every team, an API key
holder sees its own team only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request

from allo.gateway.audit import MAX_PAGE, Outcome
from allo.gateway.budget import day_start
from allo.knowledge.service import KnowledgeBase
from allo.web.auth import api_caller, app_settings, require_admin, same_secret
from allo.web.dependencies import knowledge

router = APIRouter(prefix="/v1", tags=["gateway"])
KB = Annotated[KnowledgeBase, Depends(knowledge)]


@router.get("/audit", dependencies=[Depends(require_admin)])
def audit_log(
    kb: KB,
    team: str | None = None,
    user: str | None = None,
    model: str | None = None,
    outcome: Outcome | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Model calls, newest first: who, which model, data class, documents, redaction
    counts, tokens, cost, latency and outcome. Never the text of a question or answer."""
    records = kb.gateway.audit.query(
        team=team,
        user=user,
        model=model,
        outcome=outcome,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return {"records": [record.to_json() for record in records], "offset": offset}


@router.get("/usage")
def usage(
    request: Request,
    kb: KB,
    x_admin_token: Annotated[str | None, Header()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    """Tokens used today against the daily budget and requests in the last minute
    against the rate limit, per team."""
    admin = app_settings(request).admin_token
    if admin is not None and same_secret(x_admin_token, admin):
        since = day_start(datetime.fromtimestamp(kb.gateway.clock.now(), UTC))
        teams = [totals.team for totals in kb.gateway.audit.usage_by_team(since)]
        teams += [team for team in kb.settings.gateway.budgets if team not in teams]
    else:
        caller = api_caller(request, authorization)
        if caller is None:
            raise HTTPException(401, "send an API key (Authorization: Bearer) or X-Admin-Token")
        teams = [caller.team]
    return {"teams": [_usage_of(kb, team) for team in sorted(teams)]}


def _usage_of(kb: KnowledgeBase, team: str) -> dict[str, Any]:
    state = kb.gateway.budgets.usage(team)
    return {
        "team": team,
        "tokens_today": state.tokens_today,
        "tokens_per_day": state.limit,
        "tokens_left": state.tokens_left,
        "requests_last_minute": state.requests_last_minute,
        "requests_per_minute": state.rpm_limit,
        "resets_at": state.resets_at.isoformat(),
    }
