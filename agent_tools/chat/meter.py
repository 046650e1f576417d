"""The agent's own cost: each model call is priced and booked on the ledger like a generation.

Before a call, the Toolkit reserves what it can cost at most — the prompt's tokens (estimated
from its length) at ``[llm] usd_per_mtok_input`` plus ``max_tokens`` at ``usd_per_mtok_output`` —
under the tool name ``llm:<model>``; a user past their budget is refused before anything is sent.
After the call the hold settles at the tokens the server reports; with no usage report but part
of an answer received, at the estimate (never 0); a call that failed before any answer is
released. These holds count against spend caps only, not as jobs (``totals.TOKEN_PREFIX``).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from ..config import LlmSettings
from ..ledger import Reservation
from ..totals import TOKEN_PREFIX
from ..toolkit import Account, Toolkit
from .llm import Usage

CHARS_PER_TOKEN = 3
"""A cautious guess for the prompt estimate (English text is about 4 characters per token)."""


def token_cost_micros(settings: LlmSettings, usage: Usage) -> int:
    """Micro-dollars for ``usage``: USD per million tokens is exactly micro-dollars per token."""
    exact = (Decimal(usage.input_tokens) * settings.usd_per_mtok_input
             + Decimal(usage.output_tokens) * settings.usd_per_mtok_output)
    return math.ceil(exact)


def estimate_usage(settings: LlmSettings, messages: Sequence[dict[str, Any]],
                   tools: Sequence[dict[str, Any]] | None) -> Usage:
    size = len(json.dumps(list(messages), ensure_ascii=False)) + len(json.dumps(list(tools or ()), ensure_ascii=False))
    return Usage(math.ceil(size / CHARS_PER_TOKEN), settings.max_tokens)


class TokenMeter:
    def __init__(self, toolkit: Toolkit, settings: LlmSettings) -> None:
        self.toolkit = toolkit
        self.settings = settings
        self.tool = f"{TOKEN_PREFIX}{settings.model}"

    async def reserve(self, account: Account, messages: Sequence[dict[str, Any]],
                      tools: Sequence[dict[str, Any]] | None) -> Reservation:
        """Hold the most this call can cost; ``QuotaExceeded`` (nothing sent) if the budget can't."""
        estimate = token_cost_micros(self.settings, estimate_usage(self.settings, messages, tools))
        return await self.toolkit.reserve_charge(account, estimate, f"{self.tool}:{uuid.uuid4().hex}",
                                                 tool=self.tool, what="This chat reply")

    async def settle(self, hold: Reservation, usage: Usage | None, *, partial: bool = True) -> int:
        """Charge what was used; returns the micro-dollars charged."""
        if usage is not None:
            charged = token_cost_micros(self.settings, usage)
            detail = f"{usage.input_tokens} prompt + {usage.output_tokens} completion tokens"
        elif partial:
            charged, detail = hold.estimate_micros, "no usage reported: charged the estimate"
        else:
            await self.toolkit.release_charge(hold.hold_id, detail="the model call failed before any answer")
            return 0
        await self.toolkit.settle_charge(hold.hold_id, charged, detail=detail)
        return charged
