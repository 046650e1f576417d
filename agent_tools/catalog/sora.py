"""OpenAI Sora 2 on fal: text and image to video, standard and Pro."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import Field, SecretStr

from ..money import usd
from .pricing import per_second
from .spec import Category, MediaInput, ModelInput, ModelSpec, OutputKind, OutputSpec, Provider, Quote, Rate

OUTPUT = OutputSpec(OutputKind.VIDEO, {"video": "the generated video file (url, content_type)",
                                       "video_id": "the ID of the generated video"}, audio=True)
API_KEY_DESCRIPTION = "The API key to use for the OpenAI API. If provided, you will not be billed for the request."
T2V_EXAMPLE = ("A dramatic Hollywood breakup scene at dusk on a quiet suburban street. A man and a woman in their "
               "30s face each other, speaking softly but emotionally, lips syncing to breakup dialogue. Cinematic "
               "lighting, warm sunset tones, shallow depth of field, gentle breeze moving autumn leaves, realistic "
               "natural sound, no background music")
I2V_EXAMPLE = ("Front-facing 'invisible' action-cam on a skydiver in freefall above bright clouds; camera locked on "
               "his face. He speaks over the wind with clear lipsync: 'This is insanely fun! You've got to try "
               "it—book a tandem and go!' Natural wind roar, voice close-mic'd and slightly compressed so it's "
               "intelligible. Midday sun, goggles and jumpsuit flutter, altimeter visible, parachute rig on "
               "shoulders. Energetic but stable framing with subtle shake; brief horizon roll. End on first tug of "
               "canopy and wind noise dropping.")
I2V_IMAGE = "https://storage.googleapis.com/falserverless/example_inputs/sora-2-i2v-input.png"

GUIDE = ("Write a dense paragraph like a shot list: camera and framing, subject and action beat by beat, "
         "setting, light, and the sound (dialogue in quotes with 'clear lipsync', ambient noise, 'no background "
         "music'). Say how the clip ends. Sora 2 renders speech and sound with the picture; 4 s suits one action, "
         "8–12 s a short scene.")
BYO_KEY_NOTE = ("If you pass your own OpenAI api_key, OpenAI bills you and this tool charges $0.00; the key is "
                "sent to the provider only and is never stored or shown.")

Duration = Literal[4, 8, 12]
DURATION_DESCRIPTION = "Duration of the generated video in seconds"


def _byo_key(params: "SoraInputs", rates: Mapping[str, int], quote: Quote) -> Quote:
    if params.api_key is not None:
        return Quote(0, f"$0.00 — billed to your own OpenAI key (would be {quote.formula})")
    return quote


def _price_standard(params: "SoraInputs", rates: Mapping[str, int]) -> Quote:
    return _byo_key(params, rates, per_second(rates, "per_second", params.duration))


def _price_pro(params: "SoraInputs", rates: Mapping[str, int]) -> Quote:
    # "auto" follows the input image's resolution, which is unknown until the job runs: it is
    # reserved at the 1080p rate, the most it can cost.
    tier = "1080p" if params.resolution == "auto" else params.resolution
    label = "auto, reserved at the 1080p rate" if params.resolution == "auto" else tier
    return _byo_key(params, rates, per_second(rates, f"per_second_{tier}", params.duration, label))


class Sora2TextToVideoInput(ModelInput):
    api_key: SecretStr | None = Field(default=None, description=API_KEY_DESCRIPTION)
    prompt: str = Field(description="The text prompt describing the video you want to generate",
                        examples=[T2V_EXAMPLE])
    resolution: Literal["720p"] = Field(default="720p", description="The resolution of the generated video")
    aspect_ratio: Literal["9:16", "16:9"] = Field(default="16:9", description="The aspect ratio of the generated video")
    duration: Duration = Field(default=4, description=DURATION_DESCRIPTION)


class Sora2ImageToVideoInput(ModelInput):
    api_key: SecretStr | None = Field(default=None, description=API_KEY_DESCRIPTION)
    prompt: str = Field(description="The text prompt describing the video you want to generate",
                        examples=[I2V_EXAMPLE])
    resolution: Literal["auto", "720p"] = Field(default="auto", description="The resolution of the generated video")
    aspect_ratio: Literal["auto", "9:16", "16:9"] = Field(
        default="auto", description="The aspect ratio of the generated video")
    duration: Duration = Field(default=4, description=DURATION_DESCRIPTION)
    image_url: Annotated[str, MediaInput("image")] = Field(
        description="The URL of the image to use as the first frame", examples=[I2V_IMAGE])


class Sora2ProTextToVideoInput(ModelInput):
    api_key: SecretStr | None = Field(default=None, description=API_KEY_DESCRIPTION)
    prompt: str = Field(description="The text prompt describing the video you want to generate",
                        examples=[T2V_EXAMPLE])
    resolution: Literal["720p", "1080p"] = Field(default="1080p", description="The resolution of the generated video")
    aspect_ratio: Literal["9:16", "16:9"] = Field(default="16:9", description="The aspect ratio of the generated video")
    duration: Duration = Field(default=4, description=DURATION_DESCRIPTION)


class Sora2ProImageToVideoInput(ModelInput):
    api_key: SecretStr | None = Field(default=None, description=API_KEY_DESCRIPTION)
    prompt: str = Field(description="The text prompt describing the video you want to generate",
                        examples=[I2V_EXAMPLE])
    resolution: Literal["auto", "720p", "1080p"] = Field(
        default="auto", description="The resolution of the generated video")
    aspect_ratio: Literal["auto", "9:16", "16:9"] = Field(
        default="auto", description="The aspect ratio of the generated video")
    duration: Duration = Field(default=4, description=DURATION_DESCRIPTION)
    image_url: Annotated[str, MediaInput("image")] = Field(
        description="The URL of the image to use as the first frame", examples=[I2V_IMAGE])


SoraInputs = Sora2TextToVideoInput | Sora2ImageToVideoInput | Sora2ProTextToVideoInput | Sora2ProImageToVideoInput

STANDARD_RATES = {"per_second": Rate(usd("0.10"), "per second")}
PRO_RATES = {"per_second_720p": Rate(usd("0.30"), "per second at 720p"),
             "per_second_1080p": Rate(usd("0.50"), "per second at 1080p")}

SORA_2_TEXT_TO_VIDEO = ModelSpec(
    tool="sora_2_text_to_video",
    title="Sora 2 — text to video (fal)",
    provider=Provider.FAL,
    endpoint_id="fal-ai/sora-2/text-to-video",
    category=Category.TEXT_TO_VIDEO,
    Input=Sora2TextToVideoInput,
    output=OUTPUT,
    rates=STANDARD_RATES,
    pricer=_price_standard,
    price_unit="$0.10 per second (720p)",
    price_source="fal model page (seed)",
    summary=("OpenAI Sora 2: a 4, 8 or 12 s 720p clip with synchronized dialogue and sound from text. Strong "
             "at realistic physics, acting and lip-sync at a moderate price; use Sora 2 Pro for 1080p."),
    prompt_guide=GUIDE,
    notes=(BYO_KEY_NOTE,),
)

SORA_2_IMAGE_TO_VIDEO = ModelSpec(
    tool="sora_2_image_to_video",
    title="Sora 2 — image to video (fal)",
    provider=Provider.FAL,
    endpoint_id="fal-ai/sora-2/image-to-video",
    category=Category.IMAGE_TO_VIDEO,
    Input=Sora2ImageToVideoInput,
    output=OUTPUT,
    rates=STANDARD_RATES,
    pricer=_price_standard,
    price_unit="$0.10 per second",
    price_source="fal model page (seed)",
    summary=("OpenAI Sora 2 starting from your image as the first frame: a 4, 8 or 12 s clip with speech "
             "and sound. Use it to continue a still into a talking or action scene."),
    prompt_guide="Describe what happens after the first frame, not the frame itself. " + GUIDE,
    notes=(BYO_KEY_NOTE,),
)

SORA_2_PRO_TEXT_TO_VIDEO = ModelSpec(
    tool="sora_2_pro_text_to_video",
    title="Sora 2 Pro — text to video (fal)",
    provider=Provider.FAL,
    endpoint_id="fal-ai/sora-2/text-to-video/pro",
    category=Category.TEXT_TO_VIDEO,
    Input=Sora2ProTextToVideoInput,
    output=OUTPUT,
    rates=PRO_RATES,
    pricer=_price_pro,
    price_unit="$0.30 per second at 720p, $0.50 per second at 1080p",
    price_source="fal model page (seed)",
    summary=("OpenAI Sora 2 Pro: the highest-fidelity Sora, up to 1080p, 4–12 s with synchronized sound. "
             "Use it for final renders once a prompt has been proven on Sora 2; it costs 3–5× more."),
    prompt_guide=GUIDE,
    notes=(BYO_KEY_NOTE,),
)

SORA_2_PRO_IMAGE_TO_VIDEO = ModelSpec(
    tool="sora_2_pro_image_to_video",
    title="Sora 2 Pro — image to video (fal)",
    provider=Provider.FAL,
    endpoint_id="fal-ai/sora-2/image-to-video/pro",
    category=Category.IMAGE_TO_VIDEO,
    Input=Sora2ProImageToVideoInput,
    output=OUTPUT,
    rates=PRO_RATES,
    pricer=_price_pro,
    price_unit="$0.30 per second at 720p, $0.50 per second at 1080p (auto is reserved at the 1080p rate)",
    price_source="fal model page (seed)",
    summary=("OpenAI Sora 2 Pro from your image as the first frame, up to 1080p with sound. Use it for "
             "final, high-resolution animations of a still."),
    prompt_guide="Describe what happens after the first frame, not the frame itself. " + GUIDE,
    notes=(BYO_KEY_NOTE,),
)

SPECS = (SORA_2_TEXT_TO_VIDEO, SORA_2_IMAGE_TO_VIDEO, SORA_2_PRO_TEXT_TO_VIDEO, SORA_2_PRO_IMAGE_TO_VIDEO)
