"""The MCP server in process, through the SDK's real ``Client``, in both protocol eras.

``legacy`` is the 2025-11-25 initialize handshake over in-memory streams (Claude Desktop's era);
``auto`` is the stateless 2026-07-28 per-request protocol. The providers are the simulator on
loopback and the Toolkit is real (SQLite, downloads, the ledger), so what passes here is what
a host gets.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re

import jsonschema
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from agent_tools.mcp_server import server as mcp_server
from agent_tools.catalog import CATALOG
from agent_tools.config import Settings
from agent_tools.agent.schemas import WAIT_SECONDS, WAIT_SECONDS_PROPERTY
from agent_tools.agent.tools import generation_input_schema, lean_properties, model_visible_bytes, tool_set
from agent_tools.mcp_server.server import VideogenServer, build_server
from agent_tools.simulator import SimSettings, Simulator
from agent_tools.toolkit import Account, Toolkit

MODES = ["legacy", "auto"]
STATUS_TOOLS = {"list_models", "recommend_models", "estimate_cost", "get_job", "wait_for_job", "cancel_job", "list_jobs", "get_quota"}
CLAUDE_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MIB = 1024 * 1024
PNG_1PX = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde"
           b"\x00\x00\x00\x0cIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7V\xbd\xfa\x00\x00\x00\x00IEND\xaeB`\x82")
ALICE = Account("alice")
BOB = Account("bob")


@pytest.fixture
async def sim():
    simulator = Simulator(SimSettings(queue_seconds=0.05, run_seconds=0.15))
    await simulator.start(host="127.0.0.1", port=0)
    yield simulator
    await simulator.stop()


def make_settings(tmp_path, sim: Simulator, quotas: dict | None = None, database: str | None = None) -> Settings:
    return Settings.model_validate({
        "fal": {"key": "sim-fal-key", "queue_url": sim.fal_queue_url, "rest_url": sim.fal_rest_url},
        "wavespeed": {"key": "sim-ws-key", "base_url": sim.wavespeed_base_url},
        "storage": {"database": database or str(tmp_path / "videogen.db"), "media_dir": str(tmp_path / "media")},
        "polling": {"initial_seconds": 0.02, "max_seconds": 0.1, "factor": 1.5},
        "quotas": {"default": quotas or {}},
    })


@pytest.fixture
async def kit(tmp_path, sim, database_url):
    """A Toolkit on each engine: a SQLite file, then a PostgreSQL schema."""
    toolkit = await Toolkit.open(make_settings(tmp_path, sim, database=database_url))
    yield toolkit
    await toolkit.close()


def serve(kit: Toolkit, account: Account | None = None, *, local_files: bool = True):
    who = account or kit.local_account()
    return build_server(kit, lambda ctx: who, local_files=local_files)


class Progress:
    def __init__(self) -> None:
        self.values: list[float] = []
        self.messages: list[str] = []

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.values.append(progress)
        self.messages.append(message or "")


def size_of(result) -> int:
    return len(result.model_dump_json(by_alias=True, exclude_none=True).encode())


def text_of(result) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


# -- tools/list ---------------------------------------------------------------------------------

def constraints(schema):
    """A schema minus the prose (descriptions, examples): what validation and defaults depend on."""
    if isinstance(schema, dict):
        return {k: constraints(v) for k, v in schema.items() if k not in ("description", "examples")}
    if isinstance(schema, list):
        return [constraints(v) for v in schema]
    return schema


@pytest.mark.parametrize("mode", MODES)
async def test_every_tool_is_listed_with_the_catalogs_exact_schema(kit, mode):
    async with Client(serve(kit), mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == set(CATALOG) | STATUS_TOOLS and len(tools) == 23
    for name, spec in CATALOG.items():
        tool = tools[name]
        catalog = spec.schema()
        # The one documented extra: wait_seconds, added after the catalog's own properties.
        assert tool.input_schema == generation_input_schema(spec)
        assert list(tool.input_schema["properties"]) == [*catalog["properties"], WAIT_SECONDS]
        assert tool.input_schema["properties"][WAIT_SECONDS] == WAIT_SECONDS_PROPERTY
        # Every parameter, type, enum, range, default and required field is the catalog's own;
        # only examples and descriptions that restate a name are left out.
        assert {k: v for k, v in tool.input_schema["properties"].items() if k != WAIT_SECONDS} == \
            lean_properties(catalog)["properties"]
        assert constraints({**tool.input_schema, "properties": {
            k: v for k, v in tool.input_schema["properties"].items() if k != WAIT_SECONDS}}) == constraints(catalog)
        assert tool.title == spec.title and "Price:" in tool.description
        assert "How to prompt" not in tool.description and spec.prompt_guide not in tool.description
        annotations = tool.annotations
        assert (annotations.read_only_hint, annotations.destructive_hint, annotations.idempotent_hint,
                annotations.open_world_hint) == (False, False, False, True)
    for name in STATUS_TOOLS - {"cancel_job"}:
        assert tools[name].annotations.read_only_hint is True, name
    assert tools["cancel_job"].annotations.destructive_hint is True
    for tool in tools.values():
        assert CLAUDE_TOOL_NAME.match(tool.name)
        assert tool.output_schema and tool.output_schema["type"] == "object"
        jsonschema.Draft202012Validator.check_schema(tool.input_schema)
        jsonschema.Draft202012Validator.check_schema(tool.output_schema)
        assert tool.description


def test_informative_parameter_descriptions_stay_and_restating_ones_go():
    hailuo = generation_input_schema(CATALOG["hailuo_02_text_to_video"])["properties"]
    assert "not supported for 1080p" in hailuo["duration"]["description"]
    assert "description" not in generation_input_schema(CATALOG["veo3_fast"])["properties"]["resolution"]
    assert "%33 less" in generation_input_schema(CATALOG["veo3_fast"])["properties"]["generate_audio"]["description"]


def wire_sizes(tools) -> tuple[int, int]:
    """(model-visible bytes, whole tools/list bytes) as compact JSON, the way the issue measures them."""
    visible = [{k: v for k, v in t.model_dump(by_alias=True, exclude_none=True, mode="json").items()
                if k in ("name", "title", "description", "inputSchema")} for t in tools]
    whole = {"tools": [t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in tools]}
    dump = lambda v: len(json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode())  # noqa: E731
    return dump(visible), dump(whole)


@pytest.mark.parametrize("tools, visible_max, whole_max", [("default", 20_000, 40_000), ("compact", 6_000, 40_000)])
async def test_the_tool_list_stays_within_its_context_budget(kit, tools, visible_max, whole_max):
    async with Client(build_server(kit, lambda ctx: ALICE, local_files=False, tools=tools), mode="legacy") as client:
        listed = (await client.list_tools()).tools
    visible, whole = wire_sizes(listed)
    assert visible <= visible_max and whole <= whole_max, (visible, whole)
    assert abs(visible - model_visible_bytes(tool_set(tools))) < 1_000  # the bench figure measures the same


# -- generation ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
async def test_a_generation_reports_progress_and_returns_url_path_seed_cost_and_budget(kit, mode, tmp_path):
    progress = Progress()
    async with Client(serve(kit), mode=mode) as client:
        result = await client.call_tool("pika_text_to_video", {"prompt": "a fox in the snow", "duration": 10},
                                        progress_callback=progress)
    assert not result.is_error, text_of(result)
    data = result.structured_content
    assert data["state"] == "succeeded" and data["done"] and data["cost_status"] == "charged"
    assert data["cost_usd"] == 0.4 and isinstance(data["seed"], int)
    [output] = data["outputs"]
    assert output["url"].startswith("http://127.0.0.1") and output["path"].startswith(str(tmp_path / "media"))
    assert data["budget"] == []  # no limits configured for these tests
    text = text_of(result)
    assert output["url"] in text and output["path"] in text and "$0.40 charged" in text
    assert progress.values and progress.values == sorted(set(progress.values))
    assert any("queued" in m for m in progress.messages) and any("succeeded" in m for m in progress.messages)
    job_id = data["job_id"]
    assert all(re.match(rf"\[\w+( #\d+)? · \d+ s\] job {job_id}: ", m) for m in progress.messages)
    assert size_of(result) < 16_000


@pytest.mark.parametrize("mode", MODES)
async def test_an_image_result_carries_a_small_png_preview(kit, mode):
    async with Client(serve(kit), mode=mode) as client:
        result = await client.call_tool("hunyuan_image_v3", {"prompt": "a poster", "image_size": "landscape_16_9"})
    assert not result.is_error, text_of(result)
    [image] = [block for block in result.content if block.type == "image"]
    png = base64.b64decode(image.data)
    assert image.mime_type == "image/png" and png.startswith(b"\x89PNG")
    assert png[16:24] == (256).to_bytes(4, "big") + (144).to_bytes(4, "big")
    assert size_of(result) < MIB // 4


async def test_several_images_get_smaller_previews_within_the_budget(kit):
    async with Client(serve(kit), mode="legacy") as client:
        result = await client.call_tool("hunyuan_image_v3", {"prompt": "posters", "num_images": 4})
    images = [block for block in result.content if block.type == "image"]
    assert len(images) == 4 and len(result.structured_content["outputs"]) == 4
    assert all(max(int.from_bytes(base64.b64decode(i.data)[16:20], "big"),
                   int.from_bytes(base64.b64decode(i.data)[20:24], "big")) == 128 for i in images)
    assert size_of(result) < MIB // 4


@pytest.mark.parametrize("mode", MODES)
async def test_a_job_that_outlasts_wait_seconds_returns_its_id_and_wait_for_job_finishes_it(kit, mode, monkeypatch):
    monkeypatch.setattr(mcp_server, "HEARTBEAT_SECONDS", 0.2)
    heard = Progress()
    async with Client(serve(kit), mode=mode) as client:
        first = await client.call_tool("pika_text_to_video", {"prompt": "[sim:slow=1.6] a slow fox", WAIT_SECONDS: "1"},
                                       progress_callback=heard)
        assert not first.is_error, text_of(first)
        assert any("still working" in m for m in heard.messages)  # a heartbeat while nothing changes
        data = first.structured_content
        assert not data["done"] and data["state"] in ("queued", "running")
        assert data["cost_status"] == "reserved" and data["cost_usd"] == 0.2
        assert f'wait_for_job with job_id "{data["job_id"]}"' in text_of(first)
        progress = Progress()
        done = await client.call_tool("wait_for_job", {"job_id": data["job_id"], WAIT_SECONDS: 20},
                                      progress_callback=progress)
    assert not done.is_error and done.structured_content["state"] == "succeeded"
    assert done.structured_content["outputs"][0]["url"]
    assert progress.messages and "succeeded" in progress.messages[-1]


async def test_wait_seconds_zero_returns_at_once_and_cancel_costs_nothing(kit):
    async with Client(serve(kit), mode="legacy") as client:
        first = await client.call_tool("pika_text_to_video", {"prompt": "[sim:slow=30] x", WAIT_SECONDS: 0})
        job_id = first.structured_content["job_id"]
        assert first.structured_content["state"] == "queued"
        cancelled = await client.call_tool("cancel_job", {"job_id": job_id})
        assert not cancelled.is_error, text_of(cancelled)
        assert cancelled.structured_content["message"]
        final = await client.call_tool("wait_for_job", {"job_id": job_id, WAIT_SECONDS: 5})
    assert final.structured_content["state"] == "cancelled"
    assert final.structured_content["cost_usd"] == 0 and final.structured_content["cost_status"] == "not charged"


async def test_a_failed_generation_is_an_error_result_that_says_what_to_do(kit):
    async with Client(serve(kit), mode="legacy") as client:
        result = await client.call_tool("pika_text_to_video", {"prompt": "[sim:content_policy] x"})
        again = await client.call_tool("get_job", {"job_id": result.structured_content["job_id"]})
    assert result.is_error
    assert result.structured_content["state"] == "failed" and result.structured_content["cost_usd"] == 0
    assert "rephrase the prompt" in text_of(result) and "Nothing was charged" in text_of(result)
    assert not again.is_error and again.structured_content["state"] == "failed"  # looking it up worked


# -- errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
async def test_quota_exhaustion_is_a_clear_error_and_charges_nothing(tmp_path, sim, mode):
    async with await Toolkit.open(make_settings(tmp_path, sim, {"daily_usd": "0.30"})) as kit:
        async with Client(serve(kit, ALICE), mode=mode) as client:
            ok = await client.call_tool("pika_text_to_video", {"prompt": "one"})
            assert not ok.is_error
            assert ok.structured_content["budget"][0]["remaining"] == pytest.approx(0.1)
            assert "Budget left: $0.10 of $0.30 today (resets at 00:00 UTC" in text_of(ok)
            refused = await client.call_tool("pika_text_to_video", {"prompt": "two"})
            quota = await client.call_tool("get_quota", {})
            jobs = await client.call_tool("list_jobs", {})
    assert refused.is_error and refused.structured_content is None
    text = text_of(refused)
    assert "costs $0.20; you have $0.10 left today (resets at 00:00 UTC, in" in text
    assert "Nothing was submitted or charged." in text
    assert quota.structured_content["budget"][0]["used"] == pytest.approx(0.2)
    assert len(jobs.structured_content["jobs"]) == 1


async def test_invalid_arguments_name_every_problem_and_allowed_values(kit):
    async with Client(serve(kit), mode="legacy") as client:
        result = await client.call_tool("pika_text_to_video",
                                        {"prompt": "x", "duration": 7, WAIT_SECONDS: 99, "colour": "red"})
        jobs = await client.call_tool("list_jobs", {})
    text = text_of(result)
    assert result.is_error and "3 problems" in text
    assert "wait_seconds: 99 is not allowed; expected an integer from 0 to 55" in text
    assert "duration: 7 is not allowed; expected one of 5, 10" in text
    assert "colour: not a parameter of pika_text_to_video" in text
    assert jobs.structured_content == {"jobs": []}


async def test_status_tools_check_their_arguments(kit):
    async with Client(serve(kit), mode="legacy") as client:
        bad_limit = await client.call_tool("list_jobs", {"limit": 500})
        no_id = await client.call_tool("get_job", {})
        unknown = await client.call_tool("get_job", {"job_id": "nope"})
        bad_tool = await client.call_tool("estimate_cost", {"tool": "sora_3"})
    assert bad_limit.is_error and "limit: 500 is greater than the maximum of 50" in text_of(bad_limit)
    assert no_id.is_error and "'job_id' is a required property" in text_of(no_id)
    assert unknown.is_error and "No job 'nope'" in text_of(unknown)
    assert bad_tool.is_error and "sora_3" in text_of(bad_tool)


async def test_an_unknown_tool_is_a_protocol_error(kit):
    async with Client(serve(kit), mode="legacy") as client:
        with pytest.raises(MCPError, match="Unknown tool 'make_movie'"):
            await client.call_tool("make_movie", {})


async def test_unexpected_failures_are_generic_and_logged_without_secrets(kit, monkeypatch, caplog):
    async def broken(account):
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr(kit, "quota_status", broken)
    with caplog.at_level(logging.ERROR, logger="agent_tools.mcp_server"):
        async with Client(serve(kit), mode="legacy") as client:
            result = await client.call_tool("get_quota", {})
    text = text_of(result)
    assert result.is_error and "unexpected internal error running get_quota (reference " in text
    assert "hunter2" not in text and "RuntimeError" not in text
    reference = re.search(r"reference (\w+)", text).group(1)
    assert any(reference in r.getMessage() and r.exc_info for r in caplog.records)


# -- inputs and accounts -------------------------------------------------------------------------

async def test_a_local_image_path_is_uploaded_when_local_files_are_allowed(kit, tmp_path, sim):
    image = tmp_path / "still.png"
    image.write_bytes(PNG_1PX)
    async with Client(serve(kit, local_files=True), mode="legacy") as client:
        result = await client.call_tool("pika_image_to_video", {"prompt": "it moves", "image_url": str(image)})
    assert not result.is_error, text_of(result)
    job = await kit.get_job(kit.local_account(), result.structured_content["job_id"])
    # uploaded (small files as a data URI, larger ones to the provider's storage): the provider got no path
    assert job.params["image_url"].startswith(("data:image/png", sim.base_url))


async def test_a_local_image_path_is_refused_without_local_files(kit, tmp_path):
    image = tmp_path / "still.png"
    image.write_bytes(PNG_1PX)
    async with Client(serve(kit, ALICE, local_files=False), mode="auto") as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        result = await client.call_tool("pika_image_to_video", {"prompt": "x", "image_url": str(image)})
        jobs = await client.call_tool("list_jobs", {})
    assert result.is_error and "local file paths are not accepted here" in text_of(result)
    assert "https://" in text_of(result) and jobs.structured_content == {"jobs": []}
    assert "local file path" not in tools["pika_image_to_video"].description.replace("local file paths are", "")


async def test_json_string_lists_are_accepted(kit):
    urls = ["https://example.com/a.png", "https://example.com/b.png"]
    async with Client(serve(kit), mode="legacy") as client:
        result = await client.call_tool("veo3_1_reference_to_video",
                                        {"prompt": "x", "image_urls": json.dumps(urls), WAIT_SECONDS: 0})
    assert not result.is_error, text_of(result)
    job = await kit.get_job(kit.local_account(), result.structured_content["job_id"])
    assert job.params["image_urls"] == urls
    await kit.cancel_job(kit.local_account(), job.id)


async def test_accounts_see_only_their_own_jobs(kit):
    async with Client(serve(kit, ALICE), mode="legacy") as alice:
        made = await alice.call_tool("pika_text_to_video", {"prompt": "mine"})
    job_id = made.structured_content["job_id"]
    async with Client(serve(kit, BOB), mode="legacy") as bob:
        peek = await bob.call_tool("get_job", {"job_id": job_id})
        cancel = await bob.call_tool("cancel_job", {"job_id": job_id})
        listed = await bob.call_tool("list_jobs", {})
        everyone = await bob.call_tool("list_jobs", {"all_accounts": True})
    assert peek.is_error and cancel.is_error and f"No job '{job_id}'" in text_of(peek)
    assert listed.structured_content == {"jobs": []}
    assert everyone.is_error and "Only admins" in text_of(everyone)


# -- catalog and budget tools --------------------------------------------------------------------

async def test_list_models_and_estimate_cost(tmp_path, sim):
    async with await Toolkit.open(make_settings(tmp_path, sim, {"daily_usd": "3"})) as kit:
        async with Client(serve(kit, ALICE), mode="auto") as client:
            models = await client.call_tool("list_models", {})
            images = await client.call_tool("list_models", {"category": "text-to-image"})
            cheap = await client.call_tool("estimate_cost", {"tool": "pika_text_to_video", "arguments": {}})
            dear = await client.call_tool("estimate_cost", {
                "tool": "sora_2_pro_text_to_video",
                "arguments": {"duration": 8, "resolution": "1080p", WAIT_SECONDS: 10}})
            wrong = await client.call_tool("estimate_cost", {"tool": "pika_text_to_video",
                                                             "arguments": {"duration": 7}})
    entries = models.structured_content["models"]
    assert [m["tool"] for m in entries] == list(CATALOG)
    assert all(m["when_to_use"] and m["price"] and m["default_cost_usd"] > 0 for m in entries)
    assert all(m["tool"] in text_of(models) for m in entries)
    assert [m["tool"] for m in images.structured_content["models"]] == ["hunyuan_image_v3"]
    assert cheap.structured_content["missing_required"] == ["prompt"] and cheap.structured_content["fits_budget"]
    assert dear.structured_content["cost_usd"] == 4.0 and not dear.structured_content["fits_budget"]
    assert "more than the $3.00 left" in text_of(dear)
    assert wrong.is_error and "expected one of 5, 10" in text_of(wrong)


def test_a_catalog_parameter_named_wait_seconds_would_be_caught(monkeypatch):
    spec = CATALOG["pika_text_to_video"]
    monkeypatch.setattr(type(spec), "schema", lambda self: {"type": "object", "properties": {WAIT_SECONDS: {}}})
    with pytest.raises(RuntimeError, match="has its own 'wait_seconds'"):
        generation_input_schema(spec)


def test_the_server_is_built_from_the_toolkit_only(kit):
    server = VideogenServer(kit, lambda ctx: ALICE, local_files=False, origin={"transport": "test"})
    assert server.origin == {"surface": "mcp", "transport": "test"}
    assert [t.name for t in server.tools][:len(CATALOG)] == list(CATALOG)


# -- cancellation -------------------------------------------------------------------------------

async def cancel_mid_generation(client, tool: str, arguments: dict, when: str = "") -> tuple[str, list[str]]:
    """Call a generation and cancel the call (a user pressing stop) once a progress message names the
    job and contains ``when``; returns the job id the first message named and every message heard."""
    import anyio

    heard: list[str] = []
    seen = anyio.Event()

    async def on_progress(progress, total, message):
        heard.append(message or "")
        if re.search(r"job \w+:", message or "") and when in (message or ""):
            seen.set()

    async with anyio.create_task_group() as group:
        group.start_soon(lambda: client.call_tool(tool, arguments, progress_callback=on_progress))
        await seen.wait()
        group.cancel_scope.cancel()
    return re.search(r"job (\w+):", heard[0]).group(1), heard


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("when", ["", "[running"])  # before it reached the provider; while it runs there
async def test_a_cancelled_generation_call_cancels_its_job_and_costs_nothing(tmp_path, sim, mode, when):
    async with await Toolkit.open(make_settings(tmp_path, sim, {"daily_usd": "5"})) as kit:
        async with Client(serve(kit, ALICE), mode=mode) as client:
            job_id, heard = await cancel_mid_generation(client, "pika_text_to_video",
                                                        {"prompt": "[sim:slow=30] x"}, when)
            job = await kit.wait_for_job(ALICE, job_id, timeout=60)  # the server cancels it at the provider
            jobs = await client.call_tool("list_jobs", {})
        assert job.state.value == "cancelled", job
        [status] = [s for s in await kit.quota_status(ALICE) if s.kind == "daily"]
        assert status.used == 0 and status.remaining == 5_000_000  # the hold was released, nothing charged
        assert jobs.structured_content["jobs"][0]["job_id"] == job_id
        # The elapsed seconds are the wall clock's: a loaded machine may report 1 s in the first message.
        assert re.match(r"\[pending · \d+ s\] job ", heard[0]) and "reserved $0.20" in heard[0], heard[0]
        assert all(f"job {job_id}:" in m for m in heard)  # every notification names the job, the first included
        if when:
            assert any(m.startswith("[running") for m in heard) and job.request_id  # it was at the provider


async def test_a_job_the_provider_finishes_despite_the_cancel_is_kept_listed_and_charged(tmp_path):
    """A running job asked to stop may still finish (here the simulator takes 30 s to stop one that
    ends in 1 s): as with cancel_job, its output is kept and listed, and it is charged."""
    simulator = Simulator(SimSettings(queue_seconds=0.05, run_seconds=0.15, cancel_seconds=30))
    await simulator.start(host="127.0.0.1", port=0)
    try:
        async with await Toolkit.open(make_settings(tmp_path, simulator, {"daily_usd": "5"})) as kit:
            async with Client(serve(kit, ALICE), mode="legacy") as client:
                job_id, _ = await cancel_mid_generation(client, "pika_text_to_video", {"prompt": "[sim:slow=1] x"},
                                                        "[running")
                job = await kit.wait_for_job(ALICE, job_id, timeout=20)
                listed = await client.call_tool("list_jobs", {})
            [status] = [s for s in await kit.quota_status(ALICE) if s.kind == "daily"]
    finally:
        await simulator.stop()
    assert job.state.value == "succeeded" and job.outputs[0].get("path")
    assert listed.structured_content["jobs"][0]["output_url"]
    assert status.used == 200_000


def tasks_in(coroutine_name: str) -> set[asyncio.Task]:
    """The tasks whose chain of awaited coroutines passes through one called ``coroutine_name`` (its
    name, or its qualified name such as ``VideogenServer.call_tool``)."""
    found = set()
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        while coro is not None and hasattr(coro, "cr_code"):
            if coroutine_name in (coro.cr_code.co_name, coro.cr_code.co_qualname):
                found.add(task)
                break
            coro = coro.cr_await
    return found


@pytest.mark.filterwarnings("ignore:ping is removed")  # a legacy-era round trip, which this session is
async def test_a_call_cancelled_as_its_job_write_commits_leaves_the_session_working(tmp_path, sim):
    """The cancel lands while the job's move to "submitting" commits on the database thread: the
    write is kept and the cancel delivered afterwards, and that cancel must stay the SDK's own (its
    per-request scope absorbs it). It once escaped as an outside cancel into the session's task
    group, which ended the session: the next call got "Connection closed"."""
    import anyio
    from commits import hold_the_commit

    trace, committing, go = hold_the_commit("'submitting'")
    async with await Toolkit.open(make_settings(tmp_path, sim, {"daily_usd": "5"})) as kit:
        kit.db.quick_on_loop = False  # the commit must be on the database thread, where the trace holds it
        await kit.db.run(lambda conn: conn.set_trace_callback(trace))
        async with Client(serve(kit, ALICE), mode="legacy") as client:
            try:  # released before the client closes, which waits for the server's held call
                async with anyio.create_task_group() as group:
                    group.start_soon(lambda: client.call_tool("pika_text_to_video", {"prompt": "[sim:slow=30] x"}))
                    assert await anyio.to_thread.run_sync(committing.wait, 60), "the job's write never committed"
                    [handler] = tasks_in("VideogenServer.call_tool")  # the server's task for this call
                    group.cancel_scope.cancel()  # the client sends notifications/cancelled
                await client.send_ping()  # answered after the server read the cancel: it has landed
            finally:
                go.set()
            await asyncio.wait({handler})  # the cancelled call has ended on the server
            jobs = await client.call_tool("list_jobs", {})
            [listed] = jobs.structured_content["jobs"]
            job = await kit.wait_for_job(ALICE, listed["job_id"], timeout=60)
        [status] = [s for s in await kit.quota_status(ALICE) if s.kind == "daily"]
    assert job.state.value == "cancelled", job
    assert status.used == 0 and status.remaining == 5_000_000
