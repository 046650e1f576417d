"""Answers for requests the MCP SDK cannot even read, so a client never waits forever.

The SDK parses each JSON-RPC message with pydantic's JSON reader, which refuses nesting deeper
than its recursion limit and numbers out of range; the stdio transport then hands the exception
to the session, which logs it and answers nothing. A ``tools/call`` like that (an LLM emitting
``[[[[…]]]]`` or a 5,000-digit seed) is bad arguments, so it gets what any bad arguments get: a
tool result with ``isError`` saying what was wrong. Anything else with an id gets a JSON-RPC parse
error; a message with no id (a notification) needs no answer.
"""

from __future__ import annotations

import json
import re
from typing import Any

import anyio
import mcp_types as types
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

REQUEST_ID = re.compile(r'"id"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d{1,18})')
"""The request's id, found in text JSON could not parse (JSON-RPC clients write it before params)."""


def answer_for(exc: BaseException) -> types.JSONRPCResponse | types.JSONRPCError | None:
    """The reply to a message that failed to parse, or None when there is nobody to answer."""
    if not isinstance(exc, ValidationError):
        return None
    errors = exc.errors(include_url=False)
    raw = errors[0].get("input") if errors and errors[0]["type"] == "json_invalid" else None
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    found = REQUEST_ID.search(raw) if isinstance(raw, str) else None
    if found is None:
        return None
    request_id = json.loads(found.group(1))
    reason = errors[0]["msg"].removeprefix("Invalid JSON: ")
    text = (f"Invalid arguments: the request could not be read ({reason}) — nesting deeper than a few levels "
            "or a number longer than any parameter takes. Send plain values. Nothing was submitted or charged.")
    if '"tools/call"' in raw:
        result = types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)
        return types.JSONRPCResponse(jsonrpc="2.0", id=request_id,
                                     result=result.model_dump(by_alias=True, exclude_none=True, mode="json"))
    return types.JSONRPCError(jsonrpc="2.0", id=request_id, error=types.ErrorData(code=types.PARSE_ERROR, message=text))


async def answer_unreadable(read: MemoryObjectReceiveStream[Any], write: MemoryObjectSendStream[SessionMessage],
                            forward: MemoryObjectSendStream[Any]) -> None:
    """Relay ``read`` to ``forward``, answering unreadable requests on ``write`` instead of passing them on."""
    async with forward:
        async for item in read:
            reply = answer_for(item) if isinstance(item, Exception) else None
            if reply is not None:
                await write.send(SessionMessage(reply))
            else:
                await forward.send(item)


def relay() -> tuple[MemoryObjectSendStream[Any], MemoryObjectReceiveStream[Any]]:
    return anyio.create_memory_object_stream[Any](0)
