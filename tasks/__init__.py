"""Flyte tasks: thin typed wrappers that read inputs, call library code, write outputs."""
