"""Limits on the shape of raw arguments, checked before any validator, parser or JSON encoder sees them.

Arguments arrive from an LLM, a shell or a chat client, and some shapes break the machinery rather
than the rules: nesting deep enough to exhaust Python's recursion (``json.dumps``, pydantic, the
schema validator), integers longer than Python will print (4,300 digits), NaN and infinities, or a
prompt of megabytes. ``shape_problems`` finds them with a loop (no recursion of its own), so the
catalog (every model tool, on every surface) and the agent executor (every MCP tool) refuse them
as invalid arguments — never an internal error, and before anything is priced or reserved.
"""

from __future__ import annotations

import math
from typing import Any

MAX_DEPTH = 16
"""Containers inside containers: the deepest real argument (a list of image URLs) is 2."""
MAX_ITEMS = 10_000
"""Elements in all lists and objects together."""
MAX_TEXT = 200_000
"""Characters in one string; ``data:`` URIs are exempt here and checked as images by media.py."""
MAX_INT = 2**63 - 1
"""Whole numbers beyond a 64-bit integer are nobody's seed, duration or count."""
MAX_FLOAT = 1e15
"""Fractional numbers this large are nobody's duration, scale or price; arithmetic on them
overflows (an hour count of 1e306 seconds)."""


def shape_problems(arguments: Any) -> list[str]:
    """One sentence per problem, naming where it is (``field.0.key``); [] when the shape is fine."""
    problems: list[str] = []
    items = 0
    stack: list[tuple[str, Any, int]] = [("", arguments, 0)]
    while stack and len(problems) < 10:
        where, value, depth = stack.pop()
        name = where or "arguments"
        if isinstance(value, dict):
            items += len(value)
            if depth >= MAX_DEPTH:
                problems.append(f"{name.split('.')[0]}: nested more than {MAX_DEPTH} levels deep; no parameter takes that")
                continue
            for key, inner in value.items():
                if not isinstance(key, str):
                    problems.append(f"{name}: names must be text, not {type(key).__name__} {str(key)[:20]!r}")
                    continue
                stack.append((f"{where}.{key}" if where else key, inner, depth + 1))
        elif isinstance(value, (list, tuple)):
            items += len(value)
            if depth >= MAX_DEPTH:
                problems.append(f"{name.split('.')[0]}: nested more than {MAX_DEPTH} levels deep; no parameter takes that")
                continue
            stack.extend((f"{where}.{i}" if where else str(i), inner, depth + 1) for i, inner in enumerate(value))
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if abs(value) > MAX_INT:
                problems.append(f"{name}: a number of about {value.bit_length() * 0.30103:.0f} digits is far too "
                                "large; give a value this parameter allows")
        elif isinstance(value, float):
            if not math.isfinite(value):
                problems.append(f"{name}: {value} is not a number this parameter can take; give a finite number")
            elif abs(value) > MAX_FLOAT:
                problems.append(f"{name}: {value:g} is far too large; give a value this parameter allows")
        elif isinstance(value, str):
            if len(value) > MAX_TEXT and not value.startswith("data:"):
                problems.append(f"{name}: {len(value):,} characters is too long (at most {MAX_TEXT:,}); shorten it")
        if items > MAX_ITEMS:
            problems.append(f"{name}: more than {MAX_ITEMS:,} values in all; no parameter takes that many")
            break
    return problems


def data_uri_digest(value: str) -> str:
    """How a ``data:`` URI is stored and shown: its media type, size and SHA-256, never its bytes
    (a job record or a log line must not carry megabytes of base64)."""
    import hashlib

    header, _, payload = value.partition(",")
    media_type = header.removeprefix("data:").split(";")[0] or "application/octet-stream"
    return f"data:{media_type};sha256={hashlib.sha256(payload.encode()).hexdigest()[:16]};{len(payload)} chars"
