"""Synthetic census records: deterministic, on contract, realistic, learnable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from income.data import domains
from income.data.schema import CATEGORICAL_ATTRIBUTES, NUMERIC_ATTRIBUTES, RAW_COLUMNS
from income.data.synthetic import generate_records, main

DAYS_PER_YEAR = 365.25


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    return generate_records(4000, seed=11)


def test_same_arguments_give_the_same_frame():
    pd.testing.assert_frame_equal(generate_records(200, seed=5), generate_records(200, seed=5))
    assert not generate_records(200, seed=5).equals(generate_records(200, seed=6))


def test_contract_columns_and_dtypes(records):
    assert list(records.columns) == RAW_COLUMNS
    assert str(records["event_timestamp"].dtype) == "datetime64[us, UTC]"
    for column in ["user_id", *NUMERIC_ATTRIBUTES]:
        assert records[column].dtype == "int64", column
    for column in [*CATEGORICAL_ATTRIBUTES, "income"]:
        present = records[column].dropna()
        assert records[column].dtype == object
        assert present.map(type).eq(str).all(), column
    for column, allowed in domains.CATEGORICAL_DOMAINS.items():
        assert set(records[column].dropna()) <= set(allowed), column
    assert set(records["income"].dropna()) == {">50K", "<=50K"}
    assert records["income"].isna().any()


def test_user_ids_are_1_to_n_and_keys_unique(records):
    assert set(records["user_id"]) == set(range(1, 4001))
    assert not records.duplicated(["user_id", "event_timestamp"]).any()
    per_user = records.groupby("user_id").size()
    assert per_user.min() >= 1 and per_user.max() <= 6
    assert 2.7 < per_user.mean() < 3.3


def test_records_lie_in_the_window_in_time_order_per_user(records):
    times = records["event_timestamp"]
    assert times.min() >= pd.Timestamp("2022-01-01", tz="UTC")
    assert times.max() <= pd.Timestamp("2025-12-31", tz="UTC")
    assert records.groupby("user_id")["event_timestamp"].apply(lambda t: t.is_monotonic_increasing).all()


def test_age_advances_with_elapsed_time(records):
    by_user = records.groupby("user_id")
    elapsed_years = by_user["event_timestamp"].diff().dt.days / DAYS_PER_YEAR
    age_steps = by_user["age"].diff()
    later = elapsed_years.notna()
    assert (age_steps[later] >= 0).all()
    assert (age_steps[later] - elapsed_years[later]).abs().max() < 1
    first_to_last = by_user.agg(
        years=("event_timestamp", lambda t: (t.iloc[-1] - t.iloc[0]).days / DAYS_PER_YEAR),
        aged=("age", lambda a: a.iloc[-1] - a.iloc[0]),
    )
    assert (first_to_last["aged"] - first_to_last["years"]).abs().max() < 1


def test_attributes_change_over_a_users_history(records):
    by_user = records.groupby("user_id")
    changed = {
        column: (by_user[column].nunique(dropna=False) > 1).mean()
        for column in ["occupation", "hours_per_week", "marital_status", "education"]
    }
    assert 0.2 < changed["occupation"] < 0.7
    assert 0.2 < changed["hours_per_week"] < 0.7
    assert 0.05 < changed["marital_status"] < 0.4
    assert 0.01 < changed["education"] < 0.2
    assert (by_user["education_num"].diff().dropna() >= 0).all()
    assert by_user["sex"].nunique().eq(1).all()


def test_relationship_is_coherent_with_marital_status_and_sex(records):
    married = records["marital_status"].isin(["Married-civ-spouse", "Married-AF-spouse"])
    spouse = np.where(records["sex"] == "Male", "Husband", "Wife")
    assert (records.loc[married, "relationship"] == spouse[married]).all()
    assert not records.loc[~married, "relationship"].isin(["Husband", "Wife"]).any()
    assert (records["education"].map(domains.EDUCATION_NUM) == records["education_num"]).all()


def test_marginals_look_like_adult(records):
    labels = records["income"].dropna()
    assert abs(len(labels) / len(records) - 0.6) < 0.02
    assert 0.21 < (labels == ">50K").mean() < 0.27
    assert 0.62 < (records["sex"] == "Male").mean() < 0.72
    assert 0.80 < (records["race"] == "White").mean() < 0.90
    assert 0.85 < (records["native_country"] == "United-States").mean() < 0.95
    assert records["age"].between(17, 90).all()
    assert 33 < records["age"].median() < 40
    for column in ["workclass", "occupation", "native_country"]:
        assert 0.005 < records[column].isna().mean() < 0.1, column


def test_label_share_is_respected():
    records = generate_records(2000, seed=2, label_share=0.25)
    assert abs(records["income"].notna().mean() - 0.25) < 0.02


def test_labels_are_learnable(records):
    labelled = records[records["income"].notna()].drop_duplicates("user_id")
    features = labelled[[*NUMERIC_ATTRIBUTES, *CATEGORICAL_ATTRIBUTES]].astype(
        {column: "category" for column in CATEGORICAL_ATTRIBUTES}
    )
    target = (labelled["income"] == ">50K").to_numpy()
    split = len(features) * 2 // 3
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    model.fit(features[:split], target[:split])

    auc = roc_auc_score(target[split:], model.predict_proba(features[split:])[:, 1])

    assert auc > 0.8


def test_cli_writes_microsecond_parquet(tmp_path):
    out = tmp_path / "records.parquet"

    main(["--users", "50", "--seed", "4", "--out", str(out)])

    assert str(pq.read_schema(out).field("event_timestamp").type) == "timestamp[us, tz=UTC]"
    pd.testing.assert_frame_equal(pd.read_parquet(out), generate_records(50, seed=4))
