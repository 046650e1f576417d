"""Tool execution for LLM agents: the default and compact tool sets as MCP / OpenAI / Anthropic
definitions (``tools``), and ``Executor.call(account, name, arguments)`` running them through the
Toolkit (``executor``), with results worded for a model (``results``). Surfaces render, never decide.
"""

from typing import Literal

# Here rather than in ``tools`` so that ``videogen`` can offer the choice without loading the tools
# (and through them the job engine) at every start.
Mode = Literal["default", "compact"]
MODES: tuple[Mode, ...] = ("default", "compact")
