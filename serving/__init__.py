"""The online service: FastAPI /predict on Feast online features (Valkey) and the MLflow champion.

`python -m serving` (or `make serve`) runs it; serving.app is the API, serving.settings its
settings.
"""
