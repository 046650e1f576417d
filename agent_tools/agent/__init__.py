"""Tool execution for LLM agents: the default and compact tool sets as MCP / OpenAI / Anthropic
definitions (``tools``), and ``Executor.call(account, name, arguments)`` running them through the
Toolkit (``executor``), with results worded for a model (``results``). Surfaces render, never decide.
"""
