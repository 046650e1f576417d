"""The tools an LLM agent sees, in two sets, exported as MCP, OpenAI or Anthropic definitions.

``default``: one tool per catalog model (its exact parameters, plus ``wait_seconds``) and the job,
cost and quota tools. ``compact``: the same job, cost and quota tools plus ``list_models``,
``describe_model`` and one ``generate(model, arguments)``, for hosts where every byte of tool
definitions costs context on every turn. Descriptions say only what is needed to choose and call a
tool; each model's prompting guide is in ``describe_model`` (and an MCP prompt), not here.

A model tool's schema is the catalog's ``ModelSpec.schema()`` without its ``examples`` keywords
(sample values that validate nothing) and without descriptions that only restate a parameter's
name: every parameter, type, enum, range and default is exact, and ``describe_model`` gives the
whole schema.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..catalog import CATALOG, ModelSpec
from ..schemas import generation_annotations
from . import definitions
from . import schemas as s
from . import MODES, Mode
from .schemas import WAIT_SECONDS, WAIT_SECONDS_PROPERTY


READ_ONLY = {"readOnlyHint": True, "destructiveHint": False, "idempotentHint": True, "openWorldHint": False}
READ_ONLY_REMOTE = {**READ_ONLY, "openWorldHint": True}
CANCEL = {"readOnlyHint": False, "destructiveHint": True, "idempotentHint": True, "openWorldHint": True}
PAID = {"readOnlyHint": False, "destructiveHint": False, "idempotentHint": False, "openWorldHint": True}


@dataclass(frozen=True)
class AgentTool:
    """One tool definition; ``model`` is set for a catalog model's own tool."""

    name: str
    title: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    annotations: dict[str, Any] = field(default_factory=lambda: dict(READ_ONLY))
    model: ModelSpec | None = None

    @property
    def generates(self) -> bool:
        """Whether a call starts a paid job (a model's tool or ``generate``)."""
        return self.model is not None or self.name == "generate"


# -- model tools -------------------------------------------------------------------------------

def without_examples(node: Any) -> Any:
    """A schema minus its ``examples`` keywords: the same constraints, fewer bytes."""
    if isinstance(node, dict):
        return {k: without_examples(v) for k, v in node.items() if k != "examples"}
    if isinstance(node, list):
        return [without_examples(v) for v in node]
    return node


GENERIC_WORDS = frozenset(
    "a an and as for from generate generated generating generation image images in input length of the to url "
    "use video you want describing text seconds".split())
"""Words that say nothing about a parameter beyond its name ("The resolution of the generated video")."""


def restates_name(name: str, description: str) -> bool:
    """Whether a description only repeats the parameter's name in generic words."""
    words = set(re.findall(r"[a-z0-9]+", description.lower()))
    return not (words - GENERIC_WORDS - set(name.split("_")))


def lean_properties(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema minus ``examples`` and minus descriptions that only restate a parameter's name."""
    schema = without_examples(schema)
    for name, prop in schema.get("properties", {}).items():
        if restates_name(name, prop.get("description", "")):
            prop.pop("description", None)
    return schema


def generation_input_schema(spec: ModelSpec) -> dict[str, Any]:
    """The catalog's exact schema for ``spec`` (see ``lean_properties``) plus ``wait_seconds``."""
    schema = lean_properties(spec.schema())
    if WAIT_SECONDS in schema["properties"]:
        raise RuntimeError(f"{spec.tool} has its own '{WAIT_SECONDS}' parameter; the agent tools need another name")
    schema["properties"] = {**schema["properties"], WAIT_SECONDS: dict(WAIT_SECONDS_PROPERTY)}
    return schema


def first_sentence(text: str) -> str:
    text = " ".join(text.split())
    end = text.find(". ")
    return text if end == -1 else text[:end + 1]


def model_description(spec: ModelSpec) -> str:
    """What to choose a model by: what it makes, then its price."""
    return f"{first_sentence(spec.summary)} Price: {spec.price_unit}."


def model_tool(spec: ModelSpec) -> AgentTool:
    return AgentTool(spec.tool, spec.title, model_description(spec), generation_input_schema(spec),
                     s.JOB_OUTPUT_SCHEMA, generation_annotations(spec), model=spec)


# -- the other tools ---------------------------------------------------------------------------

def _job_tools() -> list[AgentTool]:
    return [
        AgentTool("get_job", "Get a job", "A job's state, outputs, cost and error, without waiting.",
                  s.JOB_ID_INPUT, s.JOB_OUTPUT_SCHEMA, dict(READ_ONLY_REMOTE)),
        AgentTool("wait_for_job", "Wait for a job",
                  f"Wait up to {WAIT_SECONDS} for a job to finish; call again while it runs.",
                  s.WAIT_INPUT, s.JOB_OUTPUT_SCHEMA, dict(READ_ONLY_REMOTE)),
        AgentTool("cancel_job", "Cancel a job",
                  "Stop a job at the provider. Not charged unless the provider had already finished it.",
                  s.JOB_ID_INPUT, s.JOB_OUTPUT_SCHEMA, dict(CANCEL)),
        AgentTool("list_jobs", "List recent jobs", "Your recent jobs, newest first.",
                  s.LIST_JOBS_INPUT, s.LIST_JOBS_OUTPUT),
        AgentTool("get_quota", "Budget and limits", "What you may still spend and run, and when limits reset.",
                  s.QUOTA_INPUT, s.QUOTA_OUTPUT),
    ]


LIST_MODELS_DESCRIPTION = "Models with what they make and their price; filters are optional."


def _recommend_tool() -> AgentTool:
    return AgentTool("recommend_models", "Recommend models",
                     "Models and exact arguments that meet the user's wishes, cheapest first, with prices; if none "
                     "fit, the nearest options per wish dropped.", s.RECOMMEND_INPUT, s.RECOMMEND_OUTPUT)


def default_tools() -> list[AgentTool]:
    """One tool per catalog model, then the catalog, cost, job and quota tools."""
    return [model_tool(spec) for spec in CATALOG.values()] + [
        AgentTool("list_models", "List models and prices", LIST_MODELS_DESCRIPTION,
                  s.LIST_MODELS_INPUT, s.LIST_MODELS_OUTPUT),
        _recommend_tool(),
        AgentTool("estimate_cost", "Estimate the cost of a run",
                  "Price one run of a model's tool with these arguments, and whether the budget allows it. Free.",
                  s.estimate_input("tool"), s.ESTIMATE_OUTPUT),
        *_job_tools(),
    ]


def compact_tools() -> list[AgentTool]:
    """A handful of generic tools: find a model, read its parameters, run it, follow the job."""
    return [
        AgentTool("list_models", "List models and prices", LIST_MODELS_DESCRIPTION,
                  s.LIST_MODELS_INPUT, s.LIST_MODELS_OUTPUT),
        _recommend_tool(),
        AgentTool("describe_model", "Describe a model",
                  "A model's exact parameters (JSON Schema), prompting guide and price. Read it before generate.",
                  s.DESCRIBE_MODEL_INPUT, s.DESCRIBE_MODEL_OUTPUT),
        AgentTool("generate", "Generate a video or image",
                  "Run a model (costs money). Waits up to wait_seconds, then returns the result or a job_id "
                  "for wait_for_job.", s.GENERATE_INPUT, s.JOB_OUTPUT_SCHEMA, dict(PAID)),
        AgentTool("estimate_cost", "Estimate the cost of a run",
                  "Price a run of a model with these arguments, and whether the budget allows it. Free.",
                  s.estimate_input("model"), s.ESTIMATE_OUTPUT),
        *_job_tools(),
    ]


def build_tool_set(mode: Mode) -> list[AgentTool]:
    """A tool set built from the catalog (what ``definitions`` stores)."""
    if mode == "default":
        return default_tools()
    if mode == "compact":
        return compact_tools()
    raise ValueError(f"unknown tool set {mode!r}; choose one of {', '.join(MODES)}")


def tool_set(mode: Mode) -> list[AgentTool]:
    """A tool set: the pre-generated one (``definitions``, the same tools without building every
    model's schema), or built from the catalog if the file is missing or names other models."""
    entries = definitions.load(mode) if mode in MODES else None
    models = [e.get("model") for e in entries or () if isinstance(e, dict) and e.get("model")]
    if entries is None or models != (list(CATALOG) if mode == "default" else []):
        return build_tool_set(mode)
    return [AgentTool(**{k: e[k] for k in definitions.FIELDS}, model=CATALOG[e["model"]] if e["model"] else None)
            for e in entries]


# -- exports -----------------------------------------------------------------------------------

def mcp_definition(tool: AgentTool) -> dict[str, Any]:
    """As in MCP ``tools/list`` (camelCase wire names)."""
    return definitions.mcp_wire({name: getattr(tool, name) for name in definitions.FIELDS})


def openai_definition(tool: AgentTool) -> dict[str, Any]:
    return {"type": "function",
            "function": {"name": tool.name, "description": tool.description, "parameters": tool.input_schema}}


def anthropic_definition(tool: AgentTool) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "input_schema": tool.input_schema}


EXPORTERS = {"mcp": mcp_definition, "openai": openai_definition, "anthropic": anthropic_definition}


def export(fmt: str, mode: Mode = "compact") -> list[dict[str, Any]]:
    """A tool set in one format (``mcp``, ``openai`` or ``anthropic``)."""
    if fmt not in EXPORTERS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(EXPORTERS)}")
    return [EXPORTERS[fmt](tool) for tool in tool_set(mode)]


def compact_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def model_visible_bytes(tools: Iterable[AgentTool]) -> int:
    """Bytes of what a model reads of a tool list: names, titles, descriptions, input schemas."""
    return len(compact_json([{"name": t.name, "title": t.title, "description": t.description,
                              "inputSchema": t.input_schema} for t in tools]))
