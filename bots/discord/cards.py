"""Price cards: an expensive run is shown privately with its price, formula and the budget left,
with Run and Cancel, and nothing is reserved until Run.

A card lives in ``discord_cards`` (``records``), so its buttons work after a restart and on any
process; ``BotRecords.take`` flips it from ``open`` in one UPDATE, so a double click (or two
processes) runs it once, and an expired card runs never. Run checks everything again (the budget
may have moved since the card was shown), then the job starts like any other, its progress posted
publicly as a followup; the job's idempotency key is the card's, so a retry cannot pay twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import discord

from agent_tools.errors import UserError
from agent_tools.jobs import Job
from agent_tools.toolkit import Estimate

from . import render, views


class Launcher(Protocol):
    """What a card needs of ``delivery.Deliveries`` (named here: delivery imports this module)."""

    bot: Any

    def operator_arguments(self, tool: str, arguments: Mapping[str, Any]) -> dict[str, Any]: ...

    async def checked(self, interaction: discord.Interaction, tool: str, arguments: Mapping[str, Any]
                      ) -> Estimate: ...

    async def launch(self, interaction: discord.Interaction, tool: str, arguments: Mapping[str, Any],
                     estimate: Estimate, *, note: str | None = None, idempotency_key: str | None = None
                     ) -> Job | None: ...

ASK_CHOICES = ("over-limit", "always", "never")
"""``/settings ask``: above the operator's ``confirm_above_usd`` (default), before every run, or never."""


class Cards:
    def __init__(self, deliveries: Launcher) -> None:
        self.deliveries = deliveries

    @property
    def bot(self) -> Any:
        return self.deliveries.bot

    async def wanted(self, interaction: discord.Interaction, estimate: Estimate) -> bool:
        """Whether to ask before this run: the user's choice, else the operator's threshold."""
        ask = (await self.bot.records.user_settings(interaction.user.id)).get("ask", "over-limit")
        if ask == "always":
            return True
        if ask == "never":
            return False
        return estimate.quote.micros > self.bot.toolkit.settings.discord.confirm_above_micros

    async def ask(self, interaction: discord.Interaction, tool: str, arguments: Mapping[str, Any],
                  estimate: Estimate, note: str | None) -> None:
        """Show the card, privately, as the first response (or a followup after a private defer)."""
        settings = self.bot.toolkit.settings.discord
        card = await self.bot.records.new_card(interaction.user.id, tool, arguments, note, settings.confirm_seconds)
        account = await self.bot.account_for(interaction)
        budget = render.budget_line(await self.bot.toolkit.quota_status(account))
        embed = render.price_card(estimate, budget, card.expires_at)
        view = views.card_view(card.id)
        if interaction.response.is_done():
            await interaction.followup.send(embed=embed, view=view, ephemeral=True)
        else:
            await interaction.response.send_message(embed=embed, view=view, ephemeral=True)

    async def on_click(self, interaction: discord.Interaction, action: str, card_id: str) -> None:
        records = self.bot.records
        card = await records.card(card_id)
        if card is None or card.user_id != str(interaction.user.id):
            await interaction.response.send_message("That price card is not yours, or no longer exists.",
                                                    ephemeral=True)
            return
        if not await records.take(card_id, "run" if action == "run" else "cancelled"):
            current = await records.card(card_id)
            await interaction.response.send_message(render.card_gone(current), ephemeral=True)
            return
        if action != "run":
            await interaction.response.edit_message(content="Cancelled; nothing was reserved or charged.",
                                                    embed=None, view=None)
            return
        try:
            arguments = self.deliveries.operator_arguments(card.tool, card.arguments)
            estimate = await self.deliveries.checked(interaction, card.tool, arguments)
        except UserError:
            await records.reopen(card_id)  # refused before anything was reserved: the card may be run later
            raise
        if not interaction.response.is_done():
            await interaction.response.edit_message(content=f"Started — {estimate.quote.usd} reserved; progress "
                                                            "is posted in the channel.", embed=None, view=None)
        await self.deliveries.launch(interaction, card.tool, arguments, estimate, note=card.note,
                                     idempotency_key=f"discord-card-{card.id}")
