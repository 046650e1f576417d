"""Property-based fuzzing of every tool's schema, through the Toolkit and through the MCP server (issue 10).

Cases come from each tool's own JSON Schema (``hypothesis-jsonschema``: what a careful client
sends) mixed with hostile JSON (deep nesting, integers longer than Python prints, NaN, wrong types,
unknown names) and schema-valid objects with one value made hostile. Whatever arrives, the answer is
a job or an invalid-argument error — never an internal error — and a refused call changes nothing
in the books. Each tool gets a quick pass by default; ``pytest --fuzz-long tests/test_fuzz.py``
runs thousands of cases per tool.

Hypothesis drives a synchronous test, so the simulator, the Toolkit and the MCP client live on an
event loop in a background thread for the whole test and each case is one call into it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from mcp import Client

from agent_tools.agent.tools import tool_set
from agent_tools.catalog import CATALOG
from agent_tools.config import Settings
from agent_tools.errors import UserError
from agent_tools.mcp_server.server import build_server
from agent_tools.simulator import SimSettings, Simulator
from agent_tools.toolkit import Account, Toolkit

ALICE = Account("alice")
INTERNAL = "unexpected internal error"
MODES = ("default", "compact")
"""The MCP server's two tool sets: one tool per model, or a few generic ones (generate, describe_model)."""
MCP_TOOLS = [(mode, tool.name) for mode in MODES for tool in tool_set(mode)]  # type: ignore[arg-type]


class Background:
    """An event loop in a thread: the servers stay up across Hypothesis's many cases."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class Rig:
    """The simulator, a Toolkit on a real file, and an MCP client session on the real server."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.calls: dict[str, asyncio.Queue[Any]] = {}
        self.sessions: list[asyncio.Task[None]] = []
        self.tools: dict[str, dict[str, dict[str, Any]]] = {}  # mode → tool → input schema

    async def start(self) -> None:
        self.sim = Simulator(SimSettings(queue_seconds=0, run_seconds=0.02))
        await self.sim.start(host="127.0.0.1", port=0)
        self.kit = await Toolkit.open(Settings.model_validate({
            "fal": {"key": "k", "queue_url": self.sim.fal_queue_url, "rest_url": self.sim.fal_rest_url},
            "wavespeed": {"key": "k", "base_url": self.sim.wavespeed_base_url},
            "storage": {"database": str(self.tmp_path / "fuzz.db"), "media_dir": str(self.tmp_path / "media")},
            "polling": {"initial_seconds": 0.01, "max_seconds": 0.05}, "quotas": {"default": {}}}))
        for mode in MODES:
            self.calls[mode] = asyncio.Queue()
            ready = asyncio.get_running_loop().create_future()
            self.sessions.append(asyncio.create_task(self._serve(mode, ready)))
            self.tools[mode] = await ready

    async def _serve(self, mode: str, ready: asyncio.Future[Any]) -> None:
        """One task owns each client session (the SDK's task groups must be left in the task that entered them)."""
        server = build_server(self.kit, lambda ctx: ALICE, local_files=False, tools=mode)  # type: ignore[arg-type]
        async with Client(server, mode="legacy") as client:
            ready.set_result({t.name: t.input_schema for t in (await client.list_tools()).tools})
            while (item := await self.calls[mode].get()) is not None:
                name, arguments, answer = item
                try:
                    answer.set_result(await client.call_tool(name, arguments))
                except BaseException as exc:  # handed to the test, which fails on it
                    answer.set_exception(exc)

    async def call_mcp(self, name: str, arguments: Any, mode: str = "default") -> Any:
        answer = asyncio.get_running_loop().create_future()
        await self.calls[mode].put((name, arguments, answer))
        return await answer

    async def holds(self) -> int:
        return await self.kit.db.scalar("SELECT COUNT(*) FROM holds")

    async def stop(self) -> None:
        for queue in self.calls.values():
            await queue.put(None)
        await asyncio.gather(*self.sessions)
        await self.kit.close()
        await self.sim.stop()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory):
    background = Background()
    made = Rig(tmp_path_factory.mktemp("fuzz"))
    background.run(made.start())
    yield background, made
    background.run(made.stop())
    background.close()


# -- hostile JSON -------------------------------------------------------------------------------

def nested(depth: int) -> Any:
    value: Any = "x"
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                   st.text(max_size=40), st.sampled_from(["", "data:image/png;base64,AAAA", "/etc/passwd",
                                                          "http://169.254.169.254/", "💥" * 5]))
JSON = st.recursive(LEAVES, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                   st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                    max_leaves=12)
# Nesting stops at 200 here: deeper, the MCP client itself refuses to serialise the request.
HOSTILE = st.one_of(JSON, st.integers(20, 200).map(nested), st.integers(4_301, 6_000).map(lambda n: 10**n),
                    st.integers(2**63, 2**80), st.just(float("nan")), st.just(float("inf")), st.text(min_size=1))


def valid(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of ``schema``. Objects are assembled here, property by property (each value from
    ``hypothesis_jsonschema.from_schema``): its own object strategy relies on a Hypothesis internal
    that recent Hypothesis releases changed."""
    if "anyOf" in schema:
        return st.one_of([valid({**{k: v for k, v in schema.items() if k != "anyOf"}, **branch})
                          for branch in schema["anyOf"]])
    if schema.get("type") == "object" and "properties" in schema:
        props = schema["properties"]
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries({k: valid(props[k]) for k in sorted(required)},
                                     optional={k: valid(v) for k, v in props.items() if k not in required})
    if schema.get("type") == "object":  # free-form (e.g. estimate_cost's arguments)
        return st.dictionaries(st.text(max_size=8), JSON, max_size=4)
    return from_schema(schema)


def cases(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Schema-valid objects, objects with one value made hostile, and hostile objects."""
    names = sorted(schema.get("properties", {})) or ["x"]
    valid_ = valid(schema)
    spoiled = st.tuples(valid_, st.sampled_from(names), HOSTILE).map(lambda t: {**t[0], t[1]: t[2]})
    wild = st.dictionaries(st.one_of(st.sampled_from(names), st.text(max_size=8)), HOSTILE, max_size=4)
    return st.one_of(valid_, spoiled, wild)


# -- the properties ----------------------------------------------------------------------------

@pytest.mark.parametrize("tool", sorted(CATALOG))
def test_every_model_tool_through_the_toolkit(rig, tool, fuzz_examples):
    background, made = rig

    async def one(arguments: Any) -> None:
        before = await made.holds()
        try:
            job = await made.kit.generate(ALICE, tool, arguments, wait=0, allow_local_files=False)
        except UserError:
            assert await made.holds() == before, "a refused call reserved nothing"
            return
        assert job.tool == tool and job.estimate_micros >= 0

    @settings(max_examples=fuzz_examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(cases(CATALOG[tool].schema()))
    def property_(arguments: Any) -> None:
        background.run(one(arguments))

    property_()


def test_every_mcp_tool_is_fuzzed(rig):
    _, made = rig
    assert {(mode, name) for mode in MODES for name in made.tools[mode]} == set(MCP_TOOLS)


@pytest.mark.parametrize(("mode", "tool"), MCP_TOOLS, ids=[f"{m}-{t}" for m, t in MCP_TOOLS])
def test_every_tool_through_the_mcp_server(rig, mode, tool, fuzz_examples):
    background, made = rig
    schema = made.tools[mode][tool]
    if "wait_seconds" in schema.get("properties", {}):  # how long to wait is the caller's choice: keep it fast
        schema = {**schema, "properties": {**schema["properties"],
                                           "wait_seconds": {"type": "integer", "minimum": 0, "maximum": 0}}}

    async def one(arguments: Any) -> None:
        before = await made.holds()
        result = await made.call_mcp(tool, arguments, mode)
        text = " ".join(getattr(c, "text", "") for c in result.content)
        assert INTERNAL not in text, text
        if result.is_error:
            assert await made.holds() == before, f"a refused call reserved nothing: {text}"

    @settings(max_examples=fuzz_examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(cases(schema))
    def property_(arguments: Any) -> None:
        background.run(one(arguments))

    property_()


# -- the cases the issue names, fixed -----------------------------------------------------------

@pytest.mark.parametrize("arguments", [
    {"prompt": nested(200)},
    {"prompt": "x", "seed": 10**5_000},
    {"prompt": "x", "duration": float("inf")},
    {"prompt": "x" * 1_000_000},
    {"prompt": "x", "zzz": nested(100)},
], ids=["deep", "huge-int", "infinity", "megabyte-prompt", "deep-unknown-name"])
def test_named_hostile_arguments_are_invalid_arguments_everywhere(rig, arguments):
    background, made = rig
    before = background.run(made.holds())
    with pytest.raises(UserError, match="Invalid arguments"):
        background.run(made.kit.generate(ALICE, "pika_text_to_video", arguments, wait=0))
    with pytest.raises(UserError, match="nested more than"):  # far past Python's recursion limit too
        background.run(made.kit.generate(ALICE, "pika_text_to_video", {"prompt": nested(50_000)}, wait=0))
    result = background.run(made.call_mcp("pika_text_to_video", arguments))
    text = " ".join(getattr(c, "text", "") for c in result.content)
    assert result.is_error and INTERNAL not in text and "Invalid arguments" in text
    assert background.run(made.holds()) == before
