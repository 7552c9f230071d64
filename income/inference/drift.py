"""Drift of a scoring batch against the training reference: PSI per feature, KS, prediction PSI.

Population stability index, PSI = sum over bins of (a - e) * ln(a / e), with e the
reference share and a the batch share of a bin (shares floored at 1e-4 so that an empty
bin counts as a large but finite shift):
- numeric features: decile bins cut at the reference's quantiles (ties merged), plus one
  bin for missing values;
- categorical features: one bin per category seen in either sample, plus one for missing,
  so a category the model never saw shows up as drift instead of an error.
Identical samples give exactly 0.

Thresholds (the industry's usual reading of PSI):
- PSI < 0.1 stable, 0.1 to 0.25 moderate shift, > 0.25 drift;
- two-sample Kolmogorov-Smirnov on numeric features (non-missing values): drift when
  p < 0.01 and the statistic > 0.1 (with large batches p alone flags trivial shifts).
A feature has drifted when its PSI > 0.25 or the KS rule fires; the batch has drifted when
any feature has, or the PSI of the predicted probabilities (deciles of the model's
predictions on the reference) is > 0.25.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from income.data.schema import MISSING_CATEGORY
from income.platform import report_html as h
from income.platform.report_html import Markup

PSI_MODERATE = 0.1
PSI_DRIFT = 0.25
KS_P_VALUE = 0.01
KS_STATISTIC = 0.1
_FLOOR = 1e-4


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: str  # "numeric" or "categorical"
    psi: float
    ks_statistic: float | None = None
    ks_p_value: float | None = None

    @property
    def status(self) -> str:
        return psi_status(self.psi)

    @property
    def ks_drift(self) -> bool:
        return (
            self.ks_statistic is not None
            and self.ks_p_value is not None
            and self.ks_p_value < KS_P_VALUE
            and self.ks_statistic > KS_STATISTIC
        )

    @property
    def drifted(self) -> bool:
        return self.psi > PSI_DRIFT or self.ks_drift


@dataclass(frozen=True)
class DriftSummary:
    drifted: bool
    psi: dict[str, float]
    drifted_features: list[str]
    prediction_psi: float
    report_path: str
    mlflow_run_id: str
    ks_statistic: dict[str, float] = field(default_factory=dict)
    reference_rows: int = 0
    batch_rows: int = 0


def psi_status(psi: float) -> str:
    if psi < PSI_MODERATE:
        return "stable"
    return "moderate" if psi <= PSI_DRIFT else "drift"


def _psi_from_shares(expected: np.ndarray, actual: np.ndarray) -> float:
    e = np.maximum(expected, _FLOOR)
    a = np.maximum(actual, _FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else np.zeros_like(counts, dtype=float)


def _as_float(values) -> np.ndarray:
    return pd.to_numeric(pd.Series(values), errors="coerce").astype("float64").to_numpy()


def decile_edges(reference) -> np.ndarray:
    """Inner cut points of the reference's deciles (duplicates from ties merged)."""
    ref = _as_float(reference)
    ref = ref[~np.isnan(ref)]
    if ref.size == 0:
        return np.array([])
    return np.unique(np.quantile(ref, np.linspace(0.1, 0.9, 9)))


def numeric_bin_counts(values, edges: np.ndarray) -> np.ndarray:
    """Counts per bin (-inf, e1], (e1, e2], ..., (ek, inf), then missing."""
    x = _as_float(values)
    missing = np.isnan(x)
    bins = np.searchsorted(edges, x[~missing], side="left")
    counts = np.bincount(bins, minlength=len(edges) + 1).astype(float)
    return np.append(counts, float(missing.sum()))


def numeric_psi(reference, current) -> float:
    edges = decile_edges(reference)
    return _psi_from_shares(
        _shares(numeric_bin_counts(reference, edges)), _shares(numeric_bin_counts(current, edges))
    )


def _categories(values) -> pd.Series:
    series = pd.Series(values, dtype=object)
    return series.where(series.notna(), MISSING_CATEGORY).astype(str)


def categorical_psi(reference, current) -> float:
    ref, cur = _categories(reference), _categories(current)
    categories = sorted(set(ref) | set(cur))
    ref_counts = ref.value_counts().reindex(categories, fill_value=0).to_numpy(dtype=float)
    cur_counts = cur.value_counts().reindex(categories, fill_value=0).to_numpy(dtype=float)
    return _psi_from_shares(_shares(ref_counts), _shares(cur_counts))


def ks_test(reference, current) -> tuple[float | None, float | None]:
    """Two-sample KS on the non-missing values; (None, None) when a side has none."""
    from scipy.stats import ks_2samp

    ref, cur = _as_float(reference), _as_float(current)
    ref, cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    if ref.size == 0 or cur.size == 0:
        return None, None
    result = ks_2samp(ref, cur)
    return float(result.statistic), float(result.pvalue)


def feature_drift(feature: str, reference, current, categorical: bool) -> FeatureDrift:
    if categorical:
        return FeatureDrift(feature, "categorical", categorical_psi(reference, current))
    statistic, p_value = ks_test(reference, current)
    return FeatureDrift(feature, "numeric", numeric_psi(reference, current), statistic, p_value)


def compare(
    reference: pd.DataFrame, current: pd.DataFrame, numeric: list[str], categorical: list[str]
) -> list[FeatureDrift]:
    """Drift of each feature, most drifted (by PSI) first."""
    found = [feature_drift(f, reference[f], current[f], categorical=False) for f in numeric]
    found += [feature_drift(f, reference[f], current[f], categorical=True) for f in categorical]
    return sorted(found, key=lambda d: (-d.psi, d.feature))


# ---------------------------------------------------------------------------- report


def histogram_png(name: str, reference, current, categorical: bool) -> str:
    """Reference vs batch shares side by side, as a base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 2.6))
    if categorical:
        ref, cur = _categories(reference), _categories(current)
        shares = pd.DataFrame(
            {"reference": ref.value_counts(normalize=True), "batch": cur.value_counts(normalize=True)}
        ).fillna(0.0)
        shares = shares.sort_values("reference", ascending=False).head(12)
        positions = np.arange(len(shares))
        ax.bar(positions - 0.2, shares["reference"], width=0.4, label="reference")
        ax.bar(positions + 0.2, shares["batch"], width=0.4, label="batch")
        ax.set_xticks(positions, shares.index, rotation=60, ha="right", fontsize=6)
    else:
        ref, cur = _as_float(reference), _as_float(current)
        ref, cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
        both = np.concatenate([ref, cur])
        bins = np.histogram_bin_edges(both, bins=30) if both.size else 10
        ax.hist(ref, bins=bins, alpha=0.5, density=True, label="reference")
        ax.hist(cur, bins=bins, alpha=0.5, density=True, label="batch")
    ax.set_title(name, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return h.png_base64(fig)


def _fmt(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def report_html(
    title: str,
    drifts: list[FeatureDrift],
    prediction: FeatureDrift,
    figures: dict[str, str],
    context: dict[str, str],
) -> str:
    """A self-contained HTML report: context, verdict, the table, embedded histograms."""
    colours = {"stable": "#2e7d32", "moderate": "#ef6c00", "drift": "#c62828"}
    rows = [
        (
            d.feature,
            d.kind,
            f"{d.psi:.4f}",
            h.coloured(d.status, colours[d.status]),
            _fmt(d.ks_statistic),
            _fmt(d.ks_p_value, 6),
            "yes" if d.drifted else "",
        )
        for d in [prediction, *drifts]
    ]
    drifted = [d.feature for d in drifts if d.drifted]
    verdict = (
        h.coloured("drift", colours["drift"]) + Markup(f": {h.escape(', '.join(drifted))}")
        if drifted or prediction.psi > PSI_DRIFT
        else h.coloured("no drift", colours["stable"])
    )
    return (
        h.heading(title, 2)
        + h.bullets(Markup(f"{h.escape(k)}: {h.code(v)}") for k, v in context.items())
        + h.paragraph("Verdict: ", Markup(f"<b>{verdict}</b>"))
        + h.paragraph(
            f"PSI < {PSI_MODERATE} stable, {PSI_MODERATE}–{PSI_DRIFT} moderate, > {PSI_DRIFT} drift; "
            f"KS drift when p < {KS_P_VALUE} and statistic > {KS_STATISTIC}."
        )
        + h.table(["feature", "kind", "PSI", "status", "KS statistic", "KS p-value", "drifted"], rows)
        + "".join(h.image(png, name) for name, png in figures.items())
    )


@dataclass(frozen=True)
class DriftResult:
    features: list[FeatureDrift]
    prediction: FeatureDrift
    html: str

    @property
    def drifted_features(self) -> list[str]:
        return [d.feature for d in self.features if d.drifted]

    @property
    def drifted(self) -> bool:
        return bool(self.drifted_features) or self.prediction.psi > PSI_DRIFT


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    reference_predictions,
    current_predictions,
    numeric: list[str],
    categorical: list[str],
    title: str = "Drift report",
    context: dict[str, str] | None = None,
    top: int = 6,
) -> DriftResult:
    """Compare features and predictions; the HTML shows histograms of the `top` most drifted features."""
    drifts = compare(reference, current, numeric, categorical)
    prediction = feature_drift("prediction (probability)", reference_predictions, current_predictions, False)
    figures = {
        prediction.feature: histogram_png(
            prediction.feature, reference_predictions, current_predictions, False
        )
    }
    for d in drifts[:top]:
        figures[d.feature] = histogram_png(
            d.feature, reference[d.feature], current[d.feature], d.kind == "categorical"
        )
    return DriftResult(drifts, prediction, report_html(title, drifts, prediction, figures, context or {}))
