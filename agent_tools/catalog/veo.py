"""Google Veo on fal: Veo 3.1 reference-to-video, Veo 3 Fast, Veo 3.1 Fast first/last frame."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import Field

from ..money import usd
from .pricing import per_second
from .spec import Category, MediaInput, ModelInput, ModelSpec, OutputKind, OutputSpec, Provider, Quote, Rate

OUTPUT = OutputSpec(OutputKind.VIDEO, {"video": "the generated video file (url)"}, audio=True)
AUDIO_DESCRIPTION = "Whether to generate audio for the video. If false, %33 less credits will be used."

GUIDE = ("Write a shot description, not keywords: subject and action, setting and time of day, camera "
         "(framing, lens, movement), lighting and style. Veo generates synchronized sound: put dialogue in "
         "the prompt as 'Person says: ...' and name ambient sounds and music, or say 'no background music'. "
         "One scene per clip. Turn generate_audio off for silent clips to pay less.")


def _seconds(duration: str) -> int:
    return int(duration.rstrip("s"))


def _price_audio(params: "Veo31ReferenceToVideoInput | Veo3FastInput | Veo31FastFirstLastFrameInput",
                 rates: Mapping[str, int]) -> Quote:
    if params.generate_audio:
        return per_second(rates, "per_second_audio", _seconds(params.duration), "audio on")
    return per_second(rates, "per_second", _seconds(params.duration), "audio off")


class Veo31ReferenceToVideoInput(ModelInput):
    image_urls: list[Annotated[str, MediaInput("image")]] = Field(
        min_length=1,
        description="URLs of the reference images to use for consistent subject appearance",
        examples=[["https://storage.googleapis.com/falserverless/example_inputs/veo31-r2v-input-1.png",
                   "https://storage.googleapis.com/falserverless/example_inputs/veo31-r2v-input-2.png",
                   "https://storage.googleapis.com/falserverless/example_inputs/veo31-r2v-input-3.png"]])
    prompt: str = Field(
        description="The text prompt describing the video you want to generate",
        examples=["A graceful ballerina dancing outside a circus tent on green grass, with colorful wildflowers "
                  "swaying around her as she twirls and poses in the meadow."])
    duration: Literal["8s"] = Field(default="8s", description="The duration of the generated video in seconds")
    resolution: Literal["720p", "1080p"] = Field(default="720p", description="Resolution of the generated video")
    generate_audio: bool = Field(default=True, description=AUDIO_DESCRIPTION)


class Veo3FastInput(ModelInput):
    prompt: str = Field(
        description="The text prompt describing the video you want to generate",
        examples=["A casual street interview on a busy New York City sidewalk in the afternoon. The interviewer "
                  "holds a plain, unbranded microphone and asks: Have you seen Google's new Veo3 model It is a "
                  "super good model. Person replies: Yeah I saw it, it's already available on fal. It's crazy good."])
    aspect_ratio: Literal["9:16", "16:9", "1:1"] = Field(
        default="16:9",
        description="The aspect ratio of the generated video. If it is set to 1:1, the video will be outpainted.")
    duration: Literal["4s", "6s", "8s"] = Field(
        default="8s", description="The duration of the generated video in seconds")
    negative_prompt: str | None = Field(default=None, description="A negative prompt to guide the video generation")
    enhance_prompt: bool = Field(default=True, description="Whether to enhance the video generation")
    seed: int | None = Field(default=None, description="A seed to use for the video generation")
    auto_fix: bool = Field(
        default=True,
        description=("Whether to automatically attempt to fix prompts that fail content policy or other "
                     "validation checks by rewriting them"))
    resolution: Literal["720p", "1080p"] = Field(default="720p", description="The resolution of the generated video")
    generate_audio: bool = Field(default=True, description=AUDIO_DESCRIPTION)


class Veo31FastFirstLastFrameInput(ModelInput):
    first_frame_url: Annotated[str, MediaInput("image")] = Field(
        description="URL of the first frame of the video",
        examples=["https://storage.googleapis.com/falserverless/example_inputs/veo31-flf2v-input-1.jpeg"])
    last_frame_url: Annotated[str, MediaInput("image")] = Field(
        description="URL of the last frame of the video",
        examples=["https://storage.googleapis.com/falserverless/example_inputs/veo31-flf2v-input-2.jpeg"])
    prompt: str = Field(
        description="The text prompt describing the video you want to generate",
        examples=["A woman looks into the camera, breathes in, then exclaims energetically, \"have you guys "
                  "checked out Veo3.1 First-Last-Frame-to-Video on Fal? It's incredible!\""])
    duration: Literal["8s"] = Field(default="8s", description="The duration of the generated video in seconds")
    aspect_ratio: Literal["auto", "9:16", "16:9", "1:1"] = Field(
        default="auto", description="Aspect ratio of the generated video")
    resolution: Literal["720p", "1080p"] = Field(default="720p", description="Resolution of the generated video")
    generate_audio: bool = Field(default=True, description=AUDIO_DESCRIPTION)


def _rates(off: str, on: str) -> dict[str, Rate]:
    return {"per_second": Rate(usd(off), "per second, audio off"),
            "per_second_audio": Rate(usd(on), "per second, audio on")}


VEO31_REFERENCE_TO_VIDEO = ModelSpec(
    tool="veo3_1_reference_to_video",
    title="Veo 3.1 — reference images to video (fal)",
    provider=Provider.FAL,
    endpoint_id="fal-ai/veo3.1/reference-to-video",
    category=Category.REFERENCE_TO_VIDEO,
    Input=Veo31ReferenceToVideoInput,
    output=OUTPUT,
    rates=_rates("0.20", "0.40"),
    pricer=_price_audio,
    price_unit="$0.20/s audio off, $0.40/s audio on (8 s clips)",
    price_source="fal model page (seed)",
    summary=("Google Veo 3.1: an 8 s clip, with sound, in which the subjects of one or more reference "
             "images (people, characters, products) keep a consistent appearance. Use it when a specific "
             "subject must appear in a new scene; top quality, top price."),
    prompt_guide=("Refer to what the reference images show ('the ballerina', 'the red sneaker') and describe "
                  "the new scene around them. " + GUIDE),
)

VEO3_FAST = ModelSpec(
    tool="veo3_fast",
    title="Veo 3 Fast — text to video (fal)",
    provider=Provider.FAL,
    endpoint_id="fal-ai/veo3/fast",
    category=Category.TEXT_TO_VIDEO,
    Input=Veo3FastInput,
    output=OutputSpec(OutputKind.VIDEO, {"video": "the generated video file (url)"}, audio=True),
    rates=_rates("0.25", "0.40"),
    pricer=_price_audio,
    price_unit="$0.25/s audio off, $0.40/s audio on",
    price_source="fal model page (seed); docs/providers.md reports a newer $0.10/$0.15 per s: override in config",
    summary=("Google Veo 3 Fast: a 4, 6 or 8 s clip from text with synchronized speech, sound effects and "
             "music, at 720p or 1080p. The best choice here for talking characters and scenes whose sound "
             "matters, and faster and cheaper than full Veo 3."),
    prompt_guide=GUIDE + " enhance_prompt and auto_fix rewrite weak or rejected prompts; turn them off to keep "
                 "your exact wording.",
)

VEO31_FAST_FIRST_LAST_FRAME = ModelSpec(
    tool="veo3_1_fast_first_last_frame",
    title="Veo 3.1 Fast — first and last frame to video (fal)",
    provider=Provider.FAL,
    endpoint_id="fal-ai/veo3.1/fast/first-last-frame-to-video",
    category=Category.FIRST_LAST_FRAME_TO_VIDEO,
    Input=Veo31FastFirstLastFrameInput,
    output=OUTPUT,
    rates=_rates("0.10", "0.15"),
    pricer=_price_audio,
    price_unit="$0.10/s audio off, $0.15/s audio on (8 s clips)",
    price_source="fal model page (seed)",
    summary=("Google Veo 3.1 Fast: an 8 s clip, with sound, that starts on one image and ends on another. "
             "Use it for transitions, transformations, before/after reveals, or to join two generated "
             "stills into a shot."),
    prompt_guide=("Describe what happens between the two frames and how the camera moves from the first "
                  "composition to the second; keep both frames the same aspect ratio. " + GUIDE),
)

SPECS = (VEO31_REFERENCE_TO_VIDEO, VEO3_FAST, VEO31_FAST_FIRST_LAST_FRAME)
