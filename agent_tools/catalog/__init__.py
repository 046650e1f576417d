"""The catalog: every model endpoint videogen can run, as one ``ModelSpec`` each.

Look a tool up with ``get(name)``; ``CATALOG`` keeps the order models are listed in everywhere.
"""

from __future__ import annotations

import difflib

from ..errors import UnknownTool
from . import hailuo, hunyuan, pika, sora, veo
from .equivalents import Equivalent, NotEquivalent, index, translate
from .labels import SAFETY_FIELDS, SHORT
from .pricing import PRICES_AS_OF
from .spec import Category, ModelInput, ModelSpec, OutputKind, Provider, Quote, Rate

CATALOG: dict[str, ModelSpec] = {
    spec.tool: spec
    for spec in (*hunyuan.SPECS[:3], *pika.SPECS, *veo.SPECS, *sora.SPECS, *hailuo.SPECS, hunyuan.HUNYUAN_IMAGE_V3)
}

EQUIVALENTS: dict[str, tuple[Equivalent, ...]] = index(hunyuan.EQUIVALENTS, CATALOG)
"""Tool → the same model on other providers (for failover), declared beside the specs."""


def get(name: str) -> ModelSpec:
    """The spec for a tool name (or an endpoint id), else ``UnknownTool`` with the closest names."""
    if name in CATALOG:
        return CATALOG[name]
    for spec in CATALOG.values():
        if spec.endpoint_id == name:
            return spec
    names = list(CATALOG)
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    if not close:
        close = [n for n in names if name and (name.lower() in n or n in name.lower())][:3]
    raise UnknownTool(name, close, names)


__all__ = ["CATALOG", "EQUIVALENTS", "Equivalent", "NotEquivalent", "translate", "PRICES_AS_OF", "Category", "ModelInput", "ModelSpec", "OutputKind", "Provider",
           "Quote", "Rate", "SAFETY_FIELDS", "SHORT", "get"]
