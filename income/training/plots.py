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


def search_figure(trials: pd.DataFrame, marked_run_id: str, mark: str):
    """Validation ROC AUC per trial in the order they were asked (columns trial_id, model_family,
    val_roc_auc, run_id), one colour per family, the best so far as a line; `mark` names the
    trial `marked_run_id`. The test rows are not shown: they are kept for the final score."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    colours = dict(zip(FAMILIES, plt.get_cmap("tab10").colors, strict=False))  # a family keeps its colour
    ordered = trials.sort_values("trial_id")
    for family, group in ordered.groupby("model_family"):
        ax.scatter(
            group["trial_id"], group["val_roc_auc"], s=40, alpha=0.85, label=family, color=colours.get(family)
        )
    if len(ordered):
        ax.step(
            ordered["trial_id"],
            ordered["val_roc_auc"].cummax(),
            where="post",
            color="grey",
            label="best so far",
        )
    marked = ordered[ordered["run_id"] == marked_run_id]
    if len(marked):
        x, y = marked["trial_id"].iloc[0], marked["val_roc_auc"].iloc[0]
        ax.scatter(
            [x], [y], marker="*", s=320, facecolors="none", edgecolors="black", linewidths=1.2, label=mark
        )
        ax.annotate(mark, (x, y), xytext=(-10, -14), textcoords="offset points", ha="right", fontsize=8)
    ax.set(xlabel="trial (in the order the search asked for them)", ylabel="validation ROC AUC")
    ax.set_title("Search: validation ROC AUC per trial", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def learning_curve_figure(curves: dict[str, dict[str, list[float]]], best_rounds: int, title: str):
    """XGBoost's log loss and AUC per boosting round, on training and validation rows."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, metric in zip(axes, ("logloss", "auc"), strict=True):
        for rows, per_metric in curves.items():
            ax.plot(per_metric[metric], label=f"{rows} rows")
        ax.axvline(
            best_rounds - 1, color="grey", linestyle="--", linewidth=1, label=f"kept: {best_rounds} rounds"
        )
        ax.set(xlabel="boosting round", ylabel=metric, title=f"{metric} per round")
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def reliability_figure(labels: np.ndarray, scores: dict[str, np.ndarray], title: str):
    """Observed share of >50K against the predicted probability, in 10 quantile bins, per score set."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import brier_score_loss

    fig, ax = plt.subplots(figsize=(5.4, 5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfectly calibrated")
    for name, values in scores.items():
        observed, predicted = calibration_curve(labels, values, n_bins=10, strategy="quantile")
        brier = brier_score_loss(labels, values)
        ax.plot(predicted, observed, marker="o", label=f"{name} (Brier {brier:.4f})")
    ax.set(xlabel="predicted probability of >50K", ylabel="observed share of >50K", title=title)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def shap_figure(contributions: pd.DataFrame, values: pd.DataFrame, title: str, top: int = 15):
    """SHAP summary: one dot per row and feature at its contribution to the log-odds, features by
    mean |SHAP|; numbers coloured by their value (low blue, high red), categories grey."""
    order = contributions.abs().mean().sort_values().tail(top).index
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.36 * len(order) + 1.6), width_ratios=[2, 1])
    rng = np.random.default_rng(0)
    for position, feature in enumerate(order):
        shap_values = contributions[feature].to_numpy()
        jitter = position + rng.uniform(-0.3, 0.3, len(shap_values))
        numbers = pd.to_numeric(values[feature], errors="coerce")
        if numbers.notna().any() and values[feature].dtype != object:
            ranks = numbers.rank(pct=True).fillna(0.5).to_numpy()
            axes[0].scatter(shap_values, jitter, c=ranks, cmap="coolwarm", s=4, alpha=0.6)
        else:
            axes[0].scatter(shap_values, jitter, color="grey", s=4, alpha=0.4)
    axes[0].axvline(0, color="black", linewidth=0.6)
    axes[0].set_yticks(range(len(order)), order)
    axes[0].set(
        xlabel="SHAP value (contribution to the log-odds of >50K)", title="per row (colour: value, low→high)"
    )
    mean_abs = contributions[order].abs().mean()
    axes[1].barh(range(len(order)), mean_abs.to_numpy())
    axes[1].set_yticks(range(len(order)), [])
    axes[1].set(xlabel="mean |SHAP value|", title="global importance")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def log_figure(fig, artifact_file: str) -> None:
    """Log a figure to the active MLflow run and free it."""
    import mlflow

    mlflow.log_figure(fig, artifact_file)
    plt.close(fig)
