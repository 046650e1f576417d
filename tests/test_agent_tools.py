"""The agent tool sets (``agent.tools``) and their executor, in process and as the MCP compact mode.

The compact set (``list_models``, ``describe_model``, ``generate`` + job/cost/quota tools) is run
through the SDK's real ``Client`` in both protocol eras, against the simulator on loopback and a
real Toolkit; the executor is also called directly, as a chat agent would, with the OpenAI and
Anthropic exports of the same definitions.
"""

from __future__ import annotations

import json

import jsonschema
import pytest
from mcp import Client

from agent_tools.agent import tools as agent_tools
from agent_tools.agent.executor import Executor, UnknownAgentTool
from agent_tools.agent.schemas import WAIT_SECONDS
from agent_tools.catalog import CATALOG
from agent_tools.mcp_server.server import build_server
from agent_tools.toolkit import Account, Toolkit

from test_mcp_server import Progress, make_settings, sim, text_of  # noqa: F401  (sim is a fixture)

MODES = ["legacy", "auto"]
COMPACT = ["list_models", "recommend_models", "describe_model", "generate", "estimate_cost", "get_job", "wait_for_job",
           "cancel_job", "list_jobs", "get_quota"]
ALICE = Account("alice")


@pytest.fixture
async def kit(tmp_path, sim, database_url):
    """A Toolkit on each engine: a SQLite file, then a PostgreSQL schema."""
    toolkit = await Toolkit.open(make_settings(tmp_path, sim, database=database_url))
    yield toolkit
    await toolkit.close()


def compact(kit: Toolkit, account: Account = ALICE):
    return build_server(kit, lambda ctx: account, local_files=False, tools="compact")


# -- definitions -------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["mcp", "openai", "anthropic"])
def test_the_compact_set_exports_in_every_format_with_the_same_schemas(fmt):
    exported = agent_tools.export(fmt, "compact")
    definitions = agent_tools.tool_set("compact")
    assert [t.name for t in definitions] == COMPACT and len(exported) == len(COMPACT)
    for tool, out in zip(definitions, exported):
        schema = {"mcp": lambda: out["inputSchema"], "openai": lambda: out["function"]["parameters"],
                  "anthropic": lambda: out["input_schema"]}[fmt]()
        assert schema == tool.input_schema and schema["type"] == "object"
        jsonschema.Draft202012Validator.check_schema(schema)
    assert agent_tools.model_visible_bytes(definitions) <= 6_000


def test_the_default_set_has_one_tool_per_model_and_no_prompting_guides():
    tools = agent_tools.tool_set("default")
    assert [t.name for t in tools if t.model is not None] == list(CATALOG)
    assert all(t.model.prompt_guide not in t.description for t in tools if t.model is not None)
    assert agent_tools.model_visible_bytes(tools) <= 20_000
    with pytest.raises(ValueError, match="choose one of default, compact"):
        agent_tools.tool_set("tiny")


# -- the compact mode over MCP -------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
async def test_compact_mode_lists_describes_and_generates(kit, mode):
    progress = Progress()
    async with Client(compact(kit), mode=mode) as client:
        listed = [t.name for t in (await client.list_tools()).tools]
        images = await client.call_tool("list_models", {"category": "text-to-image"})
        cheap = await client.call_tool("list_models", {"max_cost_usd": 0.3})
        fox = await client.call_tool("list_models", {"query": "veo fast"})
        described = await client.call_tool("describe_model", {"model": "pika_text_to_video"})
        made = await client.call_tool("generate", {"model": "pika_text_to_video",
                                                   "arguments": {"prompt": "a fox", "duration": 10}},
                                      progress_callback=progress)
        priced = await client.call_tool("estimate_cost", {"model": "veo3_fast", "arguments": {"duration": "4s"}})
    assert listed == COMPACT
    assert [m["tool"] for m in images.structured_content["models"]] == ["hunyuan_image_v3"]
    assert cheap.structured_content["models"] and all(
        m["default_cost_usd"] <= 0.3 for m in cheap.structured_content["models"])
    assert {m["tool"] for m in fox.structured_content["models"]} == {"veo3_fast", "veo3_1_fast_first_last_frame"}
    data = described.structured_content
    assert data["input_schema"] == CATALOG["pika_text_to_video"].schema()  # the whole schema, examples included
    assert data["prompt_guide"] == CATALOG["pika_text_to_video"].prompt_guide
    assert "How to prompt" in text_of(described)
    assert not made.is_error, text_of(made)
    assert made.structured_content["state"] == "succeeded" and made.structured_content["cost_usd"] == 0.4
    assert progress.messages and all(made.structured_content["job_id"] in m for m in progress.messages)
    assert priced.structured_content["cost_usd"] == 1.6


async def test_compact_generate_refuses_bad_arguments_with_the_per_model_tools_words(kit):
    bad = {"prompt": "x", "duration": 7, "colour": "red"}
    async with Client(compact(kit), mode="legacy") as client:
        via_generate = await client.call_tool("generate", {"model": "pika_text_to_video", "arguments": bad})
        unknown = await client.call_tool("generate", {"model": "pika_txt_to_video", "arguments": {"prompt": "x"}})
        not_object = await client.call_tool("generate", {"model": "pika_text_to_video", "arguments": "[1]"})
        missing = await client.call_tool("generate", {"arguments": {}})
        jobs = await client.call_tool("list_jobs", {})
    async with Client(build_server(kit, lambda ctx: ALICE, local_files=False, tools="default"),
                      mode="legacy") as client:
        via_tool = await client.call_tool("pika_text_to_video", bad)
    assert via_generate.is_error and text_of(via_generate) == text_of(via_tool)
    assert "duration: 7 is not allowed; expected one of 5, 10" in text_of(via_generate)
    assert unknown.is_error and "Did you mean 'pika_text_to_video'" in text_of(unknown)
    assert "Nothing was submitted or charged." in text_of(unknown)
    assert not_object.is_error and "arguments" in text_of(not_object)
    assert missing.is_error and "'model' is a required property" in text_of(missing)
    assert jobs.structured_content == {"jobs": []}


async def test_compact_generate_accepts_arguments_sent_as_a_json_string(kit):
    async with Client(compact(kit), mode="legacy") as client:
        made = await client.call_tool("generate", {"model": "pika_text_to_video", WAIT_SECONDS: 0,
                                                   "arguments": json.dumps({"prompt": "a fox"})})
    assert not made.is_error, text_of(made)
    await kit.cancel_job(ALICE, made.structured_content["job_id"])


# -- the executor without MCP ---------------------------------------------------------------------

async def test_the_executor_runs_tools_for_an_agent_loop(kit):
    executor = Executor(kit, mode="compact")
    made = await executor.call(ALICE, "generate", {"model": "hailuo_02_text_to_video",
                                                   "arguments": {"prompt": "waves"}})
    assert not made.is_error and made.job is not None and made.job.state.value == "succeeded"
    assert made.data["cost_status"] == "charged" and "path" not in made.data["outputs"][0]
    quota = await executor.call(ALICE, "get_quota", {})
    assert quota.data == {"account": "alice", "budget": []}
    refused = await executor.call(ALICE, "list_jobs", {"all_accounts": True})
    assert refused.is_error and "Only admins" in refused.text
    with pytest.raises(UnknownAgentTool):
        await executor.call(ALICE, "pika_text_to_video", {"prompt": "x"})  # not in the compact set
