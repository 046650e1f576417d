"""MCP server benchmarks (issue 5), each against a bare mcp SDK server measured in the same run.

1. Cold start: spawn the server → ``initialize`` answered → ``tools/list`` answered, over stdio,
   as Claude Desktop starts it. videogen: ``python -m agent_tools.cli mcp`` (= ``videogen mcp``)
   with an empty database; bare: an ``MCPServer`` with one trivial tool, in a temporary script.
2. Per-call overhead of ``estimate_cost`` (catalog validation, pricing, a quota read from SQLite,
   rendering) vs the bare server's trivial tool, sequential ``tools/call`` over the same stdio pipe.
3. Peak RSS (VmHWM) of each server process after those calls.

The stdio server answers ``tools/list`` before it opens its Toolkit (issue 11) and opens it right
after; the client closes stdin as soon as ``tools/list`` is answered, so a server that has not begun
opening by then skips it. ``--linger S`` keeps each cold-start connection open S seconds longer, so
the CPU figure includes that open as a real session does (the wall figure is the same either way).

The client is a minimal JSON-RPC writer/reader on the pipes (no SDK client), so both servers pay
the same client cost. Medians of ``--rounds`` spawns and ``--calls`` calls. The project's bytecode is
compiled first, as installing it does (the SDK's was compiled when it was installed).

Run:  .venv/bin/python bench/bench_mcp.py [--rounds 10] [--calls 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_cli_start import compile_project

ROOT = Path(__file__).resolve().parent.parent

BARE_SERVER = '''
from mcp.server import MCPServer

mcp = MCPServer("bare")


@mcp.tool()
def echo(text: str) -> str:
    """Return the text."""
    return text


if __name__ == "__main__":
    mcp.run()
'''

ESTIMATE_ARGS = {"tool": "sora_2_pro_text_to_video", "arguments": {"duration": 8, "resolution": "1080p"}}


class Pipe:
    """One server process and a sequential JSON-RPC conversation with it."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.next_id = 0

    async def request(self, method: str, params: dict | None = None) -> dict:
        self.next_id += 1
        message = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            message["params"] = params
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        await self.process.stdin.drain()
        while True:
            line = await self.process.stdout.readline()
            if not line:
                raise RuntimeError("the server closed stdout")
            reply = json.loads(line)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    async def notify(self, method: str) -> None:
        self.process.stdin.write(json.dumps({"jsonrpc": "2.0", "method": method}).encode() + b"\n")
        await self.process.stdin.drain()

    def peak_rss_mib(self) -> float | None:
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    async def close(self) -> None:
        self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except asyncio.TimeoutError:
            self.process.kill()
            await self.process.wait()


async def spawn(command: list[str], env: dict[str, str], cwd: str) -> tuple[Pipe, float, dict]:
    """Start a server and complete the handshake and tools/list: (pipe, seconds, the tools/list result)."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env=env, cwd=cwd, limit=16 * 2**20)
    pipe = Pipe(process)
    await pipe.request("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                      "clientInfo": {"name": "bench", "version": "1"}})
    await pipe.notify("notifications/initialized")
    tools = await pipe.request("tools/list")
    return pipe, time.perf_counter() - started, tools


async def per_call(pipe: Pipe, name: str, arguments: dict, calls: int) -> list[float]:
    for _ in range(10):  # warm-up
        await pipe.request("tools/call", {"name": name, "arguments": arguments})
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        result = await pipe.request("tools/call", {"name": name, "arguments": arguments})
        times.append(time.perf_counter() - started)
        if result.get("isError"):
            raise RuntimeError(f"{name} failed: {result}")
    return times


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


async def main(rounds: int, calls: int, keys: bool, linger: float = 0.0) -> None:
    compile_project()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "bare_server.py").write_text(BARE_SERVER)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VIDEOGEN_", "FAL_", "WAVESPEED_"))}
        env.update(VIDEOGEN_DB=str(root / "videogen.db"), VIDEOGEN_MEDIA_DIR=str(root / "media"),
                   XDG_CONFIG_HOME=str(root / "xdg-config"), XDG_DATA_HOME=str(root / "xdg-data"),
                   PYTHONPATH=str(ROOT))
        if keys:  # as an installed server runs: both providers configured (never called here)
            env.update(FAL_KEY="bench-fal-key", WAVESPEED_API_KEY="bench-wavespeed-key")
        servers = {"videogen": [sys.executable, "-m", "agent_tools.cli", "mcp"],
                   "bare": [sys.executable, str(root / "bare_server.py")]}
        cold: dict[str, list[float]] = {name: [] for name in servers}
        cpu: dict[str, list[float]] = {name: [] for name in servers}
        listed: dict[str, dict] = {}
        for _ in range(rounds):  # interleaved so both see the same machine state
            for name, command in servers.items():
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                pipe, seconds, listed[name] = await spawn(command, env, tmp)
                cold[name].append(seconds)
                if linger:
                    await asyncio.sleep(linger)
                await pipe.close()
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu[name].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        calls_s: dict[str, list[float]] = {}
        rss: dict[str, float | None] = {}
        for name, command in servers.items():
            pipe, _, _ = await spawn(command, env, tmp)
            tool, args = ("estimate_cost", ESTIMATE_ARGS) if name == "videogen" else ("echo", {"text": "hello"})
            calls_s[name] = await per_call(pipe, tool, args, calls)
            rss[name] = pipe.peak_rss_mib()
            await pipe.close()

    cold_v, cold_b = statistics.median(cold["videogen"]), statistics.median(cold["bare"])
    call_v, call_b = statistics.median(calls_s["videogen"]), statistics.median(calls_s["bare"])
    counts = {name: len(result["tools"]) for name, result in listed.items()}
    sizes = {name: len(json.dumps(result, ensure_ascii=False).encode()) for name, result in listed.items()}
    print(f"cold start (spawn → initialize → tools/list), median of {rounds}:")
    print(f"  videogen ({counts['videogen']} tools): {ms(cold_v)}   bare ({counts['bare']} tool): {ms(cold_b)}   "
          f"ratio {cold_v / cold_b:.2f}")
    cpu_v, cpu_b = statistics.median(cpu["videogen"]), statistics.median(cpu["bare"])
    print(f"  CPU time of the whole process (start, answer, exit): videogen {ms(cpu_v)}   bare {ms(cpu_b)}   "
          f"ratio {cpu_v / cpu_b:.2f}   (API keys {'set' if keys else 'unset'}"
          + (f"; stdin held open {linger:g} s after tools/list)" if linger else ")"))
    print(f"  tools/list result: videogen {sizes['videogen'] / 1024:.1f} KiB, bare {sizes['bare'] / 1024:.1f} KiB")
    print(f"tools/call, median of {calls} sequential calls over stdio:")
    print(f"  videogen estimate_cost: {ms(call_v)} (p95 {ms(sorted(calls_s['videogen'])[int(calls * 0.95)])})   "
          f"bare echo: {ms(call_b)} (p95 {ms(sorted(calls_s['bare'])[int(calls * 0.95)])})   "
          f"ratio {call_v / call_b:.2f}")
    print("peak RSS (VmHWM) after the calls:")
    print("  " + "   ".join(f"{name}: {value:.0f} MiB" if value else f"{name}: n/a" for name, value in rss.items()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="cold starts per server (default 10)")
    parser.add_argument("--calls", type=int, default=300, help="timed calls per server (default 300)")
    parser.add_argument("--no-keys", action="store_true", help="start videogen without FAL_KEY / WAVESPEED_API_KEY")
    parser.add_argument("--linger", type=float, default=0.0, metavar="S",
                        help="keep each cold-start connection open S seconds after tools/list (default 0)")
    options = parser.parse_args()
    asyncio.run(main(options.rounds, options.calls, not options.no_keys, options.linger))
