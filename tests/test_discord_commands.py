"""The slash commands as data: generated from the catalog's schemas, within Discord's limits, and the
way Discord's values turn back into a model's arguments. Plus ``videogen discord`` itself."""

from __future__ import annotations

import argparse
import copy
import dataclasses
import io
import json
from types import SimpleNamespace
from unittest.mock import AsyncMock

import discord
import pytest

from agent_tools.cli import discord as cli_discord
from agent_tools.catalog import CATALOG, SHORT, Category, OutputKind
from agent_tools.config import Settings
from agent_tools.errors import UserError
from agent_tools.media import MAX_INPUT_BYTES
from bots.discord.app import MISSING_TOKEN, VideoBot, serve
from bots.discord.commands import BUDGET, build_payload, model_groups
from bots.discord.options import LIST_SLOTS, collect_arguments, plan_tool, shorten
from bots.discord.payloads import (ATTACHMENT, BOOLEAN, INTEGER, NUMBER, STRING, command_chars, payload_hash,
                                   validate_payload)


CATEGORIES = [c.value for c in Category]


@pytest.fixture(scope="module")
def payload() -> list[dict]:
    return build_payload()


def sub(payload: list[dict], tool: str) -> dict:
    """A model's subcommand, under its category's command."""
    command = next(c for c in payload if c["name"] == CATALOG[tool].category.value)
    return next(o for o in command["options"] if o["name"] == tool)


def opt(subcommand: dict, name: str) -> dict:
    return next(o for o in subcommand["options"] if o["name"] == name)


# -- the payload ------------------------------------------------------------------------------------

def test_payload_passes_discords_limits(payload):
    assert validate_payload(payload) == []
    assert [c["name"] for c in payload] == [*CATEGORIES, "models", "quota", "jobs", "cancel", "show", "estimate",
                                            "settings", "admin"]
    for command in payload:
        assert command_chars(command) <= 8000
        assert command["contexts"] == [0] and command["dm_permission"] is False
    admin = payload[-1]  # hidden from members without Manage Server unless a server admin changes it
    assert admin["default_member_permissions"] == discord.Permissions(manage_guild=True).value
    assert all(c["default_member_permissions"] is None for c in payload[:-1])


def test_every_model_is_a_subcommand_of_its_category(payload):
    for category in CATEGORIES:
        command = next(c for c in payload if c["name"] == category)
        assert {o["name"] for o in command["options"]} == {t for t, s in CATALOG.items() if s.category == category}
    assert sub(payload, "sora_2_pro_text_to_video")["description"].startswith("Sora 2 Pro — text to video")


def test_options_come_from_the_schema(payload):
    for tool, spec in CATALOG.items():
        options = {o["name"]: o for o in sub(payload, tool)["options"]}
        props = spec.schema()["properties"]
        for name, prop in props.items():
            if name not in options:
                continue
            option = options[name]
            enum = prop.get("enum")
            if enum:
                assert [c["value"] for c in option["choices"]] == list(dict.fromkeys(
                    v if option["type"] != STRING else str(v) for v in enum))
            if "minimum" in prop:
                assert option["min_value"] == prop["minimum"] and option["max_value"] == prop["maximum"]
            if "default" in prop:
                assert "(default " in option["description"], (tool, name)
            if prop.get("maxLength"):
                assert option["max_length"] == prop["maxLength"]
        assert "api_key" not in options  # a secret is never typed into a chat
        required = [o["name"] for o in options.values() if o.get("required")]
        assert required == [n for n in spec.schema().get("required", ()) if n not in spec.media_fields()]


def test_option_types_ranges_and_choices(payload):
    pika = sub(payload, "pika_text_to_video")
    duration = opt(pika, "duration")
    assert duration["type"] == INTEGER and duration["choices"] == [{"name": "5", "value": 5},
                                                                   {"name": "10", "value": 10}]
    assert duration["description"].endswith("(default 5)")
    custom = sub(payload, "hunyuan_custom")
    assert opt(custom, "cfg_scale")["type"] == NUMBER and opt(custom, "cfg_scale")["min_value"] == 1.5
    assert opt(custom, "enable_prompt_expansion")["type"] == BOOLEAN
    assert opt(custom, "prompt")["max_length"] == 500
    hailuo = sub(payload, "hailuo_02_text_to_video")
    assert opt(hailuo, "duration")["type"] == STRING  # the schema's enum is of strings: "6", "10"
    fixed = sub(payload, "veo3_1_reference_to_video")
    assert "duration" not in {o["name"] for o in fixed["options"]}  # a one-value enum: nothing to choose


def test_images_become_attachments_with_a_url_alternative(payload):
    pika = sub(payload, "pika_image_to_video")
    assert opt(pika, "image")["type"] == ATTACHMENT and opt(pika, "image_url")["type"] == STRING
    assert not opt(pika, "image").get("required") and "(or give image_url)" in opt(pika, "image")["description"]
    wavespeed = sub(payload, "wavespeed_hunyuan_video_i2v")  # a field named "image"
    assert opt(wavespeed, "image")["type"] == ATTACHMENT and opt(wavespeed, "image_url")["type"] == STRING
    frames = sub(payload, "veo3_1_fast_first_last_frame")
    assert {o["name"] for o in frames["options"]} >= {"first_frame", "first_frame_url", "last_frame", "last_frame_url"}
    veo = sub(payload, "veo3_1_reference_to_video")
    slots = [f"image_{i}" for i in range(1, LIST_SLOTS + 1)]
    assert [o["name"] for o in veo["options"] if o["type"] == ATTACHMENT] == slots
    assert opt(veo, "image_urls")["type"] == STRING


def test_image_size_union_is_presets_plus_width_and_height(payload):
    image = sub(payload, "hunyuan_image_v3")
    size = opt(image, "image_size")
    assert [c["value"] for c in size["choices"]][:2] == ["square_hd", "square"]
    assert size["description"].endswith("(default square_hd)")
    assert opt(image, "width")["type"] == INTEGER and opt(image, "width")["min_value"] == 1
    assert opt(image, "height")["max_value"] == 14142
    assert "sync_mode" not in {o["name"] for o in image["options"]}
    assert plan_tool(CATALOG["hunyuan_image_v3"]).left_out == ("enable_safety_checker", "sync_mode")
    assert plan_tool(CATALOG["sora_2_text_to_video"]).left_out == ("api_key",)


def test_the_validator_catches_what_discord_would_refuse(payload):
    broken = copy.deepcopy(payload)
    video = broken[0]
    pika = next(o for o in video["options"] if o["name"] == "pika_text_to_video")
    pika["options"][1]["description"] = "x" * 101
    pika["options"][2]["choices"] = [{"name": str(i), "value": str(i)} for i in range(26)]
    pika["options"].extend({"type": STRING, "name": f"extra_{i}", "description": "d"} for i in range(20))
    pika["options"].append({"type": STRING, "name": "Upper", "description": "d", "required": True})
    image = next(c for c in broken if c["name"] == "text-to-image")
    image["options"][0]["description"] = "y" * 100
    image["options"][0]["options"][0]["description"] = ""
    next(c for c in broken if c["name"] == "models")["description"] = "z" * 8001
    problems = validate_payload(broken)
    text = "\n".join(problems)
    assert "description must be 1–100 characters (has 101)" in text
    assert "26 choices, at most 25" in text
    assert "27 options, at most 25" in text
    assert "name 'Upper' must be lowercase" in text
    assert "required options must come before optional ones" in text
    assert "description must be 1–100 characters (has 0)" in text
    assert "/models: 8" in text and "at most 8000" in text
    assert validate_payload(payload + [payload[0]]) == ["command name 'text-to-video' is used twice"]


def test_every_command_leaves_room_to_grow(payload):
    """70 % of Discord's 8,000 characters at most, with every description whole (none is trimmed)."""
    for command in payload:
        assert command_chars(command) <= BUDGET == 5600, command["name"]
    for tool, spec in CATALOG.items():
        for option, plan in zip(sub(payload, tool)["options"], plan_tool(spec).options):
            assert option["description"] == f"{plan.text} {plan.suffix}".strip(), (tool, option["name"])
    assert shorten("one two three four five", 12) == "one two…"


def test_twice_todays_video_models_would_still_fit():
    """Each video model once more (as a new model of its category): every command still fits Discord."""
    doubled = dict(CATALOG)
    for tool, spec in CATALOG.items():
        if spec.output.kind is OutputKind.VIDEO:
            twin = dataclasses.replace(spec, tool=f"{tool}_b", title=f"{spec.title} B")
            doubled[twin.tool] = twin
    videos = sum(s.output.kind is OutputKind.VIDEO for s in doubled.values())
    assert videos == 2 * sum(s.output.kind is OutputKind.VIDEO for s in CATALOG.values())
    tree = discord.app_commands.CommandTree(discord.Client(intents=discord.Intents.none()))
    for group in model_groups(doubled):
        tree.add_command(group)
    bigger = [c.to_dict(tree) for c in tree.get_commands()]
    assert validate_payload(bigger) == []
    assert sum(len(c["options"]) for c in bigger) == len(doubled)


def test_short_descriptions_come_from_the_catalog_and_read_like_words(payload):
    assert opt(sub(payload, "hunyuan_image_v3"), "prompt")["description"] == SHORT["prompt"]  # not "image-to-image"
    veo = sub(payload, "veo3_fast")
    assert opt(veo, "generate_audio")["description"].startswith(SHORT["generate_audio"])  # not "%33 less credits"
    assert "If None" not in json.dumps(payload)
    assert "auto_fix" not in {o["name"] for o in veo["options"]}  # an operator's switch, never a user's
    sora = sub(payload, "sora_2_image_to_video")
    assert [o["name"] for o in sora["options"]][:2] == ["prompt", "image"]  # required, then the picture
    assert [o["name"] for o in sora["options"]][-1] == "image_url"


def test_payload_hash_is_stable_and_changes_with_the_payload(payload):
    assert payload_hash(payload) == payload_hash(copy.deepcopy(payload))
    changed = copy.deepcopy(payload)
    changed[0]["description"] = "other"
    assert payload_hash(changed) != payload_hash(payload)


# -- values → arguments ------------------------------------------------------------------------------

def attachment(filename="a.png", content_type="image/png", size=100):
    return SimpleNamespace(filename=filename, content_type=content_type, size=size,
                           url=f"https://cdn.discordapp.com/attachments/1/2/{filename}")


def test_collect_maps_attachments_urls_and_lists():
    plan = plan_tool(CATALOG["veo3_1_reference_to_video"])
    arguments, problems = collect_arguments(plan, {"prompt": "p", "image_1": attachment("a.png"),
                                                   "image_3": attachment("c.png"),
                                                   "image_urls": "https://x/1.png, https://x/2.png"})
    assert problems == []
    assert arguments["image_urls"] == ["https://cdn.discordapp.com/attachments/1/2/a.png",
                                       "https://cdn.discordapp.com/attachments/1/2/c.png",
                                       "https://x/1.png", "https://x/2.png"]
    assert "duration" not in arguments  # a one-value enum with a default: left to the default
    CATALOG["veo3_1_reference_to_video"].validate(arguments)

    _, problems = collect_arguments(plan, {"prompt": "p"})
    assert problems == [("image_urls", "image_1: required — attach at least one image or give image_urls")]
    _, problems = collect_arguments(plan, {"prompt": "p", "image_urls": "ftp://x/1.png"})
    assert "not an http(s):// URL" in problems[0][1]


def test_collect_checks_attachments():
    plan = plan_tool(CATALOG["pika_image_to_video"])
    _, problems = collect_arguments(plan, {"prompt": "p", "image": attachment("a.pdf", "application/pdf")})
    assert "a.pdf is not an image" in problems[0][1]
    _, problems = collect_arguments(plan, {"prompt": "p", "image": attachment(size=MAX_INPUT_BYTES + 1)})
    assert "over the 20.0 MiB limit" in problems[0][1]
    arguments, problems = collect_arguments(plan, {"prompt": "p", "image": attachment("photo.JPG", None)})
    assert problems == [] and arguments["image_url"].endswith("photo.JPG")


def test_collect_builds_image_size():
    plan = plan_tool(CATALOG["hunyuan_image_v3"])
    assert collect_arguments(plan, {"prompt": "p", "width": 640})[0]["image_size"] == {"width": 640, "height": 512}
    assert collect_arguments(plan, {"prompt": "p", "image_size": "square"})[0]["image_size"] == "square"
    assert "image_size" not in collect_arguments(plan, {"prompt": "p"})[0]


# -- videogen discord ------------------------------------------------------------------------------

def test_dump_commands_prints_the_payload_without_connecting():
    out, err = io.StringIO(), io.StringIO()
    assert cli_discord.dump_commands(out, err) == 0
    assert json.loads(out.getvalue()) == build_payload()
    assert f"{len(CATEGORIES) + 8} commands within Discord's limits" in err.getvalue()
    assert "/image-to-video " in err.getvalue()


def test_discord_subcommand_is_registered():
    parser = argparse.ArgumentParser()
    cli_discord.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["discord", "--dump-commands"])
    assert args.func is cli_discord.cmd_discord and args.dump_commands and not args.sync


def test_a_missing_token_is_a_clear_error(clean_env):
    args = argparse.Namespace(config=None, dump_commands=False, simulate=False, sync=False, shard_count=None,
                              shards=None)
    with pytest.raises(UserError, match="No Discord bot token: set DISCORD_TOKEN"):
        cli_discord.cmd_discord(args)
    assert "Developer Portal" in MISSING_TOKEN
    assert not (clean_env / "xdg-data").exists()  # refused before the database was opened


async def test_a_blank_token_is_refused_too():
    settings = Settings.model_validate({"discord": {"token": "  "}})
    with pytest.raises(UserError, match="No Discord bot token"):
        await serve(settings)  # a blank token is as good as none


async def test_commands_sync_only_when_the_payload_changes(tmp_path, database_url):
    from agent_tools.toolkit import Toolkit

    # the synced payload's hash is the bot's own record (discord_meta), kept on either database
    settings = Settings.model_validate({"storage": {"database": database_url,
                                                    "media_dir": str(tmp_path / "media")},
                                        "discord": {"token": "x", "guild_ids": [42]}})
    toolkit = await Toolkit.open(settings)
    try:
        bot = VideoBot(toolkit, intents=discord.Intents.none())
        await bot.prepare()
        bot.tree.sync = AsyncMock(return_value=[])
        assert await bot.sync_commands() == ["guild 42"]
        assert await bot.sync_commands() == []  # unchanged: no call to Discord
        assert bot.tree.sync.await_count == 1
        assert await bot.sync_commands(force=True) == ["guild 42"]
        await bot.state.put(f"commands:{bot.application_id}:guild 42", "an older payload")
        assert await bot.sync_commands() == ["guild 42"]
        assert bot.tree.sync.await_count == 3
        assert bot.tree.sync.await_args.kwargs["guild"].id == 42
    finally:
        await toolkit.close()


async def test_sharded_processes_split_the_gateway_and_only_shard_zeros_syncs(tmp_path):
    from agent_tools.toolkit import Toolkit
    from bots.discord.app import ShardedVideoBot, make_bot

    def settings(**discord_settings):
        return Settings.model_validate({"storage": {"database": str(tmp_path / "db.sqlite"),
                                                    "media_dir": str(tmp_path / "media")},
                                        "discord": {"token": "x", **discord_settings}})

    toolkit = await Toolkit.open(settings(shard_count=4, shard_ids=[2, 3]))
    try:
        bot = make_bot(toolkit, intents=discord.Intents.none())
        assert isinstance(bot, ShardedVideoBot) and isinstance(bot, discord.AutoShardedClient)
        assert bot.shard_count == 4 and bot.shard_ids == [2, 3]
        bot.tree.sync = AsyncMock(return_value=[])
        assert not bot.syncs_commands and await bot.sync_commands(force=True) == []
        assert bot.tree.sync.await_count == 0  # the process running shard 0 syncs for everyone
        toolkit.settings = settings(shard_count=4, shard_ids=[0, 1])
        assert make_bot(toolkit, intents=discord.Intents.none()).syncs_commands
        toolkit.settings = settings()
        plain = make_bot(toolkit, intents=discord.Intents.none())
        assert type(plain) is VideoBot and plain.syncs_commands
    finally:
        await toolkit.close()


def test_shard_settings_are_checked():
    with pytest.raises(ValueError, match="shard_ids needs shard_count"):
        Settings.model_validate({"discord": {"shard_ids": [0]}})
    with pytest.raises(ValueError, match="from 0 to 1"):
        Settings.model_validate({"discord": {"shard_count": 2, "shard_ids": [2]}})
    with pytest.raises(ValueError, match="unknown provider switch"):
        Settings.model_validate({"discord": {"provider_switches": {"seed": True}}})


def test_with_dms_enabled_the_commands_are_offered_in_the_bots_dms():
    payload = build_payload(Settings.model_validate({"discord": {"allow_dms": True}}).discord)
    assert validate_payload(payload) == []
    assert all(c["contexts"] == [0, 1] for c in payload if c["name"] != "admin")


def test_shards_on_the_command_line_override_the_config():
    settings = Settings.model_validate({"discord": {"shard_count": 2, "shard_ids": [0]}})
    assert cli_discord.parse_shards("0-3") == [0, 1, 2, 3] and cli_discord.parse_shards("0-1,4") == [0, 1, 4]
    moved = cli_discord.with_shards(settings, 8, "4-7")
    assert (moved.discord.shard_count, moved.discord.shard_ids) == (8, [4, 5, 6, 7])
    assert cli_discord.with_shards(settings, None, None) is settings
    with pytest.raises(UserError, match="--shards takes shard ids such as 0-3"):
        cli_discord.with_shards(settings, None, "a-b")
    with pytest.raises(UserError, match="shard_ids must be a non-empty list of numbers from 0 to 1"):
        cli_discord.with_shards(settings, None, "5")
    parser = argparse.ArgumentParser()
    cli_discord.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["discord", "--shard-count", "4", "--shards", "0-1"])
    assert (args.shard_count, args.shards) == (4, "0-1")
