"""Helpers shipped for applications' own tests."""
