"""Recipes: the pydantic model and a YAML loader that keeps node positions."""

from builder.recipe.loader import LoadedRecipe, load_or_raise, load_recipe
from builder.recipe.model import Recipe

__all__ = ["LoadedRecipe", "Recipe", "load_or_raise", "load_recipe"]
