"""The feature pipeline's library: offline store, Feast access, point-in-time lookups, materialization."""
