"""Inference: the model-feature contract, batch scoring, drift."""
