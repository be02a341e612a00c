"""Bake the model-specific image: layer plan, Dockerfile templates, pinned base, docker build."""

from builder.image.bake import bake_image
from builder.image.model import BakeOptions, BakeResult, LayerInfo

__all__ = ["BakeOptions", "BakeResult", "LayerInfo", "bake_image"]
