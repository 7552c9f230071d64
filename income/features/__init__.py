"""The feature pipeline's library: the versioned offline store, Feast access, materialization into Valkey."""
