"""Benchmarks and load runs (scripts; ``stress.odm`` is also importable, for its test)."""
