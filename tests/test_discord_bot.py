"""The Discord bot end to end without Discord: real ``discord.Interaction`` objects dispatched through
the real ``CommandTree`` and view store, a Toolkit on a real SQLite file and again on a real
PostgreSQL schema (``database_url``), the provider simulator on loopback, and both doors out of the
bot recorded: the interaction webhook (discord.py's webhook adapter) and the bot's own token
(``HTTPClient.request``). Nothing connects to Discord.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import discord
import pytest
from discord import app_commands
from discord.webhook import async_ as webhook_async

from agent_tools.cli.output import describe_job
from agent_tools.jobs import JobState
from agent_tools.simulator import SimSettings, Simulator
from agent_tools.toolkit import Account, Toolkit
from bots.discord.app import VideoBot
from bots.discord.delivery import Reply, reroll_arguments
from bots.discord.policy import DMS_OFF
from bots.discord.views import ANIMATE_TOOL

APP_ID = 910000000000000001
GUILD_ID = 910000000000000002
CHANNEL_ID = 910000000000000003
DM_CHANNEL_ID = 910000000000000004
ADMIN_ROLE = 910000000000000050
ALICE = {"id": "910000000000000011", "username": "alice", "discriminator": "0", "avatar": None, "global_name": "Alice"}
BOB = {"id": "910000000000000012", "username": "bob", "discriminator": "0", "avatar": None, "global_name": "Bob"}
ROOT = {"id": "910000000000000013", "username": "root", "discriminator": "0", "avatar": None, "global_name": "Root"}
CAROL = {"id": "910000000000000014", "username": "carol", "discriminator": "0", "avatar": None, "global_name": "Carol"}
BOT_USER = {"id": str(APP_ID), "username": "videogen", "discriminator": "0", "avatar": None, "bot": True}
MANAGE_GUILD = discord.Permissions(manage_guild=True, send_messages=True).value
_counter = itertools.count(1)


def snowflake() -> int:
    """A fresh id whose timestamp is now: ``Interaction.expires_at`` is derived from it."""
    return discord.utils.time_snowflake(datetime.now(timezone.utc)) + next(_counter)


def message_payload(content: str | None = None, *, message_id: int | None = None, components: Any = None,
                    attachments: Any = None, embeds: Any = None) -> dict[str, Any]:
    return {"id": str(message_id or snowflake()), "channel_id": str(CHANNEL_ID), "guild_id": str(GUILD_ID),
            "type": 0, "content": content or "", "author": BOT_USER, "attachments": attachments or [],
            "embeds": embeds or [], "mentions": [], "mention_roles": [], "mention_everyone": False, "pinned": False,
            "tts": False, "timestamp": datetime.now(timezone.utc).isoformat(), "edited_timestamp": None, "flags": 0,
            "components": components or []}


def _body(payload: Any, multipart: Any) -> Any:
    if multipart:
        return json.loads(next(p["value"] for p in multipart if p["name"] == "payload_json"))
    return payload


class Recorder(webhook_async.AsyncWebhookAdapter):
    """Every HTTP call the bot makes, through the interaction webhook or with the bot's token."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict[str, Any]] = []
        self.originals: dict[str, int] = {}  # interaction token → message id of its response
        self.webhook_error: discord.HTTPException | None = None
        self.bot_errors: dict[tuple[str, str], list[discord.HTTPException]] = {}
        """(method, path) → errors the next calls with the bot's token raise, one per call."""

    async def request(self, route, session, *, payload=None, multipart=None, files=None, params=None, **_):
        body = _body(payload, multipart)
        token = route.path.split("/")[3] if route.path.startswith("/webhooks") else ""
        path = route.url.split("/api/v10", 1)[-1]
        call = {"via": "webhook", "method": route.method, "path": path, "body": body,
                "files": [f.filename for f in (files or [])], "token": token}
        self.calls.append(call)
        if route.path.endswith("/callback"):
            data = (body or {}).get("data") or {}
            return {"interaction": {"id": str(route.webhook_id), "type": 2,
                                    "response_message_loading": body.get("type") == 5,
                                    "response_message_ephemeral": bool(data.get("flags", 0) & 64)}}
        if self.webhook_error is not None and route.method == "PATCH":
            raise self.webhook_error
        token = route.webhook_token
        if "@original" in route.path:
            if route.method == "DELETE":
                return None
            message_id = self.originals.setdefault(token, snowflake())
            return message_payload((body or {}).get("content"), message_id=message_id)
        return message_payload((body or {}).get("content"))

    async def bot_request(self, route, *, files=None, form=None, **kwargs):
        body = _body(kwargs.get("json"), form)
        path = route.url.split("/api/v10", 1)[-1]
        self.calls.append({"via": "bot", "method": route.method, "path": path,
                           "body": body, "files": [f.filename for f in (files or [])]})
        errors = self.bot_errors.get((route.method, path))
        if errors:
            raise errors.pop(0)
        if path == "/users/@me/channels":
            return {"id": str(DM_CHANNEL_ID), "type": 1, "recipients": [ALICE]}
        return message_payload((body or {}).get("content"))

    # views on the calls ---------------------------------------------------------------------

    def of(self, via: str | None = None, method: str | None = None, contains: str = "") -> list[dict[str, Any]]:
        return [c for c in self.calls if (via is None or c["via"] == via) and (method is None or c["method"] == method)
                and contains in c["path"]]

    def ephemeral_texts(self) -> list[str]:
        texts = []
        for c in self.calls:
            body = c["body"] or {}
            data = body.get("data", body) if c["path"].endswith("/callback") else body
            if data.get("flags", 0) & 64 and data.get("content"):
                texts.append(data["content"])
        return texts


def member(user: dict[str, Any], roles: tuple[int, ...] = (), permissions: int = MANAGE_GUILD) -> dict[str, Any]:
    return {"user": user, "roles": [str(r) for r in roles], "joined_at": "2024-01-01T00:00:00+00:00",
            "deaf": False, "mute": False, "permissions": str(permissions), "flags": 0}


BOT_PERMISSIONS = discord.Permissions(view_channel=True, send_messages=True, send_messages_in_threads=True,
                                      embed_links=True, attach_files=True).value


def interaction(bot: VideoBot, itype: int, data: dict[str, Any], user: dict[str, Any], *, roles: tuple[int, ...] = (),
                message: dict[str, Any] | None = None, app_permissions: int = BOT_PERMISSIONS, dm: bool = False,
                channel: dict[str, Any] | None = None) -> discord.Interaction:
    """A real interaction as Discord sends it: in the test server's #gen, or in the bot's DMs (``dm``)."""
    channel = channel or {"id": str(CHANNEL_ID), "type": 0, "guild_id": str(GUILD_ID), "name": "gen", "position": 0,
                          "permission_overwrites": [], "nsfw": False}
    payload = {"id": str(snowflake()), "application_id": str(APP_ID), "type": itype, "token": f"tok-{snowflake()}",
               "version": 1, "guild_id": str(GUILD_ID), "channel_id": channel["id"], "channel": channel,
               "member": member(user, roles), "locale": "en-US", "app_permissions": str(app_permissions),
               "entitlements": [], "attachment_size_limit": 10 * 1024 * 1024,
               "authorizing_integration_owners": {"0": str(GUILD_ID)}, "context": 0, "data": data}
    if dm:
        dm_channel = {"id": str(DM_CHANNEL_ID), "type": 1, "recipients": [user]}
        payload.update(channel_id=dm_channel["id"], channel=dm_channel, user=user, context=1,
                       authorizing_integration_owners={"0": str(GUILD_ID)})
        del payload["guild_id"], payload["member"]
    if message is not None:
        payload["message"] = message
    return discord.Interaction(state=bot._connection, data=payload)


def option(name: str, value: Any) -> dict[str, Any]:
    kind = {bool: 5, int: 4, float: 10}.get(type(value), 3)
    return {"name": name, "type": kind, "value": value}


async def slash(bot: VideoBot, path: str, user: dict[str, Any] = ALICE, *, roles: tuple[int, ...] = (),
                attachments: dict[str, dict[str, Any]] | None = None, where: dict[str, Any] | None = None,
                **values: Any) -> discord.Interaction:
    """Run ``/group sub`` (or ``/command``) with ``values`` as a user, through the real CommandTree."""
    names = path.split()
    options = [option(k, v) for k, v in values.items() if not isinstance(v, Attached)]
    resolved: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, Attached):
            options.append({"name": name, "type": 11, "value": value.id})
            resolved[value.id] = value.payload
    if isinstance(attachments, dict):
        resolved.update(attachments)
    if len(names) == 2:
        options = [{"type": 1, "name": names[1], "options": options}]
    data: dict[str, Any] = {"id": str(snowflake()), "name": names[0], "type": 1, "options": options}
    if resolved:
        data["resolved"] = {"attachments": resolved}
    inter = interaction(bot, 2, data, user, roles=roles, **(where or {}))
    try:
        await bot.tree._call(inter)
    except app_commands.AppCommandError as exc:
        await bot.tree._dispatch_error(inter, exc)
    return inter


class Attached:
    def __init__(self, filename: str = "cat.png", content_type: str = "image/png", size: int = 2048) -> None:
        self.id = str(snowflake())
        self.payload = {"id": self.id, "filename": filename, "size": size, "content_type": content_type,
                        "url": f"https://cdn.discordapp.com/attachments/{CHANNEL_ID}/{self.id}/{filename}",
                        "proxy_url": f"https://media.discordapp.net/attachments/{CHANNEL_ID}/{self.id}/{filename}",
                        "width": 64, "height": 64}


async def click(bot: VideoBot, custom_id: str, user: dict[str, Any] = ALICE, *, roles: tuple[int, ...] = (),
                attachments: list[dict[str, Any]] | None = None) -> discord.Interaction:
    """Press a button on a bot message, through the real view store (as after a restart: nothing cached)."""
    components = [{"type": 1, "components": [{"type": 2, "style": 1, "label": "x", "custom_id": custom_id}]}]
    message = message_payload("result", components=components, attachments=attachments)
    inter = interaction(bot, 3, {"custom_id": custom_id, "component_type": 2}, user, roles=roles, message=message)
    running = asyncio.all_tasks()
    bot._connection._view_store.dispatch_view(2, custom_id, inter)
    # the button's whole callback, however long the machine takes (its task is named by discord.py)
    await asyncio.gather(*(t for t in asyncio.all_tasks() - running
                           if t.get_name().startswith("discord-ui-dynamic-item-")))
    assert inter.response.is_done()
    return inter


PATIENCE = 60.0
"""Seconds a wait below gives up after: only so that a broken test fails instead of hanging, far
above what a loaded machine needs (a speed belongs in bench/, never in a test)."""
CHECKS_NEVER_SLOW = 3600.0
"""The bot's ``check_seconds`` in these tests: its checks always answer "in time", so which first
response a test sees never depends on the machine's load. The slow-checks tests set 0."""


async def until(condition, timeout: float = PATIENCE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def finish(bot: VideoBot) -> None:
    """Wait for every job the bot follows to be delivered (also one whose follower a click is still
    starting: every recorded delivery must be posted, not only the tasks that exist yet)."""
    deadline = time.monotonic() + PATIENCE
    while await bot.state.undelivered() or not all(t.done() for t in bot.deliveries.tasks.values()):
        assert time.monotonic() < deadline, "deliveries not finished in time"
        await asyncio.sleep(0.01)
    await asyncio.gather(*bot.deliveries.tasks.values())


# -- fixtures ------------------------------------------------------------------------------------

@pytest.fixture
async def sim():
    simulator = Simulator(SimSettings(queue_seconds=0.05, run_seconds=0.15))
    await simulator.start(host="127.0.0.1", port=0)
    yield simulator
    await simulator.stop()


def make_settings(tmp_path: Path, sim: Simulator, database: str | None = None, **overrides: Any):
    """The bot's settings against the simulator; ``database`` a SQLite path or a PostgreSQL URL
    (default: a file in the test's folder)."""
    from agent_tools.config import Settings

    data: dict[str, Any] = {
        "fal": {"key": "sim-fal-key", "queue_url": sim.fal_queue_url, "rest_url": sim.fal_rest_url},
        "wavespeed": {"key": "sim-ws-key", "base_url": sim.wavespeed_base_url},
        "storage": {"database": database or str(tmp_path / "videogen.db"), "media_dir": str(tmp_path / "media")},
        "polling": {"initial_seconds": 0.02, "max_seconds": 0.05, "factor": 1.5},
        "quotas": {"default": {"daily_usd": 5, "monthly_usd": 50}},
        "admins": {"discord_user_ids": [int(ROOT["id"])], "discord_role_ids": [ADMIN_ROLE]},
        "discord": {"confirm_above_usd": 50},  # price cards have tests of their own
    }
    for section, values in overrides.items():
        data.setdefault(section, {}).update(values)
    return Settings.model_validate(data)


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class ProviderTime:
    """The simulator's clock: held still (moved by hand with ``held``) until ``run()``, then it runs on
    from where it stood."""

    def __init__(self) -> None:
        self.held = 0.0
        self._since: float | None = None

    def run(self) -> None:
        self._since = time.monotonic()

    def __call__(self) -> float:
        return self.held + (0.0 if self._since is None else time.monotonic() - self._since)


async def make_bot(settings, recorder: Recorder | None = None, clock: Clock | None = None) -> VideoBot:
    toolkit = await Toolkit.open(settings)
    bot = VideoBot(toolkit, clock=clock or Clock(), progress_interval=0.05, check_seconds=CHECKS_NEVER_SLOW,
                   intents=discord.Intents.none())
    bot._connection.user = discord.ClientUser(state=bot._connection, data=BOT_USER)
    bot._connection.application_id = APP_ID
    bot.recorder = recorder or Recorder()
    bot.http.request = bot.recorder.bot_request  # the bot's own token: recorded, never sent
    webhook_async.async_context.set(bot.recorder)
    await bot.prepare()
    return bot


async def stop_bot(bot: VideoBot) -> None:
    await bot.deliveries.aclose()
    await bot.toolkit.close()


@pytest.fixture
async def bot(tmp_path, sim, database_url):
    """A bot on a SQLite file, and again on a PostgreSQL schema (``database_url`` is parametrized)."""
    made = await make_bot(make_settings(tmp_path, sim, database_url))
    yield made
    await stop_bot(made)


ON_SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
"""For a test of rendering or of Discord's transport, where the database only holds what other
tests check on both engines: run once, to keep the suite's time down."""


def embed_of(call: dict[str, Any]) -> dict[str, Any]:
    return (call["body"].get("embeds") or [{}])[0]


def field(embed: dict[str, Any], name: str) -> str:
    return next(f["value"] for f in embed.get("fields", []) if f["name"] == name)


def custom_ids(call: dict[str, Any]) -> list[str]:
    return [c["custom_id"] for row in call["body"].get("components") or [] for c in row["components"]]


async def jobs_of(bot: VideoBot, user: dict[str, Any] = ALICE):
    account = await bot.toolkit.account_for_discord(user["id"])
    return await bot.toolkit.list_jobs(account)


async def spent(bot: VideoBot) -> int:
    rows = await bot.toolkit.spend_report(bot.toolkit.local_account(), all_accounts=True)
    return sum(r.settled_micros + r.open_micros for r in rows)


# -- a generation, start to finish ------------------------------------------------------------------

async def test_video_from_command_to_posted_file(bot):
    rec = bot.recorder
    inter = await slash(bot, "text-to-video pika_text_to_video", prompt="a fox in the snow", duration=10)
    assert rec.calls[0]["path"].endswith("/callback") and rec.calls[0]["body"] == {"type": 5}  # deferred at once
    assert rec.calls[1]["method"] == "GET" and rec.calls[1]["path"].endswith("/messages/@original")
    await finish(bot)
    [job] = await jobs_of(bot)
    assert job.state is JobState.SUCCEEDED and job.params["duration"] == 10
    assert job.origin["channel_id"] == str(CHANNEL_ID) and job.origin["user_id"] == ALICE["id"]

    edits = rec.of("webhook", "PATCH", "@original")
    first, last = embed_of(edits[0]), embed_of(edits[-1])
    assert field(first, "Cost") == "$0.40 reserved\n10 s / 5 s × $0.20 (720p) = $0.40"
    assert field(first, "Budget left") == "$4.60 left today · $49.60 left this month"
    assert "duration=10" in field(first, "Settings") and first["footer"]["text"] == f"job {job.id}"
    assert custom_ids(edits[0]) == [f"vg:cancel:{job.id}"]
    assert field(last, "Status").startswith("✅ Done") and field(last, "Cost") == "$0.40 charged"
    assert custom_ids(edits[-1]) == []  # no Cancel once finished

    [post] = rec.of("webhook", "POST", f"/webhooks/{APP_ID}/{inter.token}")
    assert post["files"] and post["files"][0].endswith(".mp4")
    assert post["body"]["content"].startswith(f"<@{ALICE['id']}> your Pika 2.2 video is ready")
    assert post["body"]["allowed_mentions"]["users"] == [int(ALICE["id"])]
    assert custom_ids(post) == [f"vg:reroll:{job.id}", f"vg:edit:{job.id}", f"vg:delete:{job.id}"]
    assert rec.of("bot") == []  # all within the interaction's 15 minutes
    assert await bot.state.pending() == [] and await bot.state.is_delivered(job.id)


@ON_SQLITE_ONLY
async def test_progress_edits_are_throttled(tmp_path, sim, database_url):
    bot = await make_bot(make_settings(tmp_path, sim, database_url))
    bot.progress_interval = 0.25
    try:
        started = time.monotonic()
        await slash(bot, "text-to-video pika_text_to_video", prompt="[sim:slow=0.5] [sim:queue=8] a slow fox")
        await finish(bot)
        took = time.monotonic() - started
        edits = bot.recorder.of("webhook", "PATCH", "@original")
        assert 2 <= len(edits) <= took / 0.25 + 2
        statuses = [field(embed_of(e), "Status") for e in edits]
        assert any("position" in s for s in statuses) and statuses[-1].startswith("✅")
    finally:
        await stop_bot(bot)


async def test_image_with_size_options_and_animate_and_reroll(bot):
    rec = bot.recorder
    await slash(bot, "text-to-image hunyuan_image_v3", prompt="a lighthouse poster", width=640, height=360, num_images=2)
    await finish(bot)
    [job] = await jobs_of(bot)
    assert job.state is JobState.SUCCEEDED and job.params["image_size"] == {"width": 640, "height": 360}
    [post] = rec.of("webhook", "POST", "/webhooks/")
    assert len(post["files"]) == 2 and all(f.endswith(".png") for f in post["files"])
    assert custom_ids(post) == [f"vg:reroll:{job.id}", f"vg:edit:{job.id}", f"vg:delete:{job.id}",
                                f"vg:animate:{job.id}:0", f"vg:animate:{job.id}:1"]
    labels = [c["label"] for row in post["body"]["components"] for c in row["components"]]
    assert labels[3] == "1: Animate (MiniMax Hailuo 02 Standard, $0.27)"

    posted = [{"id": str(snowflake()), "filename": f"img{i}.png", "size": 10, "content_type": "image/png",
               "url": f"https://cdn.discordapp.com/attachments/1/2/img{i}.png", "proxy_url": "https://x/y.png"}
              for i in range(2)]
    await click(bot, f"vg:animate:{job.id}:1", attachments=posted)
    await finish(bot)
    animated = next(j for j in await jobs_of(bot) if j.tool == ANIMATE_TOOL)
    assert animated.params["image_url"] == posted[1]["url"]  # the clicked image, as Discord serves it
    assert animated.params["prompt"] == "a lighthouse poster" and animated.state is JobState.SUCCEEDED
    note = field(embed_of(rec.of("webhook", "PATCH", "@original")[-1]), "About")
    assert "Animating image 2" in note and "default image-to-video model" in note

    await click(bot, f"vg:reroll:{job.id}", BOB)
    assert rec.ephemeral_texts()[-1] == "Only the person who started this job, or a bot admin, can re-roll it."
    await click(bot, f"vg:reroll:{job.id}")
    await finish(bot)
    rerolled = [j for j in await jobs_of(bot) if j.tool == "hunyuan_image_v3" and j.id != job.id]
    assert len(rerolled) == 1 and rerolled[0].params["image_size"] == {"width": 640, "height": 360}
    assert rerolled[0].params["seed"] != job.params.get("seed")


async def test_attachments_become_the_models_image_urls(bot):
    first, second = Attached("a.png"), Attached("b.webp", "image/webp")
    await slash(bot, "reference-to-video veo3_1_reference_to_video", prompt="two friends on a bench", image_1=first, image_2=second,
                image_urls="https://example.com/c.png")
    await finish(bot)
    [job] = await jobs_of(bot)
    assert job.state is JobState.SUCCEEDED
    assert job.params["image_urls"] == [first.payload["url"], second.payload["url"], "https://example.com/c.png"]


def test_reroll_arguments_keep_everything_but_the_seed():
    from agent_tools.jobs import Job

    job = Job(id="abcdef0123456789", account="a", tool="wavespeed_hunyuan_video_i2v", provider="wavespeed",
              endpoint_id="x", params={"prompt": "p", "image": "https://x/y.png", "seed": 7, "duration": 10},
              state=JobState.SUCCEEDED, estimate_micros=1, created_at=0, updated_at=0)
    arguments = reroll_arguments(job)
    assert {k: v for k, v in arguments.items() if k != "seed"} == {"prompt": "p", "image": "https://x/y.png",
                                                                  "duration": 10}
    assert 0 <= arguments["seed"] <= 2147483647


async def test_a_job_that_failed_over_says_where_it_ran_and_why(bot):
    rec = bot.recorder
    inter = await slash(bot, "image-to-video hunyuan_video_image_to_video", prompt="a lighthouse [sim:fal_refuse=429]",
                        image_url="https://example.com/still.png")
    await finish(bot)
    [job] = await jobs_of(bot)
    assert job.state is JobState.SUCCEEDED and job.provider == "wavespeed"
    note = ("Ran on wavespeed (wavespeed_hunyuan_video_i2v) instead of fal (hunyuan_video_image_to_video): "
            "fal refused the submit (rate limited).")
    edits = rec.of("webhook", "PATCH", "@original")
    assert field(embed_of(edits[-1]), "Provider") == note
    [post] = rec.of("webhook", "POST", f"/webhooks/{APP_ID}/{inter.token}")
    assert f"-# {note}" in post["body"]["content"]
    await slash(bot, "jobs")
    assert f"`{job.id}` ✅ Done · Hunyuan Video (wavespeed_hunyuan_video_i2v) · on wavespeed instead of fal · " \
        in rec.ephemeral_texts()[-1]
    await slash(bot, "text-to-video pika_text_to_video", prompt="a fox")
    await finish(bot)
    plain = rec.of("webhook", "PATCH", "@original")[-1]
    assert "Provider" not in [f["name"] for f in embed_of(plain).get("fields", [])]


# -- refusals are ephemeral and free ------------------------------------------------------------------

async def test_invalid_input_is_refused_before_anything_is_charged(bot):
    rec = bot.recorder
    await slash(bot, "image-to-video hunyuan_custom", prompt="x" * 600, num_frames=81)
    await slash(bot, "image-to-video pika_image_to_video", prompt="waves")
    await slash(bot, "image-to-video pika_image_to_video", prompt="waves", image=Attached("notes.txt", "text/plain"))
    await slash(bot, "image-to-video pika_image_to_video", prompt="waves", image=Attached(size=25 * 2**20))
    await slash(bot, "image-to-video pika_image_to_video", prompt="waves", image=Attached(), image_url="https://x/y.png")
    await slash(bot, "text-to-image hunyuan_image_v3", prompt="p", image_size="square", width=300)
    callbacks = [c for c in rec.calls if c["path"].endswith("/callback")]
    assert len(callbacks) == 6 and all(c["body"]["type"] == 4 and c["body"]["data"]["flags"] == 64 for c in callbacks)
    texts = rec.ephemeral_texts()
    assert "prompt: " in texts[0] and "at most 500 characters" in texts[0] and "nothing was charged" in texts[0]
    assert "image: required — attach an image or give image_url" in texts[1]
    assert "notes.txt is not an image" in texts[2]
    assert "25.0 MiB, over the 20.0 MiB limit" in texts[3]
    assert "give either an attachment or image_url, not both" in texts[4]
    assert "image_size: choose a preset or give width and height, not both" in texts[5]
    assert len(rec.calls) == 6 and await jobs_of(bot) == [] and await spent(bot) == 0


async def test_quota_refusal_is_ephemeral_and_says_when_it_resets(tmp_path, sim, database_url):
    bot = await make_bot(make_settings(tmp_path, sim, database_url, quotas={"default": {"daily_usd": 0.1}}))
    try:
        rec = bot.recorder
        await slash(bot, "text-to-video pika_text_to_video", prompt="a fox")
        [call] = rec.calls  # refused in the first response: nobody else ever saw a "thinking…"
        assert call["path"].endswith("/callback") and call["body"]["type"] == 4
        assert call["body"]["data"]["flags"] == 64
        [text] = rec.ephemeral_texts()
        assert text.startswith("This Pika 2.2 clip costs $0.20, more than the whole daily limit of $0.10")
        assert "Nothing was charged" in text and "/quota" in text
        assert await jobs_of(bot) == [] and await spent(bot) == 0
    finally:
        await stop_bot(bot)


async def test_provider_failure_tells_the_user_what_to_do_and_charges_nothing(bot):
    rec = bot.recorder
    await slash(bot, "text-to-video pika_text_to_video", prompt="[sim:content_policy] something")
    await finish(bot)
    [job] = await jobs_of(bot)
    assert job.state is JobState.FAILED
    last = embed_of(rec.of("webhook", "PATCH", "@original")[-1])
    assert field(last, "Status") == "❌ Failed" and field(last, "Cost") == "nothing charged"
    [text] = rec.ephemeral_texts()
    assert f"job `{job.id}` failed" in text and "safety filter" in text and "Nothing was charged." in text
    assert await spent(bot) == 0 and await bot.state.is_delivered(job.id)


@ON_SQLITE_ONLY
async def test_output_over_the_upload_limit_is_linked(bot):
    rec = bot.recorder
    inter = await slash(bot, "text-to-video pika_text_to_video", prompt="a fox")
    inter.filesize_limit = 1000  # a tiny server limit: the clip cannot be attached
    await finish(bot)
    [post] = rec.of("webhook", "POST", "/webhooks/")
    assert post["files"] == []
    assert "over this channel's 1000 bytes upload limit; download it here" in post["body"]["content"]
    assert "<http://127.0.0.1:" in post["body"]["content"]


# -- cancel: the owner or an admin, nobody else ---------------------------------------------------------

async def test_cancel_by_owner_and_refusal_for_a_stranger(bot):
    rec = bot.recorder
    await slash(bot, "text-to-video pika_text_to_video", prompt="[sim:slow=30] a long one")
    await until(lambda: rec.of("webhook", "PATCH", "@original"))
    [job] = await jobs_of(bot)

    await click(bot, f"vg:cancel:{job.id}", BOB)
    assert rec.ephemeral_texts()[-1] == "Only the person who started this job, or a bot admin, can cancel it."
    assert not (await bot.toolkit.get_job(Account(job.account), job.id)).finished

    await click(bot, f"vg:cancel:{job.id}", ALICE)
    await finish(bot)
    final = await bot.toolkit.get_job(Account(job.account), job.id)
    assert final.state is JobState.CANCELLED and await spent(bot) == 0
    assert rec.ephemeral_texts()[-1].startswith(("Cancelled", "Cancellation requested"))  # the Toolkit's words
    assert field(embed_of(rec.of("webhook", "PATCH", "@original")[-1]), "Status") == "🚫 Cancelled"


async def test_admin_may_cancel_anyones_job_and_cancel_command(bot):
    await slash(bot, "text-to-video pika_text_to_video", prompt="[sim:slow=30] one", user=BOB)
    await slash(bot, "text-to-video pika_text_to_video", prompt="[sim:slow=30] two", user=BOB)
    first, second = sorted(await jobs_of(bot, BOB), key=lambda j: j.created_at)
    await click(bot, f"vg:cancel:{first.id}", CAROL, roles=(ADMIN_ROLE,))
    await slash(bot, "cancel", user=ALICE, job=second.id)  # a stranger, by command
    assert bot.recorder.ephemeral_texts()[-1].startswith(f"You have no job `{second.id}`; `/jobs` lists yours")
    await slash(bot, "cancel", user=BOB, job=second.id)
    await finish(bot)
    states = {j.id: j.state for j in await jobs_of(bot, BOB)}
    assert states == {first.id: JobState.CANCELLED, second.id: JobState.CANCELLED}


# -- past 15 minutes: the bot's own token -------------------------------------------------------------

@ON_SQLITE_ONLY
async def test_after_fifteen_minutes_the_bot_edits_and_posts_with_its_own_token(tmp_path, sim, database_url):
    clock = Clock()
    bot = await make_bot(make_settings(tmp_path, sim, database_url), clock=clock)
    rec = bot.recorder
    try:
        await slash(bot, "text-to-video pika_text_to_video", prompt="[sim:slow=0.6] a long render")
        await until(lambda: rec.of("webhook", "PATCH", "@original"))
        [job] = await jobs_of(bot)
        clock.offset = 15 * 60 - 30  # inside the safety margin before the token's 15 minutes end
        switched_at = len(rec.calls)
        await finish(bot)
        later = rec.calls[switched_at:]
        assert later and all(c["via"] == "bot" for c in later)
        message_id = job.origin["message_id"]
        edits = [c for c in later if c["method"] == "PATCH"]
        assert edits and all(c["path"] == f"/channels/{CHANNEL_ID}/messages/{message_id}" for c in edits)
        assert field(embed_of(edits[-1]), "Status").startswith("✅ Done")
        [post] = [c for c in later if c["method"] == "POST"]
        assert post["path"] == f"/channels/{CHANNEL_ID}/messages"
        assert post["body"]["content"].startswith(f"<@{ALICE['id']}> your Pika 2.2 video is ready")
        assert post["files"][0].endswith(".mp4")
    finally:
        await stop_bot(bot)


@ON_SQLITE_ONLY
async def test_an_expired_token_error_switches_to_the_bot_token(bot):
    rec = bot.recorder
    await slash(bot, "text-to-video pika_text_to_video", prompt="[sim:slow=0.3] x")
    await until(lambda: rec.of("webhook", "PATCH", "@original"))
    rec.webhook_error = discord.HTTPException(_Response(401), {"code": 50027, "message": "Invalid Webhook Token"})
    await finish(bot)
    assert rec.of("bot", "PATCH") and rec.of("bot", "POST", f"/channels/{CHANNEL_ID}/messages")
    assert not rec.of("webhook", "POST", "/webhooks/")


class _Response:
    def __init__(self, status: int) -> None:
        self.status = status
        self.reason = "error"


# -- restarts ---------------------------------------------------------------------------------------

async def test_results_are_delivered_after_a_restart(tmp_path, database_url):
    # The provider's time moves only when the test says: neither job can finish (and be posted by
    # the first bot) before it is stopped, however slowly a loaded machine gets there.
    sim_time = ProviderTime()
    sim = Simulator(SimSettings(queue_seconds=0.05, run_seconds=0.15), clock=sim_time)
    await sim.start(host="127.0.0.1", port=0)
    try:
        await _delivered_after_a_restart(tmp_path, sim, sim_time, database_url)
    finally:
        await sim.stop()


async def _delivered_after_a_restart(tmp_path: Path, sim: Simulator, sim_time: ProviderTime, database_url: str) -> None:
    settings = make_settings(tmp_path, sim, database_url)
    first = await make_bot(settings)
    await slash(first, "text-to-video pika_text_to_video", prompt="[sim:slow=0.2] finishes while the bot is down")
    await slash(first, "text-to-video pika_text_to_video", prompt="[sim:slow=1] still running at the restart", user=BOB)
    await until(lambda: len(first.recorder.of("webhook", "PATCH", "@original")) >= 2)
    early, late = sorted(await first.toolkit.list_jobs(first.toolkit.local_account(), all_accounts=True),
                         key=lambda j: j.created_at)
    await first.deliveries.aclose()  # the bot process dies; the first job still finishes (another process)
    sim_time.held += 0.5  # past the first job's end, not the second's
    finished = await first.toolkit.wait_for_job(Account(early.account), early.id, timeout=PATIENCE)
    assert finished.state is JobState.SUCCEEDED
    assert not (await first.toolkit.engine.get(late.id)).finished
    await first.toolkit.close()

    recorder = Recorder()
    second = await make_bot(settings, recorder)
    try:
        resumed = await second.deliveries.resume()
        sim_time.run()  # from here on the provider's time runs: the second job ends, a reroll runs
        # the bot's own start-up sweep may have taken (or even posted) some first; the posts below
        # show that both were delivered, once
        assert set(resumed) <= {early.id, late.id}
        deadline = time.monotonic() + PATIENCE
        while await second.state.undelivered():  # a sweep may claim a job before it starts its task
            assert time.monotonic() < deadline, "the second bot did not deliver both jobs in time"
            await asyncio.sleep(0.02)
        await finish(second)
        posts = recorder.of("bot", "POST", f"/channels/{CHANNEL_ID}/messages")
        by_user = {p["body"]["content"].split(">")[0] + ">": p for p in posts}
        assert set(by_user) == {f"<@{ALICE['id']}>", f"<@{BOB['id']}>"}
        assert all(p["files"][0].endswith(".mp4") for p in posts)
        edited = {c["path"] for c in recorder.of("bot", "PATCH")}
        assert edited == {f"/channels/{CHANNEL_ID}/messages/{j.origin['message_id']}" for j in (early, late)}
        assert recorder.of("webhook") == []  # the old interactions are gone: only the bot's token is used
        assert await second.state.pending() == []
        assert await second.deliveries.resume() == []  # delivered once, never again
        await click(second, f"vg:reroll:{early.id}")  # a button posted by the previous process
        await finish(second)
        assert len(await jobs_of(second)) == 2
    finally:
        await stop_bot(second)


# -- /quota, /jobs, /models ------------------------------------------------------------------------

async def test_quota_jobs_and_models(bot):
    rec = bot.recorder
    await slash(bot, "text-to-video pika_text_to_video", prompt="a fox")
    await finish(bot)
    await slash(bot, "quota")
    await slash(bot, "jobs")
    await slash(bot, "models")
    quota_text, jobs_text = rec.ephemeral_texts()[-2:]
    assert "**You, today:** $0.20 of $5.00 used, **$4.80 left** (resets at 00:00 UTC, in" in quota_text
    assert "**You, this month:** $0.20 of $50.00 used" in quota_text
    [job] = await jobs_of(bot)
    assert f"`{job.id}` ✅ Done · Pika 2.2 (pika_text_to_video) · $0.20 charged · just now" in jobs_text
    models = rec.calls[-1]["body"]["data"]
    assert models["flags"] == 64
    text = json.dumps(models["embeds"])
    assert "/text-to-video sora_2_pro_text_to_video" in text and "/text-to-image hunyuan_image_v3" in text


# -- /admin ------------------------------------------------------------------------------------------

async def test_admin_commands_check_the_configured_admins(bot):
    rec = bot.recorder
    # Manage Server is only Discord's default visibility; the bot checks its own admin list again.
    await slash(bot, "admin limits", BOB)
    assert rec.ephemeral_texts()[-1].startswith("Only the bot's admins can use /admin")
    await slash(bot, "admin set-limits", BOB, daily="100")
    assert rec.ephemeral_texts()[-1].startswith("Only the bot's admins can use /admin")
    assert len(rec.calls) == 2  # refused before anything ran: just the two ephemeral answers

    resolved_user = {"users": {BOB["id"]: BOB}, "members": {BOB["id"]: {k: v for k, v in member(BOB).items()
                                                                          if k != "user"}}}
    inter = await _slash_resolved(bot, "admin set-limits", ROOT, "user", 6, BOB, resolved_user, daily="0.30")
    assert inter.response.is_done()
    assert rec.ephemeral_texts()[-1] == f"Saved. <@{BOB['id']}> (account discord-{BOB['id']}): daily $0.30"
    await slash(bot, "text-to-video pika_text_to_video", BOB, prompt="a fox", duration=10)
    assert "costs $0.40, more than the whole daily limit of $0.30" in rec.ephemeral_texts()[-1]

    role = {"id": "910000000000000060", "name": "artists", "color": 0, "hoist": False, "position": 1,
            "permissions": "0", "managed": False, "mentionable": False, "flags": 0}
    await _slash_resolved(bot, "admin set-limits", ROOT, "role", 8, role, {"roles": {role["id"]: role}}, hourly=3)
    assert rec.ephemeral_texts()[-1] == f"Saved. role <@&{role['id']}>: 3 jobs per hour"
    await _slash_resolved(bot, "admin limits", ROOT, "role", 8, role, {"roles": {role["id"]: role}})
    assert rec.ephemeral_texts()[-1] == f"role <@&{role['id']}>: 3 jobs per hour"

    await slash(bot, "admin set-limits", CAROL, roles=(ADMIN_ROLE,), concurrent=1)  # admin by role, guild scope
    assert rec.ephemeral_texts()[-1] == "Saved. this server: 1 jobs at once"
    await slash(bot, "admin limits", ROOT)
    assert rec.ephemeral_texts()[-1] == "this server: 1 jobs at once"
    await slash(bot, "text-to-video pika_text_to_video", ALICE, prompt="a fox")
    await finish(bot)
    await slash(bot, "admin spend", ROOT, by="account")
    report = rec.ephemeral_texts()[-1]
    assert report.startswith("```") and f"discord-{ALICE['id']}" in report and "$0.20" in report


async def _slash_resolved(bot, path, user, name, kind, target, resolved, **values):
    """``path`` with a user (type 6) or role (type 8) option, resolved as Discord sends it."""
    group, sub = path.split()
    options = [option(k, v) for k, v in values.items()] + [{"name": name, "type": kind, "value": target["id"]}]
    data = {"id": str(snowflake()), "name": group, "type": 1, "resolved": resolved,
            "options": [{"type": 1, "name": sub, "options": options}]}
    inter = interaction(bot, 2, data, user)
    try:
        await bot.tree._call(inter)
    except app_commands.AppCommandError as exc:
        await bot.tree._dispatch_error(inter, exc)
    return inter


# -- checks before the first response ------------------------------------------------------------------

def first_response(rec: Recorder) -> dict[str, Any]:
    return next(c for c in rec.calls if c["path"].endswith("/callback"))["body"]


@ON_SQLITE_ONLY
async def test_a_missing_channel_permission_is_named_in_a_private_first_response(bot):
    rec = bot.recorder
    lacking = discord.Permissions(view_channel=True, send_messages=True, embed_links=True).value
    await slash(bot, "text-to-video pika_text_to_video", where={"app_permissions": lacking}, prompt="a fox")
    [call] = rec.calls
    assert call["body"]["type"] == 4 and call["body"]["data"]["flags"] == 64
    [text] = rec.ephemeral_texts()
    assert "missing the Attach Files permission here" in text and "Edit Channel → Permissions" in text
    none = discord.Permissions(view_channel=True).value
    await slash(bot, "text-to-video pika_text_to_video", where={"app_permissions": none}, prompt="a fox")
    assert "missing the Send Messages, Embed Links and Attach Files permissions" in rec.ephemeral_texts()[-1]
    assert await jobs_of(bot) == [] and await spent(bot) == 0


async def test_in_a_thread_the_bot_needs_send_messages_in_threads_and_posts_there(bot):
    rec = bot.recorder
    thread = {"id": "910000000000000070", "type": 11, "guild_id": str(GUILD_ID), "name": "ideas",
              "parent_id": str(CHANNEL_ID), "owner_id": ALICE["id"], "message_count": 1, "member_count": 1,
              "thread_metadata": {
                  "archived": False, "auto_archive_duration": 1440, "archive_timestamp": "2024-01-01T00:00:00+00:00",
                  "locked": False}}
    lacking = discord.Permissions(view_channel=True, send_messages=True, embed_links=True, attach_files=True).value
    await slash(bot, "text-to-video pika_text_to_video", where={"channel": thread, "app_permissions": lacking},
                prompt="a fox")
    assert "missing the Send Messages in Threads permission" in rec.ephemeral_texts()[-1]
    await slash(bot, "text-to-video pika_text_to_video", where={"channel": thread}, prompt="a fox")
    await finish(bot)
    [job] = await jobs_of(bot)
    assert job.state is JobState.SUCCEEDED and job.origin["channel_id"] == thread["id"]
    reply = Reply.from_origin(bot, job.origin)  # after 15 minutes, the bot's token posts into the thread too
    await reply.post("later")
    assert rec.of("bot", "POST")[-1]["path"] == f"/channels/{thread['id']}/messages"


async def test_slow_checks_defer_privately_so_a_refusal_stays_private(tmp_path, sim, database_url):
    bot = await make_bot(make_settings(tmp_path, sim, database_url, quotas={"default": {"daily_usd": 0.1}}))
    bot.check_seconds = 0  # the checks "take too long": the bot must answer Discord first, privately
    try:
        rec = bot.recorder
        await slash(bot, "text-to-video pika_text_to_video", prompt="a fox")
        assert first_response(rec) == {"type": 5, "data": {"flags": 64}}  # "thinking…", seen only by the user
        assert "more than the whole daily limit" in rec.ephemeral_texts()[-1]
        assert not rec.of("webhook", "DELETE") and await jobs_of(bot) == []
    finally:
        await stop_bot(bot)


async def test_slow_checks_that_pass_post_the_progress_publicly(bot):
    rec = bot.recorder
    bot.check_seconds = 0
    inter = await slash(bot, "text-to-video pika_text_to_video", prompt="a fox")
    assert first_response(rec) == {"type": 5, "data": {"flags": 64}}
    await finish(bot)
    [job] = await jobs_of(bot)
    assert job.state is JobState.SUCCEEDED
    assert rec.of("webhook", "PATCH", "@original")[0]["body"]["content"].startswith("Checks passed")
    posts = rec.of("webhook", "POST", f"/webhooks/{APP_ID}/{inter.token}")
    assert not posts[0]["body"].get("flags") and posts[0]["body"]["content"].startswith("📨 Starting Pika 2.2")
    edits = rec.of("webhook", "PATCH", f"/messages/{job.origin['message_id']}")  # the public followup, edited
    assert edits and field(embed_of(edits[-1]), "Status").startswith("✅ Done")
    assert edits[0]["body"]["content"] is None  # "Starting…" gives way to the progress embed
    assert posts[-1]["files"][0].endswith(".mp4")


# -- DMs ---------------------------------------------------------------------------------------------

@ON_SQLITE_ONLY
async def test_dms_are_refused_unless_the_operator_enables_them(bot):
    await slash(bot, "text-to-video pika_text_to_video", where={"dm": True}, prompt="a fox")
    assert bot.recorder.ephemeral_texts() == [DMS_OFF] and await jobs_of(bot) == []


async def test_enabled_dms_apply_the_users_limits_and_the_global_cap(tmp_path, sim, database_url):
    settings = make_settings(tmp_path, sim, database_url, discord={"allow_dms": True, "confirm_above_usd": 50},
                             quotas={"default": {"daily_usd": 5}, "global": {"daily_usd": 0.3}})
    bot = await make_bot(settings)
    try:
        await slash(bot, "text-to-video pika_text_to_video", where={"dm": True}, prompt="a fox")
        await finish(bot)
        [job] = await jobs_of(bot)
        assert job.state is JobState.SUCCEEDED and job.origin["guild_id"] is None
        await slash(bot, "text-to-video pika_text_to_video", where={"dm": True}, prompt="again")
        assert "the operator's budget has $0.10 left today" in bot.recorder.ephemeral_texts()[-1]
        assert len(await jobs_of(bot)) == 1
    finally:
        await stop_bot(bot)


# -- safety: operator switches, banned words, allow-lists ------------------------------------------------

async def test_provider_safety_switches_are_the_operators(tmp_path, sim, database_url):
    settings = make_settings(tmp_path, sim, database_url,
                             discord={"provider_switches": {"enable_safety_checker": False}, "confirm_above_usd": 50})
    bot = await make_bot(settings)
    try:
        # a user cannot even name the switch: it is not an option of the command
        await slash(bot, "image-to-video hunyuan_custom", prompt="a fox", image_url="https://x/y.png",
                    enable_safety_checker=True)
        await finish(bot)
        [job] = await jobs_of(bot)
        assert job.params["enable_safety_checker"] is False
        await click(bot, f"vg:reroll:{job.id}")
        await until(lambda: len(bot.deliveries.tasks) or False)
        await finish(bot)
        assert all(j.params["enable_safety_checker"] is False for j in await jobs_of(bot))
    finally:
        await stop_bot(bot)


async def test_banned_words_from_config_and_admin(tmp_path, sim, database_url):
    bot = await make_bot(make_settings(tmp_path, sim, database_url,
                                       discord={"banned_words": ["Gore"], "confirm_above_usd": 50}))
    try:
        rec = bot.recorder
        await slash(bot, "text-to-video pika_text_to_video", prompt="a lot of GORE, please")
        assert rec.ephemeral_texts()[-1].startswith('Your prompt contains a word this server does not allow ("gore")')
        await slash(bot, "admin banned-words", ROOT, action="add", word="spiders")
        assert rec.ephemeral_texts()[-1] == "Added spiders to this server's banned words."
        await slash(bot, "text-to-video pika_text_to_video", prompt="many spiders")
        assert '("spiders")' in rec.ephemeral_texts()[-1]
        await slash(bot, "text-to-video pika_text_to_video", prompt="spiderman")  # whole words only
        await finish(bot)
        assert len(await jobs_of(bot)) == 1
        await slash(bot, "admin banned-words", BOB, action="add", word="cats")
        assert rec.ephemeral_texts()[-1].startswith("Only the bot's admins")
    finally:
        await stop_bot(bot)


async def test_channel_and_model_allow_lists(bot):
    rec = bot.recorder
    other = {"id": "910000000000000080", "name": "art", "type": 0, "permissions": "0"}
    await _slash_resolved(bot, "admin channels", ROOT, "channel", 7, other, {"channels": {other["id"]: other}},
                          action="add")
    assert rec.ephemeral_texts()[-1] == f"Added <#{other['id']}> to this server's allowed channels."
    await slash(bot, "text-to-video pika_text_to_video", prompt="a fox")
    assert rec.ephemeral_texts()[-1].startswith(f"This server runs generations only in <#{other['id']}>")
    await _slash_resolved(bot, "admin channels", ROOT, "channel", 7, {**other, "id": str(CHANNEL_ID), "name": "gen"},
                          {"channels": {str(CHANNEL_ID): {**other, "id": str(CHANNEL_ID), "name": "gen"}}},
                          action="add")
    await slash(bot, "admin models", ROOT, action="add", model="pika_text_to_video")
    await slash(bot, "text-to-video sora_2_text_to_video", prompt="a fox")
    assert rec.ephemeral_texts()[-1].startswith("This server allows only these models: pika_text_to_video")
    await slash(bot, "admin models", ROOT, action="add", model="no_such_model")
    assert "no_such_model" in rec.ephemeral_texts()[-1] and "/models" in rec.ephemeral_texts()[-1]
    await slash(bot, "admin rules", ROOT)
    rules = rec.ephemeral_texts()[-1]
    assert f"<#{other['id']}>" in rules and "pika_text_to_video" in rules
    await slash(bot, "text-to-video pika_text_to_video", prompt="a fox")
    await finish(bot)
    assert [j.tool for j in await jobs_of(bot)] == ["pika_text_to_video"]
    await slash(bot, "admin models", ROOT, action="remove", model="pika_text_to_video")
    assert rec.ephemeral_texts()[-1] == "Removed pika_text_to_video from this server's allowed models."


# -- price cards -----------------------------------------------------------------------------------

async def card_ids(rec: Recorder) -> list[str]:
    body = first_response(rec)["data"]
    return [c["custom_id"] for row in body["components"] for c in row["components"]]


async def test_an_expensive_run_asks_first_and_reserves_nothing_until_run(tmp_path, sim, database_url):
    bot = await make_bot(make_settings(tmp_path, sim, database_url, discord={"confirm_above_usd": 1}))
    try:
        rec = bot.recorder
        await slash(bot, "text-to-video sora_2_pro_text_to_video", prompt="a storm at sea")  # 4 s at 1080p: $2.00
        [call] = rec.calls
        data = call["body"]["data"]
        assert call["body"]["type"] == 4 and data["flags"] == 64
        card = data["embeds"][0]
        assert card["title"].startswith("Run Sora 2 Pro") and field(card, "Price") == "$2.00"
        assert "$0.50/s" in field(card, "How it is priced") and field(card, "Budget left now").startswith("$5.00 left")
        run, cancel = await card_ids(rec)
        assert run.startswith("vgcard:run:") and cancel.startswith("vgcard:drop:")
        assert await jobs_of(bot) == [] and await spent(bot) == 0  # nothing reserved yet

        await click(bot, run)
        await until(lambda: bot.deliveries.tasks)
        await click(bot, run)  # the double click
        assert rec.ephemeral_texts()[-1].startswith("This run was already started")
        await finish(bot)
        [job] = await jobs_of(bot)
        assert job.state is JobState.SUCCEEDED and job.tool == "sora_2_pro_text_to_video" and await spent(bot) == 2_000_000
        update = next(c for c in rec.calls if c["body"] and c["body"].get("type") == 7)
        assert update["body"]["data"]["content"].startswith("Started — $2.00 reserved")
        assert update["body"]["data"]["components"] == []
        await click(bot, cancel)
        assert rec.ephemeral_texts()[-1].startswith("This run was already started")
    finally:
        await stop_bot(bot)


async def test_a_card_can_be_cancelled_expires_and_is_only_its_owners(tmp_path, sim, database_url):
    clock = Clock()
    bot = await make_bot(make_settings(tmp_path, sim, database_url, discord={"confirm_above_usd": 1}), clock=clock)
    try:
        rec = bot.recorder
        await slash(bot, "text-to-video sora_2_pro_text_to_video", prompt="one")
        run, cancel = await card_ids(rec)
        await click(bot, run, BOB)
        assert rec.ephemeral_texts()[-1] == "That price card is not yours, or no longer exists."
        await click(bot, cancel)
        assert rec.calls[-1]["body"]["data"]["content"] == "Cancelled; nothing was reserved or charged."
        await click(bot, run)
        assert rec.ephemeral_texts()[-1].startswith("You cancelled this run")

        rec.calls.clear()
        await slash(bot, "text-to-video sora_2_pro_text_to_video", prompt="two")
        run, _ = await card_ids(rec)
        clock.offset = 301  # the card's five minutes are over
        await click(bot, run)
        assert rec.ephemeral_texts()[-1].startswith("This price card expired")
        assert await jobs_of(bot) == [] and await spent(bot) == 0
    finally:
        await stop_bot(bot)


async def test_run_checks_the_budget_again_and_a_refusal_keeps_the_card(tmp_path, sim, database_url):
    bot = await make_bot(make_settings(tmp_path, sim, database_url, discord={"confirm_above_usd": 1},
                                       quotas={"default": {"daily_usd": 3}}))
    try:
        rec = bot.recorder
        await slash(bot, "text-to-video sora_2_pro_text_to_video", prompt="one")
        first_run, _ = await card_ids(rec)
        rec.calls.clear()
        await slash(bot, "text-to-video sora_2_pro_text_to_video", prompt="two")
        second_run, _ = await card_ids(rec)
        await click(bot, first_run)
        await until(lambda: bot.deliveries.tasks)
        await finish(bot)
        await click(bot, second_run)  # $2.00, more than the $1.00 left today
        assert "you have $1.00 left today" in rec.ephemeral_texts()[-1]
        assert len(await jobs_of(bot)) == 1
        card = await bot.records.card(second_run.rsplit(":", 1)[-1])
        assert card is not None and card.state == "open"
    finally:
        await stop_bot(bot)


# -- results that always arrive ------------------------------------------------------------------------

def http_error(kind: type[discord.HTTPException], status: int, code: int, message: str) -> discord.HTTPException:
    return kind(_Response(status), {"code": code, "message": message})


async def run_past_the_token(bot: VideoBot, clock: Clock, prompt: str = "[sim:slow=0.3] a fox") -> Any:
    """A job whose result is posted after the interaction's 15 minutes, with the bot's own token."""
    await slash(bot, "text-to-video pika_text_to_video", prompt=prompt)
    await until(lambda: bot.recorder.of("webhook", "PATCH", "@original"))
    clock.offset = 15 * 60
    [job] = await jobs_of(bot)
    return job


@pytest.fixture
async def late_bot(tmp_path, sim, database_url):
    clock = Clock()
    made = await make_bot(make_settings(tmp_path, sim, database_url), clock=clock)
    made.retry_delays = (0.01, 0.01, 0.01)
    made.test_clock = clock
    yield made
    await stop_bot(made)


async def test_a_job_being_launched_elsewhere_is_adopted_only_once_its_starter_could_have_died(tmp_path, sim):
    """Another process's ``launch`` has created the job but not yet recorded its delivery claim:
    a sweep here must leave it to that process (and its interaction) until a claim's lease has
    passed since the job was created; only then was its starter dead in between."""
    clock = Clock()
    bot = await make_bot(make_settings(tmp_path, sim), clock=clock)
    try:
        account = await bot.toolkit.account_for_discord(ALICE["id"])
        origin = {"surface": "discord", "channel_id": str(CHANNEL_ID), "user_id": ALICE["id"],
                  "guild_id": str(GUILD_ID), "message_id": str(snowflake())}
        job = await bot.toolkit.generate(account, "pika_text_to_video", {"prompt": "[sim:slow=0.5] x"}, wait=0,
                                         origin=origin)
        assert await bot.deliveries.resume() == [] and not await bot.state.known()
        clock.offset = bot.state.lease_seconds + 1
        assert await bot.deliveries.resume() == [job.id]
        await finish(bot)
        [post] = bot.recorder.of("bot", "POST", f"/channels/{CHANNEL_ID}/messages")
        assert custom_ids(post)[0] == f"vg:reroll:{job.id}" and await bot.state.is_delivered(job.id)
    finally:
        await stop_bot(bot)


async def test_a_deleted_channel_is_final_and_the_result_goes_by_dm(late_bot):
    bot, rec = late_bot, late_bot.recorder
    rec.bot_errors[("POST", f"/channels/{CHANNEL_ID}/messages")] = [
        http_error(discord.NotFound, 404, 10003, "Unknown Channel")]
    job = await run_past_the_token(bot, bot.test_clock)
    await finish(bot)
    [dm] = rec.of("bot", "POST", f"/channels/{DM_CHANNEL_ID}/messages")
    assert rec.of("bot", "POST", "/users/@me/channels")[0]["body"] == {"recipient_id": int(ALICE["id"])}
    text = dm["body"]["content"]
    assert f"(job `{job.id}`) is ready, but I could not post it where you asked: channel {CHANNEL_ID} no longer " \
           "exists (404 10003 Unknown Channel)" in text
    assert "<http://127.0.0.1:" in text and "`/show` posts it again" in text
    assert len(rec.of("bot", "POST", f"/channels/{CHANNEL_ID}/messages")) == 1  # final: never tried again
    done = await bot.toolkit.get_job(bot.toolkit.local_account(), job.id)
    assert done.origin["delivery"]["status"] == "failed"
    assert f"delivery: failed — channel {CHANNEL_ID} no longer exists" in describe_job(done)
    assert "sent to the user by DM" in describe_job(done)  # what `videogen jobs show` prints
    assert await bot.state.pending() == [] and await bot.deliveries.resume() == []


async def test_missing_access_with_dms_closed_is_told_on_the_next_command(late_bot):
    bot, rec = late_bot, late_bot.recorder
    rec.bot_errors[("POST", f"/channels/{CHANNEL_ID}/messages")] = [
        http_error(discord.Forbidden, 403, 50001, "Missing Access")]
    rec.bot_errors[("POST", f"/channels/{DM_CHANNEL_ID}/messages")] = [
        http_error(discord.Forbidden, 403, 50007, "Cannot send messages to this user")]
    job = await run_past_the_token(bot, bot.test_clock)
    await finish(bot)
    done = await bot.toolkit.get_job(bot.toolkit.local_account(), job.id)
    assert "the bot may not post in channel" in describe_job(done) and "DMs closed" in describe_job(done)
    await slash(bot, "quota")
    await until(lambda: len(rec.ephemeral_texts()) >= 2)
    notice = rec.ephemeral_texts()[-1]
    assert f"(job `{job.id}`) is ready, but I could not post it where you asked" in notice
    assert "403 50001 Missing Access" in notice
    await slash(bot, "jobs")
    await asyncio.sleep(0.05)
    assert sum(f"(job `{job.id}`)" in t for t in rec.ephemeral_texts()) == 1  # shown once


async def test_transient_failures_are_retried_without_a_restart(late_bot):
    bot, rec = late_bot, late_bot.recorder
    rec.bot_errors[("POST", f"/channels/{CHANNEL_ID}/messages")] = [
        http_error(discord.DiscordServerError, 503, 0, "Service Unavailable"),
        http_error(discord.DiscordServerError, 502, 0, "Bad Gateway")]
    await run_past_the_token(bot, bot.test_clock)
    await finish(bot)
    posts = rec.of("bot", "POST", f"/channels/{CHANNEL_ID}/messages")
    assert len(posts) == 3 and posts[-1]["files"][0].endswith(".mp4")
    assert await bot.state.pending() == [] and not rec.of("bot", "POST", "/users/@me/channels")


# -- NSFW flags ----------------------------------------------------------------------------------------

@ON_SQLITE_ONLY
async def test_nsfw_outputs_are_posted_as_spoilers(bot):
    rec = bot.recorder
    await slash(bot, "text-to-video pika_text_to_video", prompt="[sim:nsfw] a fox")
    await finish(bot)
    [post] = rec.of("webhook", "POST", "/webhooks/")
    assert post["files"][0].startswith("SPOILER_") and "hidden behind a spoiler" in post["body"]["content"]
    [job] = await jobs_of(bot)
    assert job.outputs[0]["nsfw"] is True
    await slash(bot, "text-to-video pika_text_to_video", prompt="a clean fox")
    await finish(bot)
    assert not rec.of("webhook", "POST", "/webhooks/")[-1]["files"][0].startswith("SPOILER_")


async def test_nsfw_outputs_are_withheld_outside_age_restricted_channels(tmp_path, sim, database_url):
    bot = await make_bot(make_settings(tmp_path, sim, database_url,
                                       discord={"nsfw": "withhold", "confirm_above_usd": 50}))
    try:
        rec = bot.recorder
        await slash(bot, "text-to-image hunyuan_image_v3", prompt="[sim:nsfw] a statue")
        await finish(bot)
        [post] = [p for p in rec.of("webhook", "POST", "/webhooks/") if not p["body"].get("flags")]
        assert post["files"] == [] and "is not shown here (this channel is not age-restricted)" in post["body"]["content"]
        private = rec.ephemeral_texts()[-1]
        assert "flagged as NSFW by the provider" in private and "<http://127.0.0.1:" in private
        [job] = await jobs_of(bot)
        assert job.origin["delivery"]["status"] == "withheld"

        adult = {"id": "910000000000000090", "type": 0, "guild_id": str(GUILD_ID), "name": "adult", "position": 1,
                 "permission_overwrites": [], "nsfw": True}
        await slash(bot, "text-to-image hunyuan_image_v3", where={"channel": adult}, prompt="[sim:nsfw] a statue")
        await finish(bot)
        last = rec.of("webhook", "POST", "/webhooks/")[-1]
        assert last["files"] and not last["files"][0].startswith("SPOILER_")
    finally:
        await stop_bot(bot)


# -- what image-bot users expect: Edit prompt, Delete, /show, /settings, /estimate ------------------------

async def submit_modal(bot: VideoBot, custom_id: str, text_id: str, value: str, user: dict[str, Any] = ALICE
                       ) -> discord.Interaction:
    """Submit a modal the bot opened, as Discord sends it, through the real view store."""
    components = [{"type": 1, "components": [{"type": 4, "custom_id": text_id, "value": value}]}]
    inter = interaction(bot, 5, {"custom_id": custom_id, "components": components}, user)
    running = asyncio.all_tasks()
    bot._connection._view_store.dispatch_modal(custom_id, inter, components, {})
    await asyncio.gather(*(t for t in asyncio.all_tasks() - running))
    return inter


async def test_edit_prompt_opens_a_modal_and_runs_the_same_settings_with_the_new_text(bot):
    rec = bot.recorder
    await slash(bot, "text-to-video pika_text_to_video", prompt="a fox", duration=10, seed=7)
    await finish(bot)
    [job] = await jobs_of(bot)
    await click(bot, f"vg:edit:{job.id}", BOB)  # not Bob's job: no modal for him
    assert rec.ephemeral_texts()[-1].startswith("Only the person who started this job")
    await click(bot, f"vg:edit:{job.id}")
    modal = rec.calls[-1]["body"]
    assert modal["type"] == 9 and modal["data"]["custom_id"] == f"vgedit:{job.id}"
    box = modal["data"]["components"][0]["components"][0]
    assert box["value"] == "a fox" and box["max_length"] == 4000  # Pika's prompt has no maxLength
    await submit_modal(bot, f"vgedit:{job.id}", box["custom_id"], "a fox in the rain")
    await finish(bot)
    edited = next(j for j in await jobs_of(bot) if j.id != job.id)
    assert edited.params["prompt"] == "a fox in the rain"
    assert edited.params["duration"] == 10 and edited.params["seed"] == 7 and edited.state is JobState.SUCCEEDED


async def test_delete_removes_the_message_for_its_owner_and_keeps_the_record(bot):
    rec = bot.recorder
    await slash(bot, "text-to-video pika_text_to_video", prompt="a fox")
    await finish(bot)
    [job] = await jobs_of(bot)
    inter = await click(bot, f"vg:delete:{job.id}", BOB)
    assert rec.ephemeral_texts()[-1].startswith("Only the person who started this job") and not rec.of("bot", "DELETE")
    inter = await click(bot, f"vg:delete:{job.id}")
    [deleted] = rec.of("bot", "DELETE")
    assert deleted["path"] == f"/channels/{CHANNEL_ID}/messages/{inter.message.id}"
    assert rec.ephemeral_texts()[-1] == f"Deleted. The job stays on record: `/show {job.id}` posts it again."
    assert (await bot.toolkit.get_job(Account(job.account), job.id)).state is JobState.SUCCEEDED


async def test_show_posts_ones_own_result_again(bot):
    rec = bot.recorder
    await slash(bot, "text-to-video pika_text_to_video", prompt="a fox")
    await finish(bot)
    [job] = await jobs_of(bot)
    await slash(bot, "show", BOB, job=job.id)
    assert rec.ephemeral_texts()[-1].startswith(f"You have no job `{job.id}`")
    before = len(rec.calls)
    await slash(bot, "show", job=job.id)
    defer, shown = rec.calls[before:before + 2]
    assert defer["body"] == {"type": 5} and shown["method"] == "PATCH" and shown["path"].endswith("@original")
    assert shown["files"][0].endswith(".mp4") and shown["body"]["content"].startswith(f"<@{ALICE['id']}> your Pika")
    assert custom_ids(shown)[0] == f"vg:reroll:{job.id}"
    assert len(await jobs_of(bot)) == 1 and await spent(bot) == 200_000  # nothing new ran or was charged


async def test_settings_are_per_user_defaults(bot):
    rec = bot.recorder
    await slash(bot, "settings")
    assert rec.ephemeral_texts()[-1].startswith("You have no defaults yet")
    await slash(bot, "settings", resolution="1080p", aspect_ratio="9:16", animate_model="sora_2_image_to_video")
    assert "Resolution: 1080p" in rec.ephemeral_texts()[-1] and "Animate uses: sora_2_image_to_video" in \
        rec.ephemeral_texts()[-1]
    await slash(bot, "settings", animate_model="pika_text_to_video")
    assert "does not animate a picture" in rec.ephemeral_texts()[-1]
    await slash(bot, "text-to-video pika_text_to_video", prompt="a fox")  # Pika offers 1080p and 9:16
    await slash(bot, "text-to-video pika_text_to_video", BOB, prompt="a fox")  # Bob has no defaults
    await slash(bot, "text-to-video pika_text_to_video", prompt="a fox", resolution="720p")  # given wins
    await finish(bot)
    mine = sorted(await jobs_of(bot), key=lambda j: j.created_at)
    assert [(j.params["resolution"], j.params["aspect_ratio"]) for j in mine] == [("1080p", "9:16"), ("720p", "9:16")]
    [bobs] = await jobs_of(bot, BOB)
    assert (bobs.params["resolution"], bobs.params["aspect_ratio"]) == ("720p", "16:9")

    await slash(bot, "settings", ask="always")
    rec.calls.clear()
    await slash(bot, "text-to-video pika_text_to_video", prompt="cheap but asked")  # $0.20, still a card
    assert first_response(rec)["data"]["embeds"][0]["title"].startswith("Run Pika")
    await slash(bot, "settings", reset=True)
    assert rec.ephemeral_texts()[-1].startswith("Your defaults are cleared")


async def test_estimate_prices_a_run_without_starting_it(bot):
    rec = bot.recorder
    await slash(bot, "estimate", model="sora_2_pro_text_to_video", settings="duration=12 resolution=720p")
    text = rec.ephemeral_texts()[-1]
    assert text.startswith("**Sora 2 Pro — text to video (fal)**: $3.60") and "12 s × $0.30/s" in text
    assert "/text-to-video sora_2_pro_text_to_video runs it" in text
    await slash(bot, "estimate", model="sora_2_pro_text_to_video", settings="duration=7")
    assert "duration: 7 is not allowed" in rec.ephemeral_texts()[-1]
    await slash(bot, "estimate", model="sora_3")
    assert "sora" in rec.ephemeral_texts()[-1].lower()
    assert await jobs_of(bot) == [] and await spent(bot) == 0


async def test_animate_uses_the_model_chosen_in_settings(bot):
    await slash(bot, "settings", animate_model="sora_2_image_to_video")
    await slash(bot, "text-to-image hunyuan_image_v3", prompt="a lighthouse")
    await finish(bot)
    [job] = await jobs_of(bot)
    await click(bot, f"vg:animate:{job.id}:0")
    await finish(bot)
    animated = next(j for j in await jobs_of(bot) if j.id != job.id)
    assert animated.tool == "sora_2_image_to_video" and animated.params["image_url"] == job.outputs[0]["url"]
    assert animated.params["prompt"] == "a lighthouse" and animated.state is JobState.SUCCEEDED
    note = field(embed_of(bot.recorder.of("webhook", "PATCH", "@original")[-1]), "About")
    assert "your choice in `/settings`" in note
