"""Function schemas generated from the catalog: MCP tools, OpenAI tools and Anthropic tools.

All three carry the same JSON Schema (``ModelSpec.schema()``); only the envelope differs. A test
checks that every export validates the seeds' own examples, so a schema can't drift from the model.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from .catalog import CATALOG, ModelSpec

Format = Literal["mcp", "openai", "anthropic"]
FORMATS: tuple[Format, ...] = ("mcp", "openai", "anthropic")
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def generation_annotations(spec: ModelSpec) -> dict[str, Any]:
    """MCP hints for a paid generation: it changes the world (spends money), is not idempotent."""
    return {"title": spec.title, "readOnlyHint": False, "destructiveHint": False,
            "idempotentHint": False, "openWorldHint": True}


def mcp_tool(spec: ModelSpec) -> dict[str, Any]:
    """An MCP ``Tool`` as it appears in ``tools/list`` (camelCase wire names)."""
    return {
        "name": spec.tool,
        "title": spec.title,
        "description": spec.description,
        "inputSchema": {"$schema": JSON_SCHEMA_DIALECT, **spec.schema()},
        "annotations": generation_annotations(spec),
    }


def openai_tool(spec: ModelSpec) -> dict[str, Any]:
    """An OpenAI Chat Completions / Responses function tool."""
    return {"type": "function",
            "function": {"name": spec.tool, "description": spec.description, "parameters": spec.schema()}}


def anthropic_tool(spec: ModelSpec) -> dict[str, Any]:
    """An Anthropic Messages API tool."""
    return {"name": spec.tool, "description": spec.description, "input_schema": spec.schema()}


EXPORTERS = {"mcp": mcp_tool, "openai": openai_tool, "anthropic": anthropic_tool}


def export(fmt: Format, specs: Iterable[ModelSpec] | None = None) -> list[dict[str, Any]]:
    """Every (or the given) catalog entry as tools of one format."""
    if fmt not in EXPORTERS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return [EXPORTERS[fmt](spec) for spec in (specs if specs is not None else CATALOG.values())]


def tool_schema(tool: dict[str, Any], fmt: Format) -> dict[str, Any]:
    """The parameter schema inside an exported tool, whatever its envelope."""
    if fmt == "mcp":
        return tool["inputSchema"]
    if fmt == "openai":
        return tool["function"]["parameters"]
    return tool["input_schema"]
