"""The agent tool sets as pre-generated data, so a server can list its tools before loading the catalog.

Building a tool set from the catalog builds every model's pydantic validator and JSON Schema: ~15 ms
of CPU at each MCP server start (issue 11), for a result that only changes when the code does.
``tool_definitions.json`` beside this module holds ``tools.build_tool_set(mode)`` for each mode. It
is a build artefact: the catalog's pydantic models stay the only place a parameter is described,
tests/test_tool_definitions.py checks the file equals what they generate now, and

    python -m agent_tools.agent.generate      (or: make tool-definitions)

rewrites it. This module only reads the file: it imports neither the catalog nor the job engine, so
the stdio server's handshake (``mcp_server.deferred``) can answer ``tools/list`` from it alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FILE = Path(__file__).with_name("tool_definitions.json")
REGENERATE = "python -m agent_tools.agent.generate"
FIELDS = ("name", "title", "description", "input_schema", "output_schema", "annotations")
"""An entry's keys besides ``model`` (the catalog tool a model's own tool runs, else null)."""

_text: str | None = None


def render(data: Mapping[str, Any]) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def load(mode: str) -> list[dict[str, Any]] | None:
    """The stored entries of ``mode``'s tool set (fresh objects: a caller may change them), or None
    if the file is missing or unreadable (then the caller builds the set from the catalog)."""
    global _text
    if _text is None:
        try:
            _text = FILE.read_text(encoding="utf-8")
        except OSError:
            return None
    try:
        entries = json.loads(_text).get("modes", {}).get(mode)
    except (ValueError, AttributeError):
        return None
    return entries if isinstance(entries, list) else None


def mcp_wire(tool: Mapping[str, Any]) -> dict[str, Any]:
    """A tool (an entry, or ``AgentTool`` fields) as in MCP ``tools/list`` (camelCase wire names)."""
    return {"name": tool["name"], "title": tool["title"], "description": tool["description"],
            "inputSchema": tool["input_schema"], "outputSchema": tool["output_schema"],
            # the title is the tool's own; repeating it in the annotations costs bytes on every turn
            "annotations": {k: v for k, v in tool["annotations"].items() if k != "title"}}
