"""Parley ui package."""
