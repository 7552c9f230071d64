"""The timeline of a simulation (`make simulate`): what each day measured, and the report that shows it.

A day's measurements (`workflows.simulate` runs the pipelines and calls these):
- ingestion: the records and labels-only rows the day's batches brought into the raw history,
  and the rows quarantined, read back from the bronze layer (income.data.batches);
- record drift: PSI of each model feature over the day's new records against the champion's
  training set. New records show a change of the world on the day it starts; the scored
  population (every user, as of the day) changes only as users answer again, so its PSI
  (the batch-scoring drift report's, kept too) creeps up over weeks. Window features
  (records_365d, ...) are not in a raw record and have only the population PSI;
- prediction PSI: the day's scored probabilities against day 0's;
- the champion's ROC AUC on labels as they mature: the labels of the records from
  [T - lag - window, T - lag) known by T (those arrived in the last `window` days; on day 0
  the backfill's), joined point-in-time to their features as training joins them, scored by
  the day's champion.

`report` draws the table (matplotlib, embedded) into one self-contained page. It reads the
data and features rooms and the drift helpers, so it sits above the rooms, like income.overview.
"""

from __future__ import annotations

import datetime as dt

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from income.data import batches  # noqa: E402
from income.data.schema import ARRIVED_AT, ENTITY_KEY, LABEL, LABEL_TABLE, TIMESTAMP  # noqa: E402
from income.features.offline_store import current  # noqa: E402
from income.inference.drift import PSI_DRIFT, PSI_MODERATE, compare, numeric_psi  # noqa: E402
from income.platform import report_html as h  # noqa: E402
from income.training.model import CATEGORICAL, FEATURES, NUMERIC  # noqa: E402

RECORD_PSI = "psi."  # column prefix: PSI of the day's new records, per feature
POPULATION_PSI = "population_psi."  # column prefix: PSI of the scored population (drift report)
STEPS = ("features", "training", "scoring", "monitoring")  # seconds_<step> columns


# ------------------------------------------------------------------------ measurements


def ingested_on(root: str, day: dt.date) -> dict[str, int]:
    """Rows the batches ingested on `day` wrote: records, labels-only rows, quarantined rows."""
    import pyarrow.dataset as ds

    written = [b for b in batches.list_batches(root) if b.ingest_date == day]
    quarantine = f"{root.rstrip('/')}/quarantine/ingest_date={day.isoformat()}"
    try:
        quarantined = ds.dataset(quarantine, format="parquet").count_rows()
    except (FileNotFoundError, OSError):
        quarantined = 0
    return {
        "records": sum(b.rows for b in written if b.kind == batches.RECORDS),
        "labels": sum(b.rows for b in written if b.kind == batches.LABELS),
        "quarantined": quarantined,
    }


def records_of(root: str, day: dt.date) -> pd.DataFrame:
    """The validated records the batches ingested on `day` added, with capital_net as features have it."""
    uris = [b.uri for b in batches.list_batches(root, batches.RECORDS) if b.ingest_date == day]
    frame = pd.concat([pd.read_parquet(u) for u in uris], ignore_index=True) if uris else pd.DataFrame()
    if not frame.empty:
        frame["capital_net"] = frame["capital_gain"] - frame["capital_loss"]
    return frame


def record_psi(reference: pd.DataFrame, records: pd.DataFrame) -> dict[str, float]:
    """PSI per model feature that a raw record carries, of `records` against `reference`."""
    if records.empty:
        return {}
    numeric = [f for f in NUMERIC if f in records.columns]
    categorical = [f for f in CATEGORICAL if f in records.columns]
    return {d.feature: round(d.psi, 6) for d in compare(reference, records, numeric, categorical)}


def prediction_psi(day0: np.ndarray, today: np.ndarray) -> float:
    return round(numeric_psi(day0, today), 6)


def matured_labels(root: str, as_of: pd.Timestamp, lag_days: int, window_days: int) -> pd.DataFrame:
    """Labels of the records from [as_of - lag - window, as_of - lag) that had arrived by as_of."""
    import pyarrow.dataset as ds

    since = as_of - pd.Timedelta(days=lag_days + window_days)
    until = as_of - pd.Timedelta(days=lag_days)
    table = ds.dataset(current(root).uri(LABEL_TABLE), format="parquet", partitioning="hive")
    when = ds.field(TIMESTAMP)
    known = (when >= since.to_pydatetime()) & (when < until.to_pydatetime())
    if ARRIVED_AT in table.schema.names:
        known &= ds.field(ARRIVED_AT) <= as_of.to_pydatetime()
    labels = table.to_table(columns=[ENTITY_KEY, TIMESTAMP, LABEL], filter=known).to_pandas()
    return labels.sort_values([TIMESTAMP, ENTITY_KEY]).reset_index(drop=True)


def roc_auc(model, features: pd.DataFrame) -> float:
    """ROC AUC of a pyfunc model on point-in-time features with labels; NaN with one class only."""
    from sklearn.metrics import roc_auc_score

    if features.empty or features[LABEL].nunique() < 2:
        return float("nan")
    return round(float(roc_auc_score(features[LABEL], model.predict(features[FEATURES]))), 6)


# ------------------------------------------------------------------------ report


def _days(table: pd.DataFrame) -> np.ndarray:
    return table["day"].to_numpy()


def _mark_drift(ax, drift_day: int | None) -> None:
    if drift_day is not None:
        ax.axvline(
            drift_day, color="#c62828", linestyle=":", linewidth=1.5, label=f"drift from day {drift_day}"
        )


def _mark_promotions(ax, table: pd.DataFrame) -> None:
    for _, row in table[table["promoted"].fillna(False).astype(bool)].iterrows():
        ax.axvline(row["day"], color="#2e7d32", linestyle="--", linewidth=1)
        ax.annotate(
            f"v{row['champion_version']}",
            (row["day"], 1),
            xycoords=("data", "axes fraction"),
            xytext=(2, -10),
            textcoords="offset points",
            fontsize=7,
            color="#2e7d32",
        )


def _finish(ax, title: str, ylabel: str, legend: bool = True):
    ax.set(title=title, xlabel="simulated day", ylabel=ylabel)
    if legend:
        ax.legend(fontsize=7, loc="upper left", ncol=2)
    ax.grid(alpha=0.3)
    fig = ax.figure
    fig.tight_layout()
    return fig


def volume_figure(table: pd.DataFrame):
    fig, ax = plt.subplots(figsize=(8, 3))
    days = _days(table)
    later = table["day"] > 0  # day 0 is the backfill: a year of records, off the scale
    ax.bar(days[later] - 0.2, table.loc[later, "records"], width=0.4, label="records")
    ax.bar(days[later] + 0.2, table.loc[later, "labels"], width=0.4, label="labels (labels-only batch)")
    ax.plot(days[later], table.loc[later, "quarantined"], color="#c62828", marker=".", label="quarantined")
    return _finish(ax, "Rows ingested per day (day 0, the backfill, left out)", "rows")


def psi_figure(table: pd.DataFrame, prefix: str, title: str, drift_day: int | None, top: int = 4):
    """PSI per feature per day; the `top` features by their largest PSI named, the others grey."""
    fig, ax = plt.subplots(figsize=(8, 3.4))
    columns = [c for c in table.columns if c.startswith(prefix)]
    ranked = sorted(columns, key=lambda c: -np.nan_to_num(table[c].to_numpy(dtype=float)).max())
    for column in ranked[top:]:
        ax.plot(_days(table), table[column], color="#bbbbbb", linewidth=0.8)
    for column in ranked[:top]:
        ax.plot(_days(table), table[column], linewidth=1.6, label=column.removeprefix(prefix))
    ax.axhline(PSI_DRIFT, color="#c62828", linewidth=1, label=f"drift threshold {PSI_DRIFT}")
    ax.axhline(PSI_MODERATE, color="#ef6c00", linewidth=0.8, linestyle="--", label=f"moderate {PSI_MODERATE}")
    _mark_drift(ax, drift_day)
    return _finish(ax, title, "PSI")


def prediction_figure(table: pd.DataFrame, drift_day: int | None):
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot(_days(table), table["prediction_psi_vs_day0"], marker=".", label="scored probabilities vs day 0")
    ax.plot(
        _days(table),
        table["prediction_psi_vs_reference"],
        marker=".",
        label="vs the champion on its training set",
    )
    ax.axhline(PSI_DRIFT, color="#c62828", linewidth=1, label=f"drift threshold {PSI_DRIFT}")
    _mark_drift(ax, drift_day)
    _mark_promotions(ax, table)
    return _finish(ax, "Prediction PSI", "PSI")


def auc_figure(table: pd.DataFrame, drift_day: int | None, lag_days: int, window_days: int):
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.plot(_days(table), table["auc_matured"], marker=".", label="champion on matured labels")
    trained = table[table["trained"].fillna(False).astype(bool)]
    ax.scatter(
        trained["day"], trained["challenger_auc"], marker="x", color="#6a1b9a", label="challenger (gate test)"
    )
    compared = trained[trained["champion_gate_auc"] >= 0]  # -1: there was no champion to compare
    ax.scatter(
        compared["day"], compared["champion_gate_auc"], marker="+", color="#555", label="champion (gate test)"
    )
    _mark_drift(ax, drift_day)
    if drift_day is not None:
        ax.axvline(
            drift_day + lag_days, color="#ef6c00", linestyle=":", linewidth=1.2, label="first drifted labels"
        )
    _mark_promotions(ax, table)
    title = f"Champion ROC AUC on labels of records {lag_days}–{lag_days + window_days} days old"
    ax.set_ylim(max(0.5, float(np.nanmin([table["auc_matured"].min(), 1.0])) - 0.05), 1.0)
    return _finish(ax, title, "ROC AUC")


def duration_figure(table: pd.DataFrame):
    fig, ax = plt.subplots(figsize=(8, 3))
    bottom = np.zeros(len(table))
    for step in STEPS:
        seconds = table[f"seconds_{step}"].fillna(0).to_numpy(dtype=float)
        ax.bar(_days(table), seconds, bottom=bottom, label=step)
        bottom += seconds
    return _finish(ax, "Seconds per step per day", "seconds")


def first_days_over(table: pd.DataFrame, prefix: str, threshold: float = PSI_DRIFT) -> dict[str, int | None]:
    """Per feature: the first day its PSI exceeded `threshold` (None: never)."""
    found = {}
    for column in (c for c in table.columns if c.startswith(prefix)):
        over = table.loc[table[column] > threshold, "day"]
        found[column.removeprefix(prefix)] = int(over.iloc[0]) if len(over) else None
    return found


def drift_rows(table: pd.DataFrame, prefix: str, drift_day: int | None) -> list[tuple]:
    """Per feature: first day over the threshold, days over it, mean PSI before and from the drift day."""
    before = table["day"] < drift_day if drift_day is not None else table["day"] >= 0
    rows = []
    for feature, first in first_days_over(table, prefix).items():
        values = table[prefix + feature]
        rows.append(
            (
                feature,
                "" if first is None else first,
                int((values > PSI_DRIFT).sum()),
                f"{values[before].mean():.3f}",
                f"{values[~before].mean():.3f}" if (~before).any() else "",
            )
        )
    return sorted(rows, key=lambda r: (r[1] == "", r[1] if r[1] != "" else 0, r[0]))


def _promotion_rows(table: pd.DataFrame) -> list[tuple]:
    trained = table[table["trained"].fillna(False).astype(bool)]
    return [
        (
            int(r["day"]),
            r["date"],
            f"v{r['challenger_version']}",
            h.coloured("promoted", "#2e7d32") if r["promoted"] else "not promoted",
            f"{r['challenger_auc']:.4f}",
            "" if r["champion_gate_auc"] < 0 else f"{r['champion_gate_auc']:.4f}",
            r["promotion_reason"],
        )
        for _, r in trained.iterrows()
    ]


DAY_COLUMNS = [
    "day",
    "date",
    "records",
    "labels",
    "quarantined",
    "scored",
    "unscored",
    "max_record_psi",
    "prediction_psi_vs_day0",
    "auc_matured",
    "auc_labels",
    "champion_version",
    "seconds_total",
]


def _fmt(value) -> str:
    if isinstance(value, float):
        return "" if np.isnan(value) else f"{value:.4g}"
    return str(value)


def report(
    table: pd.DataFrame, facts: dict[str, object], drift_day: int | None, lag_days: int, window_days: int
) -> str:
    """The timeline page: facts, the pictures, drift detection, promotions, the per-day table."""
    record_first = first_days_over(table, RECORD_PSI)
    detected = sorted(
        (d, f) for f, d in record_first.items() if d is not None and (drift_day is None or d >= drift_day)
    )
    verdict = (
        f"first PSI > {PSI_DRIFT} on the new records from day {drift_day} on: "
        + ", ".join(f"{f} (day {d})" for d, f in detected)
        if detected
        else f"no feature of the new records crossed PSI {PSI_DRIFT} from day {drift_day} on"
    )
    promoted = table[table["promoted"].fillna(False).astype(bool)]
    after = promoted[promoted["day"] > (drift_day or 0)]
    picture = lambda fig, alt: h.image(h.png_base64(fig, dpi=90), alt)  # noqa: E731
    table = table.copy()
    table["max_record_psi"] = table[[c for c in table.columns if c.startswith(RECORD_PSI)]].max(axis=1)
    parts = [
        h.heading("Simulation timeline", 1),
        h.key_values(facts.items()),
        h.heading("Verdict", 2),
        h.bullets(
            [
                f"Drift: {verdict}.",
                f"Promotions: {len(promoted)} ("
                + ", ".join(f"day {int(r.day)}: v{r.champion_version}" for r in promoted.itertuples())
                + f"); after the drift day: {len(after)}.",
            ]
        ),
        h.heading("Ingestion", 2),
        picture(volume_figure(table), "rows ingested per day"),
        h.heading("Drift", 2),
        h.paragraph(
            "New records: each day's new records against the champion's training set; they show a change "
            "of the world on the day it starts. Scored population: every scored user as of the day "
            "(the batch-scoring drift report); it moves only as users answer again."
        ),
        picture(
            psi_figure(
                table, RECORD_PSI, "PSI per feature: the day's new records vs the training set", drift_day
            ),
            "PSI per feature of the new records",
        ),
        h.table(
            ["feature", "first day PSI > 0.25", "days over", "mean PSI before drift", "mean PSI from drift"],
            drift_rows(table, RECORD_PSI, drift_day),
        ),
        picture(
            psi_figure(
                table, POPULATION_PSI, "PSI per feature: the scored population vs the training set", drift_day
            ),
            "PSI per feature of the scored population",
        ),
        picture(prediction_figure(table, drift_day), "prediction PSI"),
        h.heading("Model quality and promotions", 2),
        picture(auc_figure(table, drift_day, lag_days, window_days), "champion ROC AUC on matured labels"),
        h.table(
            ["day", "date", "challenger", "decision", "challenger AUC", "champion AUC", "reason"],
            _promotion_rows(table),
            empty="no training run",
        ),
        h.heading("Time", 2),
        picture(duration_figure(table), "seconds per step per day"),
        h.heading("Per day", 2),
        h.table(DAY_COLUMNS, [[_fmt(v) for v in row] for row in table[DAY_COLUMNS].itertuples(index=False)]),
    ]
    return h.page("Simulation timeline", "".join(parts))
