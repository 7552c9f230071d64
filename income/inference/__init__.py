"""Inference: the model-feature contract, batch scoring, drift, the lookup scorer of the online service."""
