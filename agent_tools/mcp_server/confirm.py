"""Asking the user to confirm a run's price before spending it (``[mcp] confirm_above_usd``).

Only when the client declared elicitation support: a handshake-era client (2025-11-25 and older)
gets an ``elicitation/create`` request in the middle of the call; a 2026-07-28 client gets an
``InputRequiredResult`` and retries the call with the answer. Clients without elicitation run as
before (their quotas still apply). Declining — or dismissing the form — runs nothing and costs
nothing.
"""

from __future__ import annotations

from typing import Any

import mcp_types as types
from mcp.server import ServerRequestContext
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from ..catalog import ModelSpec, Quote

KEY = "confirm_cost"
"""The input request's key in a 2026-07-28 ``InputRequiredResult``."""


def supported(ctx: ServerRequestContext[Any, Any]) -> bool:
    capabilities = ctx.session.client_capabilities
    return capabilities is not None and capabilities.elicitation is not None


def form(spec: ModelSpec, quote: Quote) -> types.ElicitRequestFormParams:
    name = spec.title.split(" — ")[0]
    return types.ElicitRequestFormParams(
        message=f"Run {name} for {quote.usd} ({quote.formula})? It is charged to your budget if it succeeds.",
        requested_schema={"type": "object", "properties": {"confirm": {
            "type": "boolean", "title": f"Spend {quote.usd}", "default": False}}, "required": ["confirm"]})


def accepted(answer: Any) -> bool:
    return (isinstance(answer, types.ElicitResult) and answer.action == "accept"
            and bool((answer.content or {}).get("confirm")))


async def ask(ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams, spec: ModelSpec,
              quote: Quote) -> bool | types.InputRequiredResult:
    """True to run, False if the user said no, or the ``InputRequiredResult`` to send (2026-07-28)."""
    request = form(spec, quote)
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        answer = (params.input_responses or {}).get(KEY)
        if answer is None:
            return types.InputRequiredResult(input_requests={KEY: types.ElicitRequest(params=request)})
        return accepted(answer)
    answer = await ctx.session.elicit_form(request.message, request.requested_schema,
                                           related_request_id=ctx.request_id)
    return accepted(answer)
