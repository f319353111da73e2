"""Parley engine package."""
