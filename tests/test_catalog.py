"""The catalog matches the provider pages field by field, and prices follow the published rates."""

from __future__ import annotations

import json
import re

import pytest

from agent_tools.catalog import CATALOG, PRICES_AS_OF, Category, OutputKind, Provider, get
from agent_tools.errors import InvalidArguments, UnknownTool

EXPECTED_ENDPOINTS = {
    "fal-ai/hunyuan-video-image-to-video", "fal-ai/hunyuan-custom", "fal-ai/pika/v2.2/text-to-video",
    "fal-ai/pika/v2.2/image-to-video", "fal-ai/veo3.1/reference-to-video", "fal-ai/veo3/fast",
    "fal-ai/veo3.1/fast/first-last-frame-to-video", "fal-ai/sora-2/text-to-video",
    "fal-ai/sora-2/image-to-video", "fal-ai/sora-2/text-to-video/pro", "fal-ai/sora-2/image-to-video/pro",
    "fal-ai/minimax/hailuo-02/standard/text-to-video", "fal-ai/minimax/hailuo-02/standard/image-to-video",
    "fal-ai/hunyuan-image/v3/text-to-image", "wavespeed-ai/hunyuan-video/i2v",
}

# Deliberate, commented departures from a seed page (see the catalog modules for the reasons).
SEED_DEPARTURES = {
    ("fal-ai/hunyuan-video-image-to-video", "resolution"),  # free string on the page; only "720p" is priced
    ("fal-ai/hunyuan-video-image-to-video", "num_frames"),  # typed string, example sends int: both accepted
    ("fal-ai/pika/v2.2/text-to-video", "duration"),  # page gives no range; fal accepts 5 or 10
    ("fal-ai/pika/v2.2/image-to-video", "duration"),
    ("fal-ai/hunyuan-image/v3/text-to-image", "image_size"),  # union: checked in its own test
}

SEED_TYPES = {"string": {"string"}, "integer": {"integer"}, "float": {"number"}, "boolean": {"boolean"},
              "list<string>": {"array"}}


def test_every_seed_endpoint_is_one_spec():
    assert {spec.endpoint_id for spec in CATALOG.values()} == EXPECTED_ENDPOINTS
    assert len(CATALOG) == 15
    assert sum(spec.provider is Provider.WAVESPEED for spec in CATALOG.values()) == 1


@pytest.mark.parametrize("spec", CATALOG.values(), ids=lambda s: s.tool)
def test_spec_identity(spec):
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", spec.tool)
    assert spec.title and spec.summary and spec.prompt_guide
    assert isinstance(spec.category, Category)
    expected_kind = OutputKind.IMAGES if spec.category is Category.TEXT_TO_IMAGE else OutputKind.VIDEO
    assert spec.output.kind is expected_kind and spec.output.fields
    assert spec.rates, "every spec has at least one overridable rate"
    assert "Price:" in spec.description and "How to prompt:" in spec.description


@pytest.mark.parametrize("spec", CATALOG.values(), ids=lambda s: s.tool)
def test_input_matches_seed_field_by_field(spec, seed_fields):
    seed = {k: v for k, v in seed_fields[spec.endpoint_id].items() if not k.startswith("_")}
    schema = spec.schema()
    props = schema["properties"]
    assert list(props) == list(seed), "same fields, in the page's order"
    assert set(schema.get("required", ())) == {n for n, f in seed.items() if f["required"]}
    for name, field in seed.items():
        if (spec.endpoint_id, name) in SEED_DEPARTURES:
            continue
        prop = props[name]
        if "options" in field:
            assert prop["enum"] == field["options"], name
        elif field["type"] in SEED_TYPES:
            assert {prop["type"]} <= SEED_TYPES[field["type"]], name
        if "range" in field:
            assert [prop["minimum"], prop["maximum"]] == field["range"], name
        if "default" in field:
            assert prop["default"] == field["default"], name
        else:
            assert "default" not in prop, name


def test_seed_departures_are_what_the_comments_say():
    i2v = get("hunyuan_video_image_to_video").schema()["properties"]
    assert i2v["resolution"]["enum"] == ["720p"] and i2v["resolution"]["default"] == "720p"
    assert i2v["num_frames"]["enum"] == ["129", 129]
    for tool in ("pika_text_to_video", "pika_image_to_video"):
        duration = get(tool).schema()["properties"]["duration"]
        assert duration["enum"] == [5, 10] and duration["default"] == 5
    # num_frames as the Full Example sends it (an int) is normalised to the string fal's page types.
    params = get("hunyuan_video_image_to_video").validate({"prompt": "p", "image_url": "u", "num_frames": 129})
    assert params.provider_payload()["num_frames"] == "129"


def test_image_size_is_a_faithful_union():
    spec = get("hunyuan_image_v3")
    prop = spec.schema()["properties"]["image_size"]
    preset, custom = prop["anyOf"]
    assert "square_hd" in preset["enum"] and prop["default"] == "square_hd"
    assert custom["type"] == "object" and set(custom["properties"]) == {"width", "height"}
    assert spec.validate({"prompt": "p", "image_size": "landscape_16_9"}).pixels() == (1024, 576)
    assert spec.validate({"prompt": "p", "image_size": {"width": 640, "height": 480}}).pixels() == (640, 480)
    with pytest.raises(InvalidArguments):
        spec.validate({"prompt": "p", "image_size": {"width": 640, "height": 480, "depth": 3}})


def test_media_fields_are_marked():
    assert get("veo3_1_fast_first_last_frame").media_fields() == {"first_frame_url": "image", "last_frame_url": "image"}
    assert get("veo3_1_reference_to_video").media_fields() == {"image_urls": "image"}
    assert get("wavespeed_hunyuan_video_i2v").media_fields() == {"image": "image"}
    assert get("sora_2_text_to_video").media_fields() == {}


# -- prices -----------------------------------------------------------------------------------

def _price(tool: str, **args) -> int:
    spec = get(tool)
    params, _ = spec.validate_for_pricing(args)
    return spec.price(params).micros


@pytest.mark.parametrize(("tool", "args", "micros"), [
    ("hunyuan_video_image_to_video", {}, 400_000),
    ("hunyuan_custom", {}, 800_000),
    ("hunyuan_custom", {"resolution": "720p"}, 2_400_000),
    ("wavespeed_hunyuan_video_i2v", {}, 400_000),
    ("wavespeed_hunyuan_video_i2v", {"duration": 10}, 800_000),
    ("wavespeed_hunyuan_video_i2v", {"duration": 7}, 560_000),
    ("pika_text_to_video", {}, 200_000),
    ("pika_text_to_video", {"resolution": "1080p"}, 450_000),
    ("pika_image_to_video", {"duration": 10, "resolution": "1080p"}, 900_000),
    ("veo3_1_reference_to_video", {}, 3_200_000),
    ("veo3_1_reference_to_video", {"generate_audio": False}, 1_600_000),
    ("veo3_fast", {"duration": "4s", "generate_audio": False}, 1_000_000),
    ("veo3_fast", {}, 3_200_000),
    ("veo3_1_fast_first_last_frame", {}, 1_200_000),
    ("veo3_1_fast_first_last_frame", {"generate_audio": False}, 800_000),
    ("sora_2_text_to_video", {"duration": 12}, 1_200_000),
    ("sora_2_image_to_video", {"duration": 8}, 800_000),
    ("sora_2_pro_text_to_video", {"duration": 8, "resolution": "720p"}, 2_400_000),
    ("sora_2_pro_text_to_video", {}, 2_000_000),
    ("sora_2_pro_image_to_video", {"resolution": "auto", "duration": 4}, 2_000_000),  # reserved at 1080p
    ("hailuo_02_text_to_video", {"duration": "10"}, 450_000),
    ("hailuo_02_image_to_video", {}, 270_000),
    ("hailuo_02_image_to_video", {"resolution": "512P"}, 102_000),
    ("hunyuan_image_v3", {}, 104_858),  # 1024×1024 = 1.048576 MP × $0.10, rounded up
    ("hunyuan_image_v3", {"image_size": {"width": 1000, "height": 1000}, "num_images": 4}, 400_000),
])
def test_prices_follow_the_published_rates(tool, args, micros):
    assert _price(tool, **args) == micros


def test_own_openai_key_costs_nothing_and_stays_secret():
    spec = get("sora_2_text_to_video")
    params = spec.validate({"prompt": "p", "api_key": "sk-live-123"})
    quote = spec.price(params)
    assert quote.micros == 0 and "own OpenAI key" in quote.formula
    assert "sk-live-123" not in json.dumps(params.public_params())
    assert "sk-live-123" not in repr(params)
    assert params.provider_payload()["api_key"] == "sk-live-123"


def test_price_overrides_replace_rates_and_show_in_the_formula():
    spec = get("veo3_fast")
    params = spec.validate({"prompt": "p"})
    quote = spec.price(params, {"per_second_audio": 150_000})
    assert quote.micros == 1_200_000 and "$0.15/s" in quote.formula


def test_prices_are_dated():
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", PRICES_AS_OF)


# -- validation messages ------------------------------------------------------------------------

def test_invalid_arguments_name_every_problem_with_allowed_values():
    with pytest.raises(InvalidArguments) as info:
        get("pika_text_to_video").validate({"duration": 7, "resolution": "4k", "colour": "red"})
    problems = "\n".join(info.value.problems)
    assert len(info.value.problems) == 4
    assert "prompt: required" in problems
    assert 'duration: 7 is not allowed; expected one of 5, 10 (default 5)' in problems
    assert '"720p", "1080p"' in problems
    assert "colour: not a parameter of pika_text_to_video" in problems


def test_out_of_range_message_gives_the_range():
    with pytest.raises(InvalidArguments) as info:
        get("hunyuan_custom").validate({"prompt": "p", "image_url": "u", "fps": 60})
    assert info.value.problems == ["fps: 60 is not allowed; expected an integer from 16 to 30 (default 25)"]


def test_secret_values_are_not_echoed_in_errors():
    with pytest.raises(InvalidArguments) as info:
        get("sora_2_text_to_video").validate({"prompt": "p", "api_key": 12345678})
    assert "12345678" not in str(info.value)


def test_unknown_tool_suggests_the_closest_names():
    with pytest.raises(UnknownTool) as info:
        get("sora2_pro_text_to_video")
    assert info.value.suggestions[0] == "sora_2_pro_text_to_video"
    assert get("fal-ai/veo3/fast").tool == "veo3_fast"  # endpoint ids resolve too
