"""Parley safety package."""
