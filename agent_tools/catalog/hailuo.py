"""MiniMax Hailuo 02 Standard on fal: text and image to video."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import Field

from ..money import usd
from .pricing import per_second
from .spec import Category, MediaInput, ModelInput, ModelSpec, OutputKind, OutputSpec, Provider, Quote, Rate

OUTPUT = OutputSpec(OutputKind.VIDEO, {"video": "the generated video file (url)"})
DURATION_DESCRIPTION = ("The duration of the video in seconds. 10 seconds videos are not supported for 1080p "
                        "resolution.")
GUIDE = ("Hailuo follows physical action well: describe who does what, where, and how the camera follows "
         "('tracking shot', 'slow push-in'). Long, vivid character and world descriptions are fine. Leave "
         "prompt_optimizer on for short prompts; turn it off to keep precise wording and camera directions.")


class HailuoTextToVideoInput(ModelInput):
    prompt: str = Field(
        examples=["A Galactic Smuggler is a rogue figure with a cybernetic arm and a well-worn coat that hints "
                  "at many dangerous escapades across the galaxy."])
    duration: Literal["6", "10"] = Field(default="6", description=DURATION_DESCRIPTION)
    prompt_optimizer: bool = Field(default=True, description="Whether to use the model's prompt optimizer")


class HailuoImageToVideoInput(ModelInput):
    prompt: str = Field(examples=["Man walked into winter cave with polar bear"])
    image_url: Annotated[str, MediaInput("image")] = Field(
        examples=["https://storage.googleapis.com/falserverless/model_tests/minimax/"
                  "1749891352437225630-389852416840474630_1749891352.png"])
    duration: Literal["6", "10"] = Field(default="6", description=DURATION_DESCRIPTION)
    prompt_optimizer: bool = Field(default=True, description="Whether to use the model's prompt optimizer")
    resolution: Literal["512P", "768P"] = Field(default="768P", description="The resolution of the generated video.")
    end_image_url: Annotated[str, MediaInput("image")] | None = Field(
        default=None, description="Optional URL of the image to use as the last frame of the video")


def _price_t2v(params: HailuoTextToVideoInput, rates: Mapping[str, int]) -> Quote:
    return per_second(rates, "per_second", int(params.duration), "768P")


def _price_i2v(params: HailuoImageToVideoInput, rates: Mapping[str, int]) -> Quote:
    return per_second(rates, f"per_second_{params.resolution.lower()}", int(params.duration), params.resolution)


HAILUO_02_TEXT_TO_VIDEO = ModelSpec(
    tool="hailuo_02_text_to_video",
    title="MiniMax Hailuo 02 Standard — text to video (fal)",
    provider=Provider.FAL,
    endpoint_id="fal-ai/minimax/hailuo-02/standard/text-to-video",
    category=Category.TEXT_TO_VIDEO,
    Input=HailuoTextToVideoInput,
    output=OUTPUT,
    rates={"per_second": Rate(usd("0.045"), "per second at 768P")},
    pricer=_price_t2v,
    price_unit="$0.045 per second (768P)",
    price_source="fal model page (seed)",
    summary=("MiniMax Hailuo 02 Standard: a 6 or 10 s 768p clip from text, the cheapest text-to-video here "
             "($0.27 for 6 s). Good physics and motion; no audio. Use it for drafts and volume."),
    prompt_guide=GUIDE,
)

HAILUO_02_IMAGE_TO_VIDEO = ModelSpec(
    tool="hailuo_02_image_to_video",
    title="MiniMax Hailuo 02 Standard — image to video (fal)",
    provider=Provider.FAL,
    endpoint_id="fal-ai/minimax/hailuo-02/standard/image-to-video",
    category=Category.IMAGE_TO_VIDEO,
    Input=HailuoImageToVideoInput,
    output=OUTPUT,
    # The page prices 768P only; 512P is fal's list price "roughly $0.017/s" (docs/providers.md §3).
    rates={"per_second_768p": Rate(usd("0.045"), "per second at 768P"),
           "per_second_512p": Rate(usd("0.017"), "per second at 512P")},
    pricer=_price_i2v,
    price_unit="$0.045 per second at 768P, $0.017 at 512P",
    price_source="fal model page (seed) for 768P; fal list price for 512P",
    summary=("MiniMax Hailuo 02 Standard from an image as the first frame (optionally an end frame too): a 6 "
             "or 10 s clip at 512P or 768P, no audio. The cheapest image-to-video here; use it for drafts, "
             "volume, and simple first-to-last-frame transitions."),
    prompt_guide="Describe the motion that starts from the image. " + GUIDE,
)

SPECS = (HAILUO_02_TEXT_TO_VIDEO, HAILUO_02_IMAGE_TO_VIDEO)
