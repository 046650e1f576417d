"""The model recommender: solved from the catalog's schemas and price formulas, with relaxations.

Exercised on the real catalog, on a model made up here (so nothing can be hand-listed for it), as
the ``recommend_models`` MCP tool through the SDK client, and as ``videogen recommend``.
"""

from __future__ import annotations

import json
from typing import Literal

import pytest
from mcp import Client
from pydantic import Field

from agent_tools.catalog import CATALOG, Category, ModelInput, ModelSpec, OutputKind, Provider, Quote, Rate
from agent_tools.catalog.spec import OutputSpec
from agent_tools.cli.main import main
from agent_tools.errors import UserError
from agent_tools.mcp_server.server import build_server
from agent_tools.recommend import Wants, recommend
from agent_tools.toolkit import Account, Toolkit

from test_mcp_server import make_settings, sim, text_of  # noqa: F401  (sim is a fixture)

DOLLAR = 1_000_000


def priced_by_its_own_formula(option) -> bool:
    spec = CATALOG[option.tool]
    params, _ = spec.validate_for_pricing(option.params)
    return spec.price(params).micros == option.cost_micros and spec.price(params).formula == option.formula


def test_six_seconds_with_audio_under_a_dollar_has_no_fit_but_near_ones():
    found = recommend(Wants(duration=6, audio=True, budget_micros=DOLLAR))
    assert found.options == []
    relaxed = {r.dropped: r.options for r in found.relaxations}
    assert list(relaxed) == ["budget", "audio", "duration"]
    # without the budget: the cheapest 6 s clip with sound
    [veo] = relaxed["budget"]
    assert (veo.tool, veo.duration, veo.audio, veo.cost_micros) == ("veo3_fast", 6, True, 2_400_000)
    # without audio: 6 s clips under $1, cheapest first
    assert relaxed["audio"][0].cost_micros <= relaxed["audio"][-1].cost_micros
    assert {o.tool for o in relaxed["audio"]} >= {"hailuo_02_text_to_video"}
    assert all(o.duration == 6 and not o.audio and o.cost_micros <= DOLLAR for o in relaxed["audio"])
    # without the length: the nearest lengths with sound under $1 (Sora 2, 4 s, $0.40)
    assert all(o.duration == 4 and o.audio and o.cost_micros == 400_000 for o in relaxed["duration"])
    assert all(priced_by_its_own_formula(o) for r in found.relaxations for o in r.options)
    text = found.text()
    assert text.startswith("6 s with audio under $1.00: none.")
    assert "Without the budget wish: veo3_fast: Veo 3 Fast (text-to-video) 6 s 720p 16:9 with audio $2.40" in text


def test_options_meet_every_wish_cheapest_first_with_arguments_the_model_accepts():
    found = recommend(Wants(category=Category.TEXT_TO_VIDEO, duration=8, resolution="1080p"))
    assert [o.tool for o in found.options] == ["veo3_fast", "sora_2_pro_text_to_video"]
    costs = [o.cost_micros for o in found.options]
    assert costs == sorted(costs) and costs[0] == 2_000_000  # Veo 3 Fast with audio off is cheaper
    assert found.options[0].params["generate_audio"] is False
    for option in found.options:
        assert option.duration == 8 and option.resolution == "1080p" and priced_by_its_own_formula(option)
        CATALOG[option.tool].validate({"prompt": "x", **option.params})


def test_operator_price_overrides_change_the_answer():
    wants = Wants(category=Category.TEXT_TO_VIDEO, duration=8, resolution="1080p")
    found = recommend(wants, overrides={"veo3_fast": {"per_second": DOLLAR, "per_second_audio": DOLLAR}})
    assert [o.tool for o in found.options] == ["sora_2_pro_text_to_video", "veo3_fast"]


class MadeUpInput(ModelInput):
    prompt: str
    duration: Literal[3, 7] = Field(default=3)
    resolution: Literal["480p", "1440p"] = Field(default="480p")
    generate_audio: bool = Field(default=False)


def _price(params: MadeUpInput, rates) -> Quote:
    rate = rates["per_second_sound"] if params.generate_audio else rates["per_second"]
    factor = 3 if params.resolution == "1440p" else 1
    return Quote(params.duration * rate * factor, f"{params.duration} s × rate × {factor}")


MADE_UP = ModelSpec(
    tool="made_up_video", title="Made Up — text to video", provider=Provider.FAL, endpoint_id="test/made-up",
    category=Category.TEXT_TO_VIDEO, Input=MadeUpInput, output=OutputSpec(OutputKind.VIDEO, {}, audio=True),
    rates={"per_second": Rate(100_000, "per second"), "per_second_sound": Rate(150_000, "per second, sound")},
    pricer=_price, price_unit="$0.10/s, $0.15/s with sound", price_source="test", summary="Made up.",
    prompt_guide="Anything.")


def test_any_model_is_solved_from_its_schema_and_formula_alone():
    found = recommend(Wants(duration=7, audio=True, resolution="1440p"), specs=[MADE_UP])
    [option] = found.options
    assert option.params == {"duration": 7, "resolution": "1440p", "generate_audio": True}
    assert option.cost_micros == 7 * 150_000 * 3
    cheap = recommend(Wants(duration=7), specs=[MADE_UP]).options[0]
    assert cheap.params == {"duration": 7, "resolution": "480p", "generate_audio": False}
    nothing = recommend(Wants(duration=5, budget_micros=400_000), specs=[MADE_UP])
    relaxed = {r.dropped: r.options for r in nothing.relaxations}
    assert nothing.options == [] and relaxed["budget"] == []  # no 5 s clip at any price
    [near] = relaxed["duration"]
    assert (near.duration, near.cost_micros, near.audio) == (3, 300_000, False)
    assert "Without the budget wish: nothing either" in nothing.text()


def test_images_have_no_length():
    with pytest.raises(UserError, match="Images have no duration or audio"):
        recommend(Wants(category=Category.TEXT_TO_IMAGE, duration=5))
    images = recommend(Wants(category=Category.TEXT_TO_IMAGE, budget_micros=DOLLAR))
    assert [o.tool for o in images.options] == ["hunyuan_image_v3"]


# -- as a tool and a command ------------------------------------------------------------------------

@pytest.mark.parametrize("tools", ["default", "compact"])
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_recommend_models_tool(tmp_path, sim, tools, mode):
    async with await Toolkit.open(make_settings(tmp_path, sim)) as kit:
        server = build_server(kit, lambda ctx: Account("alice"), local_files=False, tools=tools)
        async with Client(server, mode=mode) as client:
            fits = await client.call_tool("recommend_models", {"duration_seconds": 8, "resolution": "1080p",
                                                               "category": "text-to-video"})
            none = await client.call_tool("recommend_models", {"duration_seconds": 6, "audio": True,
                                                               "max_cost_usd": 1})
            bad = await client.call_tool("recommend_models", {"duration_seconds": -1})
    assert [o["tool"] for o in fits.structured_content["options"]] == ["veo3_fast", "sora_2_pro_text_to_video"]
    assert fits.structured_content["options"][0]["arguments"]["generate_audio"] is False
    assert none.structured_content["options"] == [] and "none." in text_of(none)
    assert [r["dropped"] for r in none.structured_content["relaxations"]] == ["budget", "audio", "duration"]
    assert bad.is_error and "duration_seconds" in text_of(bad)


def test_videogen_recommend(clean_env, capsys):
    assert main(["recommend", "--category", "text-to-video", "--duration", "8", "--resolution", "1080p"]) == 0
    out = capsys.readouterr().out
    assert "veo3_fast" in out and "--no-generate-audio" in out and "$2.00" in out
    assert main(["recommend", "--duration", "6", "--audio", "--budget", "1"]) == 1
    assert "none." in capsys.readouterr().out
    assert main(["recommend", "--duration", "6", "--no-audio", "--budget", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["options"] and all(not o["audio"] and o["cost_usd"] <= 1 for o in data["options"])
    assert main(["recommend", "--budget", "-2"]) == 2
    assert "--budget must be" in capsys.readouterr().err
