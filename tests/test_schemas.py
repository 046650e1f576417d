"""Every exported function schema is valid JSON Schema 2020-12 and agrees with the seeds' examples."""

from __future__ import annotations

import copy
import json

import pytest
from jsonschema import Draft202012Validator

from agent_tools.catalog import CATALOG
from agent_tools.errors import InvalidArguments
from agent_tools.schemas import FORMATS, export, tool_schema

SPECS = list(CATALOG.values())


def _validator(tool: dict, fmt: str) -> Draft202012Validator:
    schema = tool_schema(tool, fmt)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _tools(fmt: str) -> dict[str, dict]:
    return {spec.endpoint_id: tool for spec, tool in zip(SPECS, export(fmt))}


@pytest.mark.parametrize("fmt", FORMATS)
def test_envelopes(fmt):
    tools = export(fmt)
    assert len(tools) == 15
    for spec, tool in zip(SPECS, tools):
        if fmt == "openai":
            assert tool["type"] == "function" and tool["function"]["name"] == spec.tool
            assert tool["function"]["description"] == spec.description
        elif fmt == "anthropic":
            assert set(tool) == {"name", "description", "input_schema"}
        else:
            assert tool["inputSchema"]["$schema"].endswith("2020-12/schema")
            assert tool["annotations"]["openWorldHint"] is True and tool["annotations"]["readOnlyHint"] is False
        schema = tool_schema(tool, fmt)
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        assert "$ref" not in json.dumps(schema) and "$defs" not in schema


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("which", ["required", "full"])
def test_schemas_accept_the_seed_examples(fmt, which, seed_examples):
    for endpoint, tool in _tools(fmt).items():
        example = seed_examples[endpoint][which]
        errors = [e.message for e in _validator(tool, fmt).iter_errors(example)]
        assert not errors, f"{endpoint} rejects its own {which} example: {errors}"
        # and the pydantic model — the thing that actually runs — agrees with the exported schema
        CATALOG[tool_name(tool, fmt)].validate(example)


def tool_name(tool: dict, fmt: str) -> str:
    return tool["function"]["name"] if fmt == "openai" else tool["name"]


def _mutations(schema: dict, example: dict):
    """Yield (kind, label, bad instance) for each kind of mistake the schema must catch."""
    for name, prop in schema["properties"].items():
        if prop.get("maximum") is not None:
            yield "range", f"{name} above maximum", {**example, name: prop["maximum"] + 1}
        if prop.get("minimum") is not None:
            yield "range", f"{name} below minimum", {**example, name: prop["minimum"] - 1}
        if "enum" in prop:
            yield "enum", f"{name} not in enum", {**example, name: "definitely-not-an-option"}
    for name in schema.get("required", ()):
        bad = copy.deepcopy(example)
        bad.pop(name, None)
        yield "required", f"missing {name}", bad
    yield "unknown", "unknown field", {**example, "not_a_parameter": 1}


@pytest.mark.parametrize("fmt", FORMATS)
def test_schemas_reject_bad_numbers_enums_and_missing_fields(fmt, seed_examples):
    kinds_seen = {"range": 0, "enum": 0, "required": 0, "unknown": 0}
    for endpoint, tool in _tools(fmt).items():
        validator = _validator(tool, fmt)
        spec = CATALOG[tool_name(tool, fmt)]
        for kind, label, bad in _mutations(validator.schema, seed_examples[endpoint]["full"]):
            assert not validator.is_valid(bad), f"{endpoint}: schema accepts {label}"
            with pytest.raises(InvalidArguments):
                spec.validate(bad)  # the model that actually runs rejects it too
            kinds_seen[kind] += 1
    assert all(kinds_seen.values()), kinds_seen


def test_schema_and_model_agree_on_defaults(seed_examples):
    for spec in SPECS:
        params = spec.validate(seed_examples[spec.endpoint_id]["required"])
        dumped = params.model_dump(mode="json")
        for name, prop in spec.schema()["properties"].items():
            if "default" in prop:
                assert dumped[name] == prop["default"], (spec.tool, name)
