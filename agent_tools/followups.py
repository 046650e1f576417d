"""Follow-up generations made from a finished job: re-roll it, or animate one of its images.

Every surface offers the same two buttons (Discord's, the dashboard's), so the arguments they send
are built here once, from the catalog's own schemas.
"""

from __future__ import annotations

import random
from typing import Any

from .catalog import get
from .jobs import Job

ANIMATE_TOOL = "hailuo_02_image_to_video"
"""Animate's model: the cheapest image-to-video here ($0.27 for 6 s at 768P), good motion, and its
image is a first frame, so the clip starts on the picture that was clicked."""

MASKED = "**********"


def reroll_arguments(job: Job) -> dict[str, Any]:
    """The job's parameters with a new random seed (when the model takes one)."""
    spec = get(job.tool)
    arguments = {k: v for k, v in job.params.items() if v != MASKED}
    seed = spec.schema().get("properties", {}).get("seed")
    if seed is not None:
        low = max(seed.get("minimum", 0), 0)
        high = min(seed.get("maximum", 2**31 - 1), 2**31 - 1)
        arguments["seed"] = random.randint(low, high)
    return arguments


def animate_arguments(job: Job, image_url: str, tool: str = ANIMATE_TOOL) -> dict[str, Any]:
    """Arguments for an image-to-video model (the default one unless a user chose another): the
    image, and the image's prompt."""
    spec = get(tool)
    field = next(iter(spec.media_fields()))
    arguments: dict[str, Any] = {field: image_url}
    if "prompt" in spec.schema().get("properties", {}):
        arguments["prompt"] = job.params.get("prompt") or "gentle natural motion"
    return arguments
