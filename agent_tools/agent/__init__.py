"""Tool execution for LLM agents: the default and compact tool sets as MCP / OpenAI / Anthropic
definitions (``tools``), and ``Executor.call(account, name, arguments)`` running them through the
Toolkit (``executor``), with results worded for a model (``results``). Surfaces render, never decide.
"""

from typing import Literal

# Here rather than in ``tools`` so that ``videogen`` can offer the choice without loading the tools
# (and through them the job engine) at every start.
Mode = Literal["default", "compact"]
MODES: tuple[Mode, ...] = ("default", "compact")

# The one agent-only parameter of a generation (see ``schemas.WAIT_SECONDS_PROPERTY``). Here so that
# the stdio server can state it in its instructions before it has loaded the job engine.
WAIT_SECONDS = "wait_seconds"
WAIT_SECONDS_DEFAULT = 45
WAIT_SECONDS_MAX = 55
