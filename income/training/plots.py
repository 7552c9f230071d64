"""Figures logged with every run: ROC curve, feature importance, target rate per category, leaderboard."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import roc_auc_score, roc_curve  # noqa: E402

from income.data.schema import LABEL, MISSING_CATEGORY  # noqa: E402
from income.training.model import CATEGORICAL, FAMILIES  # noqa: E402


def roc_figure(labels: np.ndarray, scores: np.ndarray, title: str):
    fpr, tpr, _ = roc_curve(labels, scores)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, label=f"ROC AUC {roc_auc_score(labels, scores):.4f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def importance_figure(importance: pd.Series, title: str):
    top = importance.head(20)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(top) + 1.2))
    ax.barh(top.index, top.to_numpy())
    ax.set(xlabel="importance (encoded columns summed per feature)", title=title)
    fig.tight_layout()
    return fig


def target_rate_figure(train: pd.DataFrame):
    """Share of >50K per category of each categorical feature (the exploration step)."""
    columns = 2
    rows = -(-len(CATEGORICAL) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(12, 3.2 * rows))
    overall = train[LABEL].mean()
    for ax, feature in zip(axes.ravel(), CATEGORICAL, strict=False):
        rate = train.groupby(train[feature].fillna(MISSING_CATEGORY))[LABEL].agg(["mean", "size"])
        rate = rate[rate["size"] >= 20].sort_values("mean").tail(15)
        ax.barh(rate.index.astype(str), rate["mean"])
        ax.axvline(overall, color="grey", linestyle="--", linewidth=1)
        ax.set_title(f"{feature}: share of income >50K")
        ax.tick_params(axis="y", labelsize=7)
    for ax in axes.ravel()[len(CATEGORICAL) :]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def leaderboard_figure(trials: pd.DataFrame, marked_run_id: str, mark: str):
    """Validation vs test ROC AUC, one point per trial (columns model_family, val_roc_auc,
    test_roc_auc, run_id), one colour per family; `mark` names the trial `marked_run_id`."""
    fig, ax = plt.subplots(figsize=(5.4, 4.4))
    colours = dict(zip(FAMILIES, plt.get_cmap("tab10").colors, strict=False))  # a family keeps its colour
    for family, group in trials.groupby("model_family"):
        ax.scatter(
            group["val_roc_auc"],
            group["test_roc_auc"],
            s=40,
            alpha=0.85,
            label=family,
            color=colours.get(family),
        )
    scores = trials[["val_roc_auc", "test_roc_auc"]].to_numpy()
    if scores.size:
        low, high = scores.min(), scores.max()
        ax.plot(
            [low, high], [low, high], linestyle="--", color="grey", linewidth=1, label="test = validation"
        )
    marked = trials[trials["run_id"] == marked_run_id]
    if len(marked):
        x, y = marked["val_roc_auc"].iloc[0], marked["test_roc_auc"].iloc[0]
        ax.scatter(
            [x], [y], marker="*", s=320, facecolors="none", edgecolors="black", linewidths=1.2, label=mark
        )
        ax.annotate(mark, (x, y), xytext=(-8, 10), textcoords="offset points", ha="right", fontsize=8)
    ax.set(xlabel="validation ROC AUC (chooses the best trial)", ylabel="test ROC AUC (the promotion gate)")
    ax.set_title("Trials: validation vs test ROC AUC", fontsize=10)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def log_figure(fig, artifact_file: str) -> None:
    """Log a figure to the active MLflow run and free it."""
    import mlflow

    mlflow.log_figure(fig, artifact_file)
    plt.close(fig)
