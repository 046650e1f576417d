"""How much context the MCP tool list costs a model, per tool set (issue 12).

Starts ``videogen mcp --simulate --tools MODE`` over stdio (as Claude Desktop would), asks for
``tools/list`` with the SDK client, and prints, as compact JSON (UTF-8):
- model-visible bytes: names, titles, descriptions and input schemas — what a host puts into
  every model turn;
- whole bytes: the full result (plus output schemas and annotations);
- estimated cl100k tokens: bytes / 4.15, the ratio measured on this list before the change
  (42,358 bytes ≈ 10,200 tokens); tiktoken's encoding file cannot be fetched offline here.

Run:  .venv/bin/python bench/bench_tool_list.py
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile

from mcp import Client, StdioServerParameters

BYTES_PER_TOKEN = 4.15


def _size(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


async def measure(mode: str, home: str) -> tuple[int, int, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIDEOGEN_", "FAL_", "WAVESPEED_"))}
    env.update(VIDEOGEN_DB=os.path.join(home, f"{mode}.db"), VIDEOGEN_MEDIA_DIR=os.path.join(home, "media"),
               XDG_CONFIG_HOME=os.path.join(home, "cfg"))
    params = StdioServerParameters(command=sys.executable,
                                   args=["-m", "agent_tools.cli", "mcp", "--simulate", "--tools", mode], env=env)
    async with Client(params, mode="legacy") as client:
        tools = (await client.list_tools()).tools
    dumped = [t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in tools]
    visible = [{k: v for k, v in t.items() if k in ("name", "title", "description", "inputSchema")} for t in dumped]
    return len(tools), _size(visible), _size({"tools": dumped})


async def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        print(f"{'tool set':<10} {'tools':>5} {'model-visible B':>16} {'≈ tokens':>9} {'whole B':>8}")
        for mode in ("default", "compact"):
            count, visible, whole = await measure(mode, home)
            print(f"{mode:<10} {count:>5} {visible:>16,} {visible / BYTES_PER_TOKEN:>9,.0f} {whole:>8,}")


if __name__ == "__main__":
    asyncio.run(main())
