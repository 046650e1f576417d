"""What the MCP server answers to ``initialize``: its name, title, instructions and capabilities.

One place for both objects that may answer it — ``server.VideogenServer`` (the full server) and
``deferred.DeferredServer`` (the stdio server before its Toolkit is open) — so the answer is the
same whichever does; light enough (the SDK and nothing of the core) for the stdio start.
"""

from __future__ import annotations

from typing import Any

import mcp_types as types
from mcp.server import Server

from .. import __version__
from ..agent import WAIT_SECONDS, WAIT_SECONDS_DEFAULT, WAIT_SECONDS_MAX

SERVER_NAME = "videogen"
SERVER_TITLE = "videogen: video and image generation"

INSTRUCTIONS = f"""\
videogen generates videos and images with hosted models; every generation costs real money from a \
budget with daily and monthly limits.
1. list_models shows each model, what it is good for and its price; estimate_cost prices a run and \
says whether the budget allows it.
2. Run the model. It waits up to {WAIT_SECONDS} (default {WAIT_SECONDS_DEFAULT}, at most {WAIT_SECONDS_MAX}; 0 \
returns once submitted) and returns the result, or a job_id if the job is still running: then call \
wait_for_job (again if needed) instead of starting a new job.
3. Results give the output URL, the cost and the budget left. To animate a generated image, pass its \
URL to an image-to-video model.
Errors say what was wrong and what is allowed; nothing is charged for a refused or failed request."""

IMAGE_INPUTS_LOCAL = "Image inputs take an https:// URL or a local file path (uploaded for you)."
IMAGE_INPUTS_REMOTE = ("Image inputs take an https:// URL (local file paths are refused over HTTP: this server "
                       "cannot read your files).")

def error_result(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


def sdk_server(handlers: Any, *, local_files: bool) -> Server[Any]:
    """The SDK server answering with ``handlers``' ``list_tools``, ``call_tool``, … methods; the
    capabilities ``initialize`` announces follow from which handlers are given, so both kinds of
    handlers give the same answer."""
    inputs = IMAGE_INPUTS_LOCAL if local_files else IMAGE_INPUTS_REMOTE
    return Server(
        SERVER_NAME, version=__version__, title=SERVER_TITLE,
        instructions=f"{INSTRUCTIONS}\n{inputs}", on_list_tools=handlers.list_tools, on_call_tool=handlers.call_tool,
        on_list_resources=handlers.list_resources, on_list_resource_templates=handlers.list_resource_templates,
        on_read_resource=handlers.read_resource, on_list_prompts=handlers.list_prompts,
        on_get_prompt=handlers.get_prompt, on_completion=handlers.complete)
