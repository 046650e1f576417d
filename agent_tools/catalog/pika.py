"""Pika v2.2 on fal: text to video and image to video."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import Field

from ..money import usd
from .pricing import per_clip_seconds
from .spec import Category, MediaInput, ModelInput, ModelSpec, OutputKind, OutputSpec, Provider, Quote, Rate

OUTPUT = OutputSpec(OutputKind.VIDEO, {"video": "the generated video file (url)"})
RATES = {"per_5s_720p": Rate(usd("0.20"), "per 5 s clip at 720p"),
         "per_5s_1080p": Rate(usd("0.45"), "per 5 s clip at 1080p")}
PRICE_UNIT = "$0.20 per 5 s at 720p, $0.45 per 5 s at 1080p"
# The pages price a 5 s clip; fal's API accepts 5 or 10 s (docs/providers.md §3), and a 10 s
# clip is priced as two 5 s clips until fal publishes otherwise.
Duration = Literal[5, 10]

GUIDE = ("One or two sentences in plain cinematic language: the subject, the action, the setting, then "
         "the camera ('the simple, steady camerawork emphasizes her grace'). Name the mood and light. Pika "
         "favours expressive motion and stylised effects; keep one clear action per clip and use "
         "negative_prompt for what must not appear. Draft at 720p (less than half the price), then "
         "re-run the winner at 1080p with the same seed.")


def _price(params: "PikaTextToVideoInput | PikaImageToVideoInput", rates: Mapping[str, int]) -> Quote:
    return per_clip_seconds(rates, f"per_5s_{params.resolution}", params.duration, 5, params.resolution)


class PikaTextToVideoInput(ModelInput):
    prompt: str = Field(
        examples=["Sunlight streams down on a woman with flowing auburn hair as she runs effortlessly along a "
                  "tree-lined street, her joyous expression reflecting the freedom of the moment; the simple, "
                  "steady camerawork emphasizes her grace and the beauty of the everyday."])
    seed: int | None = Field(default=None, description="The seed for the random number generator")
    negative_prompt: str = Field(default="", description="A negative prompt to guide the model")
    aspect_ratio: Literal["16:9", "9:16", "1:1", "4:5", "5:4", "3:2", "2:3"] = Field(
        default="16:9", description="The aspect ratio of the generated video")
    resolution: Literal["720p", "1080p"] = Field(default="720p", description="The resolution of the generated video")
    duration: Duration = Field(default=5, description="The duration of the generated video in seconds")


class PikaImageToVideoInput(ModelInput):
    image_url: Annotated[str, MediaInput("image")] = Field(
        description="URL of the image to use as the first frame",
        examples=["https://storage.googleapis.com/falserverless/web-examples/pika/pika%202.2/pika_input.png"])
    prompt: str = Field(examples=["a woman looking into camera slowly smiling"])
    seed: int | None = Field(default=None, description="The seed for the random number generator")
    negative_prompt: str = Field(default="", description="A negative prompt to guide the model")
    resolution: Literal["720p", "1080p"] = Field(default="720p", description="The resolution of the generated video")
    duration: Duration = Field(default=5, description="The duration of the generated video in seconds")


PIKA_TEXT_TO_VIDEO = ModelSpec(
    tool="pika_text_to_video",
    title="Pika 2.2 — text to video (fal)",
    provider=Provider.FAL,
    endpoint_id="fal-ai/pika/v2.2/text-to-video",
    category=Category.TEXT_TO_VIDEO,
    Input=PikaTextToVideoInput,
    output=OUTPUT,
    rates=RATES,
    pricer=_price,
    price_unit=PRICE_UNIT,
    price_source="fal model page (seed); 10 s prorated",
    summary=("Create a 5 or 10 s clip from text alone with Pika 2.2, in seven aspect ratios from 9:16 to "
             "16:9. A good low-cost choice for social clips, stylised animation and effects when no "
             "reference image is needed; no audio."),
    prompt_guide=GUIDE,
)

PIKA_IMAGE_TO_VIDEO = ModelSpec(
    tool="pika_image_to_video",
    title="Pika 2.2 — image to video (fal)",
    provider=Provider.FAL,
    endpoint_id="fal-ai/pika/v2.2/image-to-video",
    category=Category.IMAGE_TO_VIDEO,
    Input=PikaImageToVideoInput,
    output=OUTPUT,
    rates=RATES,
    pricer=_price,
    price_unit=PRICE_UNIT,
    price_source="fal model page (seed); 10 s prorated",
    summary=("Animate an image (used as the first frame) into a 5 or 10 s clip with Pika 2.2. Inexpensive "
             "and quick; use it to bring a portrait, product shot or illustration to life; no audio."),
    prompt_guide=("Describe only the motion that should start from the image: 'a woman looking into camera "
                   "slowly smiling'. Short prompts work; add camera movement and pace if needed. " + GUIDE),
)

SPECS = (PIKA_TEXT_TO_VIDEO, PIKA_IMAGE_TO_VIDEO)
