"""The chat agent: a language model (any OpenAI-compatible endpoint) that picks a model, prices it,
asks, generates and delivers, through the agent tools and within the user's own quota. A shared
agent-loop layer: it imports only the core, and the surfaces (``videogen chat``, the bot) import it.
"""
