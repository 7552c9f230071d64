"""The live report: how each model version does on real traffic as outcomes arrive, and the
experiment between champion and challenger (income.monitoring.ab_test)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from income.monitoring.ab_test import ABAnalysis  # noqa: E402
from income.monitoring.outcomes import OUTCOME  # noqa: E402
from income.platform import report_html as h  # noqa: E402
from income.training import fairness  # noqa: E402


def _series_label(version: str, variant: str) -> str:
    return f"v{version} ({variant})"


def metrics_figure(daily: pd.DataFrame, unit: str = "day"):
    """AUC, accuracy, positive rate and volume per period, one line per model version and variant."""
    fig, axes = plt.subplots(2, 2, figsize=(11, 6.5), sharex=True)
    panels = [("roc_auc", "ROC AUC"), ("accuracy", "accuracy"), ("positive_rate", "predicted positive rate")]
    for (version, variant), frame in daily.groupby(["model_version", "variant"], sort=True):
        label = _series_label(version, variant)
        for ax, (column, title) in zip(axes.flat, panels, strict=False):
            ax.plot(frame["period"], frame[column], marker="o", markersize=3, label=label)
            ax.set_title(title)
        volume = axes.flat[3]
        volume.plot(
            frame["period"], frame["predictions"], marker="o", markersize=3, label=f"{label} with outcome"
        )
        volume.plot(frame["period"], frame["waiting"], linestyle="--", label=f"{label} waiting")
        volume.set_title(f"predictions per {unit}")
    pad = pd.Timedelta(hours=1) if unit == "hour" else pd.Timedelta(days=1)
    for ax in axes.flat:  # matplotlib would span years around a single period
        ax.set_xlim(daily["period"].min() - pad, daily["period"].max() + pad)
    axes.flat[0].legend(fontsize=8)
    axes.flat[3].legend(fontsize=7)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def reliability_figure(joined: pd.DataFrame, bins: int = 10):
    """Observed outcome rate against predicted probability, per model version and variant."""
    fig, ax = plt.subplots(figsize=(5, 5))
    known = joined[joined[OUTCOME].notna()]
    edges = np.linspace(0, 1, bins + 1)
    for (version, variant), frame in known.groupby(["model_version", "variant"], sort=True):
        cell = np.clip(np.digitize(frame["probability"], edges) - 1, 0, bins - 1)
        grouped = frame.groupby(cell).agg(p=("probability", "mean"), y=(OUTCOME, "mean"), n=(OUTCOME, "size"))
        grouped = grouped[grouped["n"] >= 20]
        ax.plot(grouped["p"], grouped["y"], marker="o", label=_series_label(version, variant))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    ax.set(xlabel="predicted probability", ylabel="observed share > 50K", title="calibration on live traffic")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _analysis_html(analysis: ABAnalysis | None) -> str:
    if analysis is None:
        return h.paragraph("No experiment: no challenger other than the champion has live predictions.")
    colour = {"promote": "green", "keep champion": "firebrick"}.get(analysis.decision, "darkorange")
    low, high = analysis.auc_difference_ci
    rows = [
        ("mode", analysis.mode),
        ("champion / challenger", f"v{analysis.champion_version} / v{analysis.challenger_version}"),
        (
            "plan",
            f"{analysis.planned_users_per_arm:,} users per arm: an accuracy gain of "
            f"{analysis.minimal_effect:.3f} detected at alpha {analysis.alpha}",
        ),
        ("users with outcomes", f"{analysis.champion_users:,} / {analysis.challenger_users:,}"),
        ("accuracy", f"{analysis.champion_accuracy:.4f} / {analysis.challenger_accuracy:.4f}"),
        ("ROC AUC", f"{analysis.champion_roc_auc:.4f} / {analysis.challenger_roc_auc:.4f}"),
        ("AUC difference, 95% bootstrap", f"[{low:+.4f}, {high:+.4f}]"),
        ("test", f"{analysis.test or '-'}; p = {analysis.p_value:.4g}"),
    ]
    return h.paragraph(
        "Decision: ", h.coloured(analysis.decision, colour), " - ", analysis.reason
    ) + h.key_values(rows)


def _fairness_html(joined: pd.DataFrame) -> str:
    """Per version and variant, the gaps across `sex` and `race` on predictions with outcomes."""
    known = joined[joined[OUTCOME].notna()] if len(joined) else joined
    if known.empty or not set(fairness.PROTECTED) <= set(known.columns):
        return ""
    rows = []
    for (version, variant), frame in known.groupby(["model_version", "variant"], sort=True):
        sliced = fairness.slices(
            frame, frame[OUTCOME], frame["probability"], float(frame["threshold"].iloc[0])
        )
        found = fairness.gaps(sliced)
        rows.append(
            [
                _series_label(version, variant),
                len(frame),
                *(f"{found[g]:.3f}" if g in found else "-" for g in GAPS),
            ]
        )
    headers = ["model", "predictions with outcome", *(g.replace("_", " ") for g in GAPS)]
    return (
        h.heading("Fairness on live traffic")
        + h.paragraph(f"Gaps over groups of {fairness.MIN_GROUP} or more (income.training.fairness).")
        + h.table(headers, rows)
    )


GAPS = [f"{a}_{kind}" for a in fairness.PROTECTED for kind in ("parity_gap", "equalized_odds_gap")]


def report_html(
    daily: pd.DataFrame,
    overall: pd.DataFrame,
    joined: pd.DataFrame,
    analysis: ABAnalysis | None,
    freq: str = "D",
) -> str:
    waiting = int(joined[OUTCOME].isna().sum()) if len(joined) else 0
    body = h.heading("Champion and challenger on live traffic", 2)
    body += h.paragraph(
        f"{len(joined):,} logged predictions, {len(joined) - waiting:,} with an outcome so far "
        f"({waiting:,} waiting for their label)."
    )
    body += h.heading("Experiment") + _analysis_html(analysis)
    if not overall.empty:
        columns = ["model_version", "variant", "predictions", "roc_auc", "accuracy", "brier", "positive_rate"]
        rows = [
            [r[c] if isinstance(r[c], str) else f"{r[c]:.4g}" for c in columns] for _, r in overall.iterrows()
        ]
        body += h.heading("Over all time") + h.table(columns, rows)
    body += _fairness_html(joined)
    if not daily.empty:
        unit = "hour" if freq == "h" else "day"
        body += h.heading(f"Per {unit}") + h.side_by_side(
            h.image(h.png_base64(metrics_figure(daily, unit)), f"live metrics per {unit}"),
            h.image(h.png_base64(reliability_figure(joined)), "calibration on live traffic"),
        )
    return body
