"""Tencent Hunyuan: Video I2V (fal and WaveSpeed), Hunyuan Custom and Hunyuan Image 3 (fal)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ..money import ceil_div, format_usd, usd
from .equivalents import Equivalent, NotEquivalent
from .pricing import flat, per_clip_seconds
from .spec import (Category, MediaInput, ModelInput, ModelSpec, OutputKind, OutputSpec, Provider, Quote,
                   Rate)

I2V_GUIDE = (
    "Write the prompt like a director's brief for the still image you supply. "
    "Subject: who or what is on screen. Action: what changes over time (gestures, expression, "
    "environment). Camera: push-in, pull-back, pan, tilt, handheld or locked-off. Mood and "
    "lighting: candlelight, moonlight, neon, fog, rim light. Motion constraints: 'subtle movement', "
    "'no shaky camera', 'smooth dolly'. Describe motion, not the picture: the image already fixes "
    "subject, composition and style. Example: 'A pale vampire woman stands at a candlelit window, "
    "crimson eyes glowing. She slowly raises her hand and taps long nails against the glass. Bats "
    "flutter past outside. Slow cinematic push-in, soft candle flicker, subtle fog, smooth motion.'"
)

VIDEO_FILE = {"video": "the generated video file (url, content_type, file_name, file_size)",
              "seed": "the seed used for generating the video"}


def _frames_as_text(value: Any) -> Any:
    """fal's page types num_frames as a string but its own Full Example sends the integer 129."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _num_frames_schema(schema: dict[str, Any]) -> None:
    schema.pop("type", None)
    schema.pop("const", None)
    schema["enum"] = ["129", 129]


class HunyuanVideoI2VInput(ModelInput):
    prompt: str = Field(description="The prompt to generate the video from.",
                        examples=["Two muscular cats boxing in a boxing ring."])
    image_url: Annotated[str, MediaInput("image")] = Field(
        description="URL of the image input.",
        examples=["https://storage.googleapis.com/falserverless/example_inputs/hunyuan_i2v.jpg"])
    seed: int | None = Field(default=None, description="The seed to use for generating the video.")
    aspect_ratio: Literal["16:9", "9:16"] = Field(
        default="16:9", description="The aspect ratio of the video to generate.")
    # The page types resolution as a free string whose only named value is the default; the flat
    # $0.40 price is for 720p, so anything else would be an unpriced guess. Only "720p" is accepted.
    resolution: Literal["720p"] = Field(default="720p", description="The resolution of the video to generate.")
    num_frames: Annotated[Literal["129"], BeforeValidator(_frames_as_text)] = Field(
        default="129", description="The number of frames to generate.",
        json_schema_extra=_num_frames_schema)
    i2v_stability: bool = Field(
        default=False, description="Turning on I2V Stability reduces hallucination but also reduces motion.")


HUNYUAN_VIDEO_I2V = ModelSpec(
    tool="hunyuan_video_image_to_video",
    title="Hunyuan Video — image to video (fal)",
    provider=Provider.FAL,
    endpoint_id="fal-ai/hunyuan-video-image-to-video",
    category=Category.IMAGE_TO_VIDEO,
    Input=HunyuanVideoI2VInput,
    output=OutputSpec(OutputKind.VIDEO, VIDEO_FILE),
    rates={"per_video": Rate(usd("0.40"), "per video")},
    pricer=flat("per_video", "per video (720p, 129 frames)"),
    price_unit="$0.40 per video",
    price_source="fal model page (seed)",
    summary=("Animate one still image into a ~5 s 720p clip (129 frames) with Tencent's open Hunyuan "
             "Video I2V model. Use it for an affordable, flat-priced animation of key art, portraits or "
             "scenes; turn on i2v_stability when the subject must stay close to the image."),
    prompt_guide=I2V_GUIDE,
)


class HunyuanCustomInput(ModelInput):
    prompt: str = Field(max_length=500, description="Text prompt for video generation (max 500 characters).",
                        examples=["Realistic, High-quality. A woman is playing a violin."])
    negative_prompt: str = Field(
        default=("Aerial view, aerial view, overexposed, low quality, deformation, a poor composition, bad "
                 "hands, bad teeth, bad eyes, bad limbs, distortion, blurring, text, subtitles, static, "
                 "picture, black border."),
        description="Negative prompt for video generation.", examples=["Ugly, blurry."])
    image_url: Annotated[str, MediaInput("image")] = Field(
        description="URL of the image input.",
        examples=["https://storage.googleapis.com/falserverless/model_tests/hidream/woman.png"])
    num_inference_steps: int = Field(
        default=30, ge=10, le=30,
        description="The number of inference steps to run. Lower gets faster results, higher gets better results.")
    seed: int | None = Field(default=None, description="The seed to use for generating the video.")
    aspect_ratio: Literal["16:9", "9:16"] = Field(
        default="16:9", description="The aspect ratio of the video to generate.")
    resolution: Literal["512p", "720p"] = Field(
        default="512p",
        description="The resolution of the video to generate. 720p generations cost 1.5x more than 480p generations.")
    fps: int = Field(default=25, ge=16, le=30, description="The frames per second of the generated video.")
    cfg_scale: float = Field(default=7.5, ge=1.5, le=13,
                             description="Classifier-Free Guidance scale for the generation.")
    num_frames: int = Field(default=129, ge=81, le=129, description="The number of frames to generate.")
    enable_prompt_expansion: bool = Field(default=True, description="Whether to enable prompt expansion.")
    enable_safety_checker: bool = Field(
        default=True, description="If set to true, the safety checker will be enabled.")


def _price_custom(params: HunyuanCustomInput, rates: Mapping[str, int]) -> Quote:
    # The page's pricing line ($0.80 at 512p, $2.40 at 720p) is what fal bills; the field text's
    # "1.5x more than 480p" contradicts it and is not used.
    rate = f"per_video_{params.resolution}"
    return Quote(rates[rate], f"{format_usd(rates[rate])} per video at {params.resolution}")


HUNYUAN_CUSTOM = ModelSpec(
    tool="hunyuan_custom",
    title="Hunyuan Custom — identity-consistent video from a reference image (fal)",
    provider=Provider.FAL,
    endpoint_id="fal-ai/hunyuan-custom",
    category=Category.IMAGE_TO_VIDEO,
    Input=HunyuanCustomInput,
    output=OutputSpec(OutputKind.VIDEO, VIDEO_FILE),
    rates={"per_video_512p": Rate(usd("0.80"), "per video at 512p"),
           "per_video_720p": Rate(usd("2.40"), "per video at 720p")},
    pricer=_price_custom,
    price_unit="$0.80 per video at 512p, $2.40 at 720p",
    price_source="fal model page (seed)",
    summary=("Make a new video starring the subject of a reference image (a person, a character, a "
             "product) while keeping their identity consistent. Prefer it over plain image-to-video when "
             "the scene should change but the subject must stay recognisably the same."),
    prompt_guide=("Up to 500 characters. Start with quality tags the model was tuned on ('Realistic, "
                  "High-quality.'), then say what the subject does and where: 'A woman is playing a violin "
                  "on a rooftop at sunset.' Keep one main action; use negative_prompt for artefacts to avoid. "
                  "512p is a third of the price of 720p: draft at 512p."),
)


class WaveSpeedHunyuanI2VInput(ModelInput):
    # The two WaveSpeed pages disagree; where they do, this model takes the reading that both
    # pages' servers must accept, so a request valid here is valid under either page:
    # - num_inference_steps: one page says 1~30, the other 2~30 → 2~30.
    # - seed: -1~2147483647 on one, -1~9999999999 on the other → -1~2147483647 (a 32-bit seed).
    # - enable_safety_checker appears only on the detailed API page (with a submit example
    #   that sends it) → kept, default true, as that page documents.
    # - prompt: optional on both; the detailed page shows its example prompt as a "default", which
    #   would silently animate a vampire scene → no default: an omitted prompt is not sent.
    prompt: str | None = Field(default=None, description="The prompt to generate the video from.")
    image: Annotated[str, MediaInput("image")] = Field(
        description="The image to generate the video from.",
        examples=["https://d2g64w682n9w0w.cloudfront.net/media/images/1744974349400389272_BzwspkJG.jpg"])
    num_inference_steps: int = Field(
        default=30, ge=2, le=30,
        description="The number of inference steps to run. Lower gets faster results, higher gets better results.")
    duration: int = Field(default=5, ge=5, le=10, description="Generate video duration length seconds.")
    seed: int = Field(default=-1, ge=-1, le=2147483647,
                      description="The seed to use for generating the video. -1 means a random seed will be used.")
    size: Literal["1280*720", "720*1280"] = Field(default="1280*720", description="The size of the output.")
    enable_safety_checker: bool = Field(
        default=True, description="If set to true, the safety checker will be enabled.")


def _price_wavespeed(params: WaveSpeedHunyuanI2VInput, rates: Mapping[str, int]) -> Quote:
    return per_clip_seconds(rates, "per_5_seconds", params.duration, 5)


WAVESPEED_HUNYUAN_I2V = ModelSpec(
    tool="wavespeed_hunyuan_video_i2v",
    title="Hunyuan Video — image to video (WaveSpeed)",
    provider=Provider.WAVESPEED,
    endpoint_id="wavespeed-ai/hunyuan-video/i2v",
    category=Category.IMAGE_TO_VIDEO,
    Input=WaveSpeedHunyuanI2VInput,
    output=OutputSpec(OutputKind.VIDEO, {"outputs": "URLs of the generated video",
                                         "has_nsfw_contents": "one NSFW flag per output"}),
    rates={"per_5_seconds": Rate(usd("0.40"), "per 5 s of video")},
    pricer=_price_wavespeed,
    price_unit="$0.40 per 5 s of video (5–10 s)",
    price_source="WaveSpeed model page (seed, $0.40 per run); longer clips prorated per docs/providers.md",
    summary=("Hunyuan Video I2V served by WaveSpeed: animate one reference image into a 5–10 s clip at "
             "1280×720 or 720×1280, with control over duration and inference steps. Use it when you "
             "want a longer clip than fal's Hunyuan I2V, a portrait (720*1280) output, or fal is busy."),
    prompt_guide=I2V_GUIDE + " Lower num_inference_steps trades quality for speed; keep 30 for finals.",
)


# -- the same model on fal and WaveSpeed ----------------------------------------------------------
# Both pages describe Tencent's HunyuanVideo-I2V at 720p for $0.40 a (5 s) clip. fal fixes the clip
# at 129 frames (~5 s at HunyuanVideo's 24 fps) and names the shape by aspect ratio; WaveSpeed names
# it by pixel size and lets the length run 5–10 s. A choice the other side cannot make (a 10 s clip,
# fal's i2v_stability, a WaveSpeed step count or safety switch off) is NotEquivalent: never moved.

_SIZE_OF_ASPECT = {"16:9": "1280*720", "9:16": "720*1280"}
_ASPECT_OF_SIZE = {size: aspect for aspect, size in _SIZE_OF_ASPECT.items()}
_FAL_CLIP_SECONDS = 5
_WS_DEFAULT_STEPS = 30


def _fal_to_wavespeed(params: HunyuanVideoI2VInput) -> dict[str, Any]:
    if params.i2v_stability:
        raise NotEquivalent("i2v_stability is on, and WaveSpeed's Hunyuan I2V has no such switch")
    arguments: dict[str, Any] = {"prompt": params.prompt, "image": params.image_url,
                                 "size": _SIZE_OF_ASPECT[params.aspect_ratio], "duration": _FAL_CLIP_SECONDS}
    if params.seed is not None:
        arguments["seed"] = params.seed
    return arguments


def _wavespeed_to_fal(params: WaveSpeedHunyuanI2VInput) -> dict[str, Any]:
    if params.duration != _FAL_CLIP_SECONDS:
        raise NotEquivalent(f"a {params.duration} s clip was asked for, and fal's Hunyuan I2V makes "
                            f"{_FAL_CLIP_SECONDS} s (129-frame) clips only")
    if not params.prompt:
        raise NotEquivalent("fal's Hunyuan I2V needs a prompt, and none was given")
    if params.num_inference_steps != _WS_DEFAULT_STEPS:
        raise NotEquivalent(f"num_inference_steps is {params.num_inference_steps}, and fal's Hunyuan I2V "
                            "has no step setting")
    if not params.enable_safety_checker:
        raise NotEquivalent("the safety checker is off, and fal's Hunyuan I2V has no such switch")
    arguments: dict[str, Any] = {"prompt": params.prompt, "image_url": params.image,
                                 "aspect_ratio": _ASPECT_OF_SIZE[params.size], "resolution": "720p",
                                 "num_frames": "129"}
    if params.seed != -1:
        arguments["seed"] = params.seed
    return arguments


EQUIVALENTS = (
    Equivalent(HUNYUAN_VIDEO_I2V.tool, WAVESPEED_HUNYUAN_I2V.tool, _fal_to_wavespeed,
               "aspect_ratio 16:9 ↔ size 1280*720, 9:16 ↔ 720*1280; 129 frames ↔ duration 5; seed kept"),
    Equivalent(WAVESPEED_HUNYUAN_I2V.tool, HUNYUAN_VIDEO_I2V.tool, _wavespeed_to_fal,
               "only 5 s clips at the default 30 steps with the safety checker on have a fal counterpart"),
)


ImageSizePreset = Literal["square_hd", "square", "portrait_4_3", "portrait_16_9", "landscape_4_3", "landscape_16_9"]
"""fal's named image sizes; their pixel sizes below are fal's documented ones."""

PRESET_PIXELS: dict[str, tuple[int, int]] = {
    "square_hd": (1024, 1024), "square": (512, 512), "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024), "landscape_4_3": (1024, 768), "landscape_16_9": (1024, 576),
}


class ImageSize(BaseModel):
    """An explicit image size in pixels."""

    # The object branch of the seed's ``ImageSize | Enum`` union; the preset names are the other.
    model_config = ConfigDict(extra="forbid", defer_build=True)

    width: int = Field(default=512, gt=0, le=14142, description="The width of the generated image.")
    height: int = Field(default=512, gt=0, le=14142, description="The height of the generated image.")


class HunyuanImageV3Input(ModelInput):
    prompt: str = Field(
        description="The text prompt for image-to-image.",
        examples=["200mm telephoto through crowd gaps; subject laughing, candid; creamy background "
                  "compression, color pop from a single bold garment, catchlight in eyes."])
    negative_prompt: str = Field(
        default="", description="The negative prompt to guide the image generation away from certain concepts.",
        examples=["blurry, low quality, watermark, signature"])
    image_size: ImageSizePreset | ImageSize = Field(
        default="square_hd",
        description=("The desired size of the generated image: a preset name, or an object "
                     "{\"width\": W, \"height\": H} in pixels."))
    num_images: int = Field(default=1, ge=1, le=4, description="The number of images to generate.")
    num_inference_steps: int = Field(default=28, ge=1, le=50, description="Number of denoising steps.")
    guidance_scale: float = Field(
        default=7.5, ge=1, le=20,
        description="Controls how much the model adheres to the prompt. Higher values mean stricter adherence.")
    seed: int | None = Field(
        default=None, description="Random seed for reproducible results. If None, a random seed is used.")
    enable_safety_checker: bool = Field(
        default=True, description="If set to true, the safety checker will be enabled.")
    sync_mode: bool = Field(
        default=False,
        description=("If `True`, the media will be returned as a data URI and the output data won't be "
                     "available in the request history."))
    output_format: Literal["jpeg", "png"] = Field(default="png", description="The format of the generated image.")
    enable_prompt_expansion: bool = Field(
        default=False,
        description=("Whether to enable prompt expansion. This will use a large language model to expand the "
                     "prompt with additional details while maintaining the original meaning."))

    def pixels(self) -> tuple[int, int]:
        if isinstance(self.image_size, ImageSize):
            return self.image_size.width, self.image_size.height
        return PRESET_PIXELS[self.image_size]


def _price_image(params: HunyuanImageV3Input, rates: Mapping[str, int]) -> Quote:
    # fal bills per megapixel; with 10^6 pixels to the megapixel (docs/providers.md §3), rounded up
    # to the micro-dollar so a quote is never below the bill.
    width, height = params.pixels()
    pixels = width * height * params.num_images
    micros = ceil_div(pixels * rates["per_megapixel"], 1_000_000)
    images = f" × {params.num_images} images" if params.num_images > 1 else ""
    return Quote(micros, f"{width}×{height} px = {width * height / 1e6:.2f} MP{images} × "
                         f"{format_usd(rates['per_megapixel'])}/MP = {format_usd(micros)}")


HUNYUAN_IMAGE_V3 = ModelSpec(
    tool="hunyuan_image_v3",
    title="Hunyuan Image 3 — text to image (fal)",
    provider=Provider.FAL,
    endpoint_id="fal-ai/hunyuan-image/v3/text-to-image",
    category=Category.TEXT_TO_IMAGE,
    Input=HunyuanImageV3Input,
    output=OutputSpec(OutputKind.IMAGES, {"images": "the generated images (url, width, height, content_type)",
                                          "seed": "the base seed used for the generation"}),
    rates={"per_megapixel": Rate(usd("0.10"), "per megapixel")},
    pricer=_price_image,
    price_unit="$0.10 per megapixel per image",
    price_source="fal model page (seed)",
    summary=("Generate 1–4 still images from text with Tencent's Hunyuan Image 3. Use it for key art, "
             "posters, product shots or a first frame to animate with an image-to-video model; it renders "
             "text in images and follows long, detailed prompts well."),
    prompt_guide=("Describe the picture as a photographer or illustrator would: subject, setting, lens and "
                  "framing ('200mm telephoto', 'wide establishing shot'), light, palette and style. Put "
                  "unwanted traits in negative_prompt. Pick image_size for the video you will make next "
                  "(landscape_16_9 for 16:9 clips, portrait_16_9 for 9:16); cost grows with pixels × images."),
)

SPECS = (HUNYUAN_VIDEO_I2V, HUNYUAN_CUSTOM, WAVESPEED_HUNYUAN_I2V, HUNYUAN_IMAGE_V3)
