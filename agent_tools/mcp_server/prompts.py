"""Each model's prompting guide as an MCP prompt, and argument completion for prompts and resources.

A prompt per model (named like its tool) takes the ``idea`` and, optionally, the model's own choice
parameters (its enum parameters: duration, aspect_ratio, resolution…); ``write_prompt`` takes the
``model`` too. ``prompts/get`` returns one user message: the guide, the idea and the chosen
settings, asking for a prompt and a call. The guides cost context only when a user picks one,
not on every turn as they did inside tool descriptions.

``completion/complete`` offers model names (``write_prompt``'s ``model``), a model's enum values
(its prompt's arguments; ``write_prompt``'s once ``model`` is known) and the caller's job ids for
the job resource templates.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from ..catalog import CATALOG, ModelSpec
from ..catalog import get as get_model
from ..errors import UserError

GENERIC = "write_prompt"
MAX_COMPLETIONS = 100


def choice_parameters(spec: ModelSpec) -> dict[str, list[str]]:
    """The model's enum parameters and their values as strings (prompt arguments are strings)."""
    props = spec.schema().get("properties", {})
    return {name: [str(v) for v in prop["enum"]] for name, prop in props.items() if "enum" in prop}


def prompts() -> list[types.Prompt]:
    idea = types.PromptArgument(name="idea", description="What the user wants to see.", required=True)
    listed = [types.Prompt(
        name=GENERIC, title="Write a prompt for a model",
        description="A model's prompting guide applied to your idea.",
        arguments=[types.PromptArgument(name="model", description="A model name (list_models).", required=True),
                   idea])]
    for spec in CATALOG.values():
        choices = [types.PromptArgument(name=name, description=f"One of {', '.join(values)}.", required=False)
                   for name, values in choice_parameters(spec).items()]
        listed.append(types.Prompt(name=spec.tool, title=f"Prompt for {spec.title}",
                                   description=f"How to prompt {spec.title.split(' — ')[0]}, applied to your idea.",
                                   arguments=[idea, *choices]))
    return listed


def get_prompt(name: str, arguments: dict[str, str] | None, *, call: str) -> types.GetPromptResult:
    """The guide of one model applied to the arguments. ``call`` says how to run it (tool or generate)."""
    arguments = dict(arguments or {})
    try:
        spec = get_model(arguments.pop("model", "")) if name == GENERIC else CATALOG[name]
    except (UserError, KeyError):
        raise MCPError(code=INVALID_PARAMS, message=(
            f"Unknown prompt '{name}'" if name != GENERIC else "write_prompt needs a known model") +
            "; prompts/list shows them, list_models the models.") from None
    idea = arguments.pop("idea", "").strip()
    if not idea:
        raise MCPError(code=INVALID_PARAMS, message="The 'idea' argument is required: say what to show.")
    choices = choice_parameters(spec)
    settings = []
    for key, value in arguments.items():
        if key not in choices or value not in choices[key]:
            allowed = f"one of {', '.join(choices[key])}" if key in choices else f"one of {', '.join(choices) or 'none'}"
            raise MCPError(code=INVALID_PARAMS, message=f"{key}={value!r} is not allowed for {spec.tool}; expected "
                                                        f"{allowed}.")
        settings.append(f"{key}={value}")
    how = call.format(tool=spec.tool)
    text = "\n\n".join(filter(None, [
        f"Write a prompt for {spec.title} ({spec.tool}) from this idea: {idea}",
        "How to prompt this model: " + spec.prompt_guide.strip(),
        f"Use these settings: {', '.join(settings)}." if settings else "",
        f"Price: {spec.price_unit}. Then {how}, with the prompt you wrote."]))
    return types.GetPromptResult(description=f"Prompting guide for {spec.tool}", messages=[
        types.PromptMessage(role="user", content=types.TextContent(type="text", text=text))])


async def complete(params: types.CompleteRequestParams,
                   job_ids: Callable[[str], Awaitable[list[str]]]) -> types.CompleteResult:
    """Values for the argument being typed: model names, a model's enum values, or job ids."""
    typed = params.argument.value or ""
    known = (params.context.arguments if params.context and params.context.arguments else {}) or {}
    values: list[str] = []
    ref = params.ref
    if isinstance(ref, types.PromptReference):
        spec = _spec_for(ref.name, known)
        if ref.name == GENERIC and params.argument.name == "model":
            values = list(CATALOG)
        elif spec is not None:
            values = choice_parameters(spec).get(params.argument.name, [])
    elif params.argument.name == "job_id":
        values = await job_ids(typed)
    matching = [v for v in values if v.lower().startswith(typed.lower())]
    return types.CompleteResult(completion=types.Completion(
        values=matching[:MAX_COMPLETIONS], total=len(matching), has_more=len(matching) > MAX_COMPLETIONS))


def _spec_for(name: str, known: dict[str, Any]) -> ModelSpec | None:
    if name == GENERIC:
        return CATALOG.get(known.get("model", ""))
    return CATALOG.get(name)
