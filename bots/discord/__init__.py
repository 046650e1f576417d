"""The Discord surface: slash commands generated from the catalog, over the Toolkit.

``app`` (the bot, start-up, syncing, resuming), ``commands`` (slash commands), ``options`` (schema →
options), ``delivery`` (progress and results), ``views`` (buttons), ``render`` (messages),
``payloads`` (Discord's limits), ``state`` (the bot's own tables), ``chat`` (the chat agent in threads). Run it with ``videogen discord``.
"""
