"""JSON Schemas of the agent tools that are not catalog models: their inputs and every result.

Hosts put every tool definition into every model turn, so these are as small as they can be while
still exact: types, enums, ranges and defaults stay; prose lives in the tool descriptions and the
result text. ``JOB_OUTPUT_SCHEMA`` is the one result schema of everything that returns a job
(every generation, ``get_job``, ``wait_for_job``, ``cancel_job``).
"""

from __future__ import annotations

from typing import Any

from ..catalog import Category
from ..jobs import JobState
from . import WAIT_SECONDS as WAIT_SECONDS, WAIT_SECONDS_DEFAULT as WAIT_SECONDS_DEFAULT  # their home is ``agent``
from . import WAIT_SECONDS_MAX as WAIT_SECONDS_MAX

WAIT_SECONDS_PROPERTY: dict[str, Any] = {
    "type": "integer", "minimum": 0, "maximum": WAIT_SECONDS_MAX, "default": WAIT_SECONDS_DEFAULT}
"""The one agent-only parameter of a generation, added after the model's own parameters: seconds to
wait for the result before returning the job_id (0: return once submitted). Explained once, in the
server's instructions and ``generate``'s description, not in every model's schema."""

JOB_STATES = [s.value for s in JobState]


def _nullable(kind: str) -> dict[str, Any]:
    return {"type": [kind, "null"]}


BUDGET_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "scope": {"type": "string"}, "kind": {"type": "string"}, "unit": {"enum": ["usd", "jobs"]},
            "limit": {"type": "number"}, "used": {"type": "number"}, "remaining": {"type": "number"},
            "resets_at": _nullable("string"),
        },
        "required": ["scope", "kind", "unit", "limit", "remaining"],
    },
}

JOB_OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "job_id": {"type": "string"},
        "state": {"enum": JOB_STATES},
        "done": {"type": "boolean"},
        "tool": {"type": "string"},
        "cost_usd": {"type": "number"},
        "cost_status": {"enum": ["reserved", "charged", "not charged"]},
        "outputs": {"type": "array", "items": {
            "type": "object", "properties": {"url": {"type": "string"}, "path": _nullable("string")},
            "required": ["url"]}},
        "error": _nullable("string"),
        "provider": {"type": "string"},
        "failover": {"type": "string", "description": "which provider ran the job and why, when not the chosen one"},
        "next_step": {"type": "string"},
        "budget": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["job_id", "state", "done", "tool", "cost_usd", "cost_status", "outputs", "next_step"],
}

JOB_ID_PROPERTY: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 64}
MODEL_PROPERTY: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 128,
                                  "description": "A model name from list_models."}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


RECOMMEND_INPUT = _object({
    "category": {"enum": [c.value for c in Category]},
    "duration_seconds": {"type": "number", "minimum": 0},
    "resolution": {"type": "string", "maxLength": 10, "description": "e.g. 720p, 1080p"},
    "aspect_ratio": {"type": "string", "maxLength": 10, "description": "e.g. 16:9, 9:16"},
    "audio": {"type": "boolean"},
    "max_cost_usd": {"type": "number", "minimum": 0},
})
RECOMMEND_OUTPUT: dict[str, Any] = {
    "type": "object",
    "properties": {"wants": {"type": "string"}, "options": {"type": "array", "items": {"type": "object"}},
                   "relaxations": {"type": "array", "items": {"type": "object"}}},
    "required": ["wants", "options", "relaxations"],
}

LIST_MODELS_INPUT = _object({
    "category": {"enum": [c.value for c in Category]},
    "max_cost_usd": {"type": "number", "minimum": 0, "description": "Only models whose cheapest run costs at most this."},
    "query": {"type": "string", "maxLength": 100, "description": "Words to look for in name, title or summary."},
})
LIST_MODELS_OUTPUT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "prices_as_of": {"type": "string"},
        "models": {"type": "array", "items": {
            "type": "object",
            "properties": {"tool": {"type": "string"}, "title": {"type": "string"}, "category": {"type": "string"},
                           "default_cost_usd": {"type": "number"}, "price": {"type": "string"}},
            "required": ["tool", "title", "category", "default_cost_usd", "price"],
        }},
    },
    "required": ["prices_as_of", "models"],
}

DESCRIBE_MODEL_INPUT = _object({"model": MODEL_PROPERTY}, ["model"])
DESCRIBE_MODEL_OUTPUT: dict[str, Any] = {
    "type": "object",
    "properties": {"tool": {"type": "string"}, "input_schema": {"type": "object"}, "prompt_guide": {"type": "string"},
                   "price": {"type": "string"}, "default_cost_usd": {"type": "number"}},
    "required": ["tool", "input_schema", "prompt_guide", "price", "default_cost_usd"],
}

GENERATE_INPUT = _object({
    "model": MODEL_PROPERTY,
    "arguments": {"type": "object", "description": "The model's parameters, as describe_model gives them."},
    WAIT_SECONDS: {**WAIT_SECONDS_PROPERTY, "description": "Seconds to wait before returning the job_id."},
}, ["model", "arguments"])

ARGUMENTS_PROPERTY: dict[str, Any] = {"type": "object", "description": "Parameters; the prompt may be left out."}
ESTIMATE_OUTPUT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "tool": {"type": "string"}, "cost_usd": {"type": "number"}, "formula": {"type": "string"},
        "params": {"type": "object"}, "missing_required": {"type": "array", "items": {"type": "string"}},
        "fits_budget": {"type": "boolean"}, "budget": BUDGET_SCHEMA,
    },
    "required": ["tool", "cost_usd", "formula", "params", "missing_required", "fits_budget", "budget"],
}


def estimate_input(model_key: str) -> dict[str, Any]:
    """``estimate_cost``'s input: the model's name under ``model_key`` (``tool`` or ``model``)."""
    return _object({model_key: MODEL_PROPERTY, "arguments": ARGUMENTS_PROPERTY}, [model_key])


JOB_ID_INPUT = _object({"job_id": JOB_ID_PROPERTY}, ["job_id"])
WAIT_INPUT = _object({"job_id": JOB_ID_PROPERTY, WAIT_SECONDS: WAIT_SECONDS_PROPERTY}, ["job_id"])

LIST_JOBS_INPUT = _object({
    "limit": {"type": "integer", "minimum": 1, "maximum": 50, "default": 10},
    "all_accounts": {"type": "boolean", "default": False, "description": "Admins only."},
})
LIST_JOBS_OUTPUT: dict[str, Any] = {
    "type": "object",
    "properties": {"jobs": {"type": "array", "items": {
        "type": "object",
        "properties": {"job_id": {"type": "string"}, "tool": {"type": "string"}, "state": {"enum": JOB_STATES},
                       "cost_usd": {"type": "number"}, "created_at": {"type": "string"}},
        "required": ["job_id", "tool", "state", "cost_usd", "created_at"],
    }}},
    "required": ["jobs"],
}

QUOTA_INPUT = _object({})
QUOTA_OUTPUT: dict[str, Any] = {"type": "object", "properties": {"account": {"type": "string"},
                                                                 "budget": BUDGET_SCHEMA},
                                "required": ["account", "budget"]}
