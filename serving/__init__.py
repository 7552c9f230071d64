"""The online service: FastAPI /predict on Feast online features (Valkey) and the MLflow champion.

`python -m serving` (or `make serve`) runs it; see serving.app for the API and its settings.
"""
