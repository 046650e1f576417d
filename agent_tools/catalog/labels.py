"""Short, human option texts for chat surfaces, and which fields are the operator's safety switches.

The providers' own field descriptions (in each ``Input`` model) are kept verbatim for LLMs and the
MCP schema; a chat user scrolling a slash command wants a few plain words instead. ``SHORT`` holds
the text for a field name wherever it appears; a ``ModelSpec`` may override one for its model
(``ModelSpec.short``). Surfaces read them through ``ModelSpec.short_description``.
"""

from __future__ import annotations

SHORT: dict[str, str] = {
    "prompt": "What to show: subject, action, setting, camera, light",
    "negative_prompt": "What to keep out of it",
    "image_url": "The picture to start from",
    "image": "The picture to start from",
    "image_urls": "Reference pictures of the subject to keep",
    "first_frame_url": "The picture the clip starts on",
    "last_frame_url": "The picture the clip ends on",
    "end_image_url": "A picture for the clip to end on",
    "duration": "Length in seconds",
    "aspect_ratio": "Shape of the frame",
    "resolution": "Picture quality; higher costs more",
    "size": "Width*height in pixels",
    "seed": "Same number + same settings = same result",
    "num_frames": "Frames to make; more = longer clip",
    "fps": "Frames per second",
    "num_inference_steps": "Steps; fewer is faster, more is finer",
    "cfg_scale": "How strictly to follow the prompt",
    "guidance_scale": "How strictly to follow the prompt",
    "enable_prompt_expansion": "Let the model add detail to your prompt",
    "enhance_prompt": "Let the model improve your prompt",
    "prompt_optimizer": "Let the model improve your prompt",
    "generate_audio": "Make sound too (off costs less)",
    "i2v_stability": "Steadier picture, less motion",
    "image_size": "Image shape and size",
    "num_images": "How many images",
    "output_format": "File type",
}

SAFETY_FIELDS: frozenset[str] = frozenset({"enable_safety_checker", "auto_fix"})
"""Provider switches that decide what content gets through (a safety checker, rewriting refused
prompts): on a shared surface they are the operator's setting, never a user's option."""
