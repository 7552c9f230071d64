"""The bodies the API takes and answers (pydantic), with the examples its OpenAPI schema shows."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_USERS = 1000
INT64_MAX = 2**63 - 1  # Feast's user_id is an int64

UserId = Annotated[int, Field(strict=True, gt=0, le=INT64_MAX, description="A user's id (int64 > 0).")]


class PredictRequest(BaseModel):
    """One user (`user_id`) or up to 1000 (`user_ids`); exactly one of the two."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"user_id": 42}, {"user_ids": [1, 2, 3]}]},
    )
    user_id: UserId | None = None
    user_ids: Annotated[list[UserId], Field(min_length=1, max_length=MAX_USERS)] | None = None

    @model_validator(mode="after")
    def exactly_one(self) -> PredictRequest:
        if (self.user_id is None) == (self.user_ids is None):
            raise ValueError("give exactly one of `user_id` and `user_ids`")
        return self

    @property
    def ids(self) -> list[int]:
        return [self.user_id] if self.user_id is not None else list(self.user_ids or [])


class Prediction(BaseModel):
    user_id: int
    probability: float = Field(description="P(income > 50K) from the model version named here.")
    label: Literal[">50K", "<=50K"] = Field(
        description='">50K" when probability >= the model version\'s decision threshold (chosen on '
        "validation rows at training; 0.5 for versions without one)."
    )
    threshold: float = Field(description="The decision threshold of the model version named here.")
    model_name: str
    model_version: str
    feature_service: str = Field(description="The feature service the model version reads (its contract's).")
    variant: Literal["champion", "challenger"] = Field(
        description="Which seat answered: the champion, or the challenger in an A/B split (serving.traffic)."
    )
    feature_timestamps: dict[str, datetime | None] = Field(
        description="Per feature view, the event time of the values used (every view has one: a user "
        "missing a view is refused with 404)."
    )


class PredictResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "predictions": [
                        {
                            "user_id": 42,
                            "probability": 0.7312,
                            "label": ">50K",
                            "model_name": "income-classifier",
                            "threshold": 0.42,
                            "model_version": "3",
                            "feature_service": "income_v1",
                            "variant": "champion",
                            "feature_timestamps": {
                                "demographic": "2025-03-01T10:00:00Z",
                                "relationship": "2025-03-01T10:00:00Z",
                                "occupation": "2025-03-01T10:00:00Z",
                                "history": "2025-03-01T10:00:00Z",
                            },
                        }
                    ],
                    "request_id": "3f2c9a0e5b7d4c1e8a6f0b2d4e6a8c0f",
                }
            ]
        }
    )
    predictions: list[Prediction]
    request_id: str = Field(description="The request's id in the prediction log; also its X-Request-ID.")


class ErrorResponse(BaseModel):
    detail: str
    user_ids: list[int] | None = Field(
        None, description="For 404: the users not scoreable (some view has no online row within its TTL)."
    )


class ModelStatus(BaseModel):
    name: str
    alias: str
    version: str | None = None
    loaded_at: datetime | None = None
    fast_path: bool | None = Field(None, description="Compiled preprocessing (same output) in use.")
    runtime: str | None = Field(
        None,
        description=(
            'What scores: "onnx+booster" (calls of up to 16 users through the trees in ONNX Runtime, '
            'within 1e-6 of the booster), "booster" or "estimator".'
        ),
    )
    error: str | None = Field(None, description="Why the alias's version is not served, if it is not.")
    failed_version: str | None = Field(None, description="The alias's version that could not be used.")
    failed_attempts: int = Field(0, description="How many times in a row it failed.")
    next_retry_at: datetime | None = Field(None, description="When it is tried again.")


class ValkeyStatus(BaseModel):
    ok: bool
    address: str
    latency_ms: float | None = None
    error: str | None = None


class TrafficStatus(BaseModel):
    mode: Literal["off", "shadow", "ab"]
    ab_share: float
    active: bool = Field(description="A challenger other than the champion is loaded: the mode applies.")
    prediction_log: bool


class FeaturesStatus(BaseModel):
    reader: Literal["direct", "feast"] = Field(
        description="direct: one HMGET per user; feast: Feast's SDK (see serving.online_features)"
    )
    note: str | None = Field(None, description="Why Feast's SDK reads, when the direct reader was wanted.")


class HealthResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ok",
                    "model": {
                        "name": "income-classifier",
                        "alias": "champion",
                        "version": "3",
                        "loaded_at": "2025-03-01T10:00:00Z",
                        "fast_path": True,
                        "runtime": "onnx+booster",
                        "error": None,
                        "failed_version": None,
                        "failed_attempts": 0,
                        "next_retry_at": None,
                    },
                    "valkey": {"ok": True, "address": "127.0.0.1:6390", "latency_ms": 0.2, "error": None},
                }
            ]
        }
    )
    status: Literal["ok", "unavailable"]
    model: ModelStatus
    challenger: ModelStatus | None = Field(None, description="Followed when the traffic mode is not off.")
    traffic: TrafficStatus | None = None
    features: FeaturesStatus | None = None
    valkey: ValkeyStatus
    process_id: int | None = Field(
        None, description="The worker process that answered (INCOME_SERVE_WORKERS)."
    )
