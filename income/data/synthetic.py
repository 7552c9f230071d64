"""Synthetic census survey records shaped like UCI Adult, with histories per user.

Each user answers the survey 1 to 6 times (3 on average) at increasing moments between
`start` and `end`. Between two answers their age follows the calendar, and their job,
hours, marital status (with a coherent relationship) and sometimes education change.
Marginals follow the real Adult data. The income label of a record is drawn from a
logistic model of that record's own attributes, so it is learnable and depends on which
record in time a feature join picks. Everything is vectorised numpy: there is a loop
over a user's record positions (at most 6), never over rows.

Drift (`Drift`, optional): from its start on (records with event_timestamp >= start) the
world changes in three ways at once. A share of users (`occupation_share`, drawn per user)
move to a job of a shifted mix (Tech-support, Exec-managerial, Prof-specialty) and keep it
in every later record; every record's hours rise by `hours_shift` (clipped to the validation
bounds); and the label model changes (concept drift): occupation effects are multiplied by
`occupation_coef_scale` and the per-hour coefficient becomes `hours_coef`, so a model
trained before the start ranks people worse after it. The drift draws use their own random
stream: without drift, and before the start, every value is the same as without it.

`SyntheticWorld` turns the generator into a world that unfolds day by day: `backfill(until)`
is everything before a day, `day(D)` is the records of day D (no labels) and the labels of
the records of day D - lag (a labels-only batch). See the class for the exact boundaries.

CLI: `python -m income.data.synthetic --users N --seed S --out records.parquet`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from income.data.domains import (
    EDUCATION,
    MARITAL_STATUS,
    NATIVE_COUNTRY,
    NUMERIC_BOUNDS,
    OCCUPATION,
    RACE,
    RELATIONSHIP,
    SEX,
    WORKCLASS,
)
from income.data.schema import ENTITY_KEY, HIGH_INCOME, LABEL_SOURCE, LOW_INCOME, RAW_COLUMNS, TIMESTAMP
from income.data.validation import LABEL_ONLY_COLUMNS

MAX_RECORDS_PER_USER = 6
NEVER_MARRIED = MARITAL_STATUS.index("Never-married")
WITH_SPOUSE = [
    MARITAL_STATUS.index("Married-civ-spouse"),
    MARITAL_STATUS.index("Married-AF-spouse"),
]
MICROS_PER_YEAR = int(365.25 * 24 * 3600 * 1_000_000)

# Frequencies of the Adult training data (counts per 32,561 rows; missing last where it occurs).
WORKCLASS_WEIGHTS = [22696, 2541, 1116, 960, 2093, 1298, 14, 7, 1836]
EDUCATION_WEIGHTS = [
    51, 168, 333, 646, 514, 933, 1175, 433, 10501, 7291, 1382, 1067, 5355, 1723, 576, 413,
]  # fmt: skip
RACE_WEIGHTS = [27816, 1039, 311, 271, 3124]
COUNTRY_WEIGHTS = [
    29170, 19, 90, 114, 121, 137, 14, 100, 62, 29, 80, 75, 95, 43, 13, 198, 73, 60, 81, 67,
    643, 37, 24, 29, 70, 18, 28, 51, 44, 59, 13, 64, 34, 12, 18, 16, 106, 19, 31, 20, 1, 583,
]  # fmt: skip
# Occupation weights by sex (rows Female, Male), in `OCCUPATION` order.
OCCUPATION_WEIGHTS = [
    [348, 222, 1800, 1263, 1159, 1515, 164, 550, 2537, 65, 90, 141, 76, 0],
    [580, 3877, 1495, 2387, 2907, 2625, 1206, 1452, 1233, 929, 1507, 8, 573, 9],
]
# Marital status of adults who have married at some point, in `MARITAL_STATUS` order, by
# sex (rows Female, Male): Adult holds far fewer wives than husbands.
EVER_MARRIED_WEIGHTS = [[1657, 0, 2672, 631, 825, 205, 14], [13319, 0, 1771, 394, 168, 213, 9]]
# Marital status transitions between two answers when it changes (rows: from, cols: to).
MARITAL_TRANSITIONS = [
    [0, 0, 6, 3, 1, 1, 0],  # married -> divorced, separated, widowed, spouse absent
    [1, 0, 0, 0, 0, 0, 0],  # never married -> married
    [1, 0, 0, 0, 0, 0, 0],  # divorced -> remarried
    [2, 0, 3, 0, 0, 0, 0],  # separated -> back together or divorced
    [1, 0, 0, 0, 0, 0, 0],  # widowed -> remarried
    [3, 0, 1, 0, 0, 0, 0],  # spouse absent -> together or divorced
    [1, 0, 0, 0, 0, 0, 0],  # armed-forces spouse -> civilian spouse
]
# Common non-zero capital gains of the Adult data; the 99999 top code included.
CAPITAL_GAINS = [15024, 7688, 7298, 99999, 3103, 5178, 4386, 5013, 8614, 3325, 2174, 594, 1055]
CAPITAL_GAIN_WEIGHTS = [347, 284, 246, 159, 97, 97, 70, 69, 55, 53, 48, 34, 25]

# Logistic label model: log-odds of income > 50K, tuned for ~24% positives and a strong
# but imperfect signal (a GBM reaches ROC AUC ~0.9 on one record per user).
INTERCEPT = -4.25
AGE_COEF = 2.2  # times an inverted parabola peaking at 50, floored for the very young and old
EDUCATION_COEF = 0.42  # per education_num step above 10
MARRIED_COEF = 2.0
HOURS_COEF = 0.04  # per hour above 40
MALE_COEF = 0.35
HIGH_GAIN_COEF = 3.5  # capital gain >= 7000
CAPITAL_LOSS_COEF = 0.8
OCCUPATION_COEF = dict(
    zip(
        OCCUPATION,
        [0.4, 0.0, -1.2, 0.3, 1.1, 1.0, -1.0, -0.6, -0.3, -0.9, -0.2, -2.0, 0.4, 0.0],
        strict=True,
    )
)


# Where drifted users' jobs go, in `OCCUPATION` order: Tech-support, Exec-managerial, Prof-specialty.
DRIFTED_OCCUPATION_WEIGHTS = [4, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0]
DRIFT_STREAM = 1  # the drift's random stream: numpy seed sequence [seed, DRIFT_STREAM]


@dataclass(frozen=True)
class Drift:
    """A change of the world from `start` (ISO date, UTC midnight) on; see the module docstring."""

    start: str
    occupation_share: float = 0.35
    hours_shift: int = 8
    occupation_coef_scale: float = -1.0
    hours_coef: float = -0.04

    @property
    def start_time(self) -> pd.Timestamp:
        return pd.Timestamp(self.start, tz="UTC")


def _probabilities(weights: list[int] | list[float]) -> np.ndarray:
    values = np.asarray(weights, dtype="float64")
    return values / values.sum()


def _draw(rng: np.random.Generator, weights: list[int] | list[float], size: int) -> np.ndarray:
    """Category codes drawn with the given weights (int16)."""
    cdf = np.cumsum(_probabilities(weights))
    return np.searchsorted(cdf, rng.random(size), side="right").clip(0, len(cdf) - 1).astype("int16")


def _labels(codes: np.ndarray, values: list[str]) -> np.ndarray:
    """Object array of python str, None where the code is out of range (missing)."""
    lookup = np.array([*values, None], dtype=object)
    return lookup[np.where((codes >= 0) & (codes < len(values)), codes, len(values))]


def _record_times(
    rng: np.random.Generator, user_of: np.ndarray, start: pd.Timestamp, end: pd.Timestamp
) -> np.ndarray:
    """Strictly increasing microsecond timestamps within each user (rows grouped by user)."""
    span = end.value // 1000 - start.value // 1000
    within = rng.random(len(user_of))
    order = np.argsort(user_of + within, kind="stable")
    times = start.value // 1000 + (within[order] * span).astype("int64")
    same_user = np.zeros(len(times), dtype=bool)
    same_user[1:] = user_of[1:] == user_of[:-1]
    # Two draws of one user can land on the same microsecond: nudge the later one.
    while (clash := same_user & (np.diff(times, prepend=times[0] - 1) <= 0)).any():
        times[clash] = times[np.flatnonzero(clash) - 1] + 1
    return times


def _age_at_first_record(rng: np.random.Generator, n_users: int) -> np.ndarray:
    # Skewed young like Adult (median ~37); capped so four more years stay under 90.
    return np.clip(17 + rng.gamma(2.0, 10.8, n_users), 17, 86)


def _initial_marital(rng: np.random.Generator, age: np.ndarray, male: np.ndarray) -> np.ndarray:
    never = rng.random(len(age)) < 1 / (1 + np.exp((age - np.where(male, 27, 33)) / 4.5))
    ever = np.where(
        male,
        _draw(rng, EVER_MARRIED_WEIGHTS[1], len(age)),
        _draw(rng, EVER_MARRIED_WEIGHTS[0], len(age)),
    )
    return np.where(never, NEVER_MARRIED, ever).astype("int16")


def _next_marital(status: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The status after a change, drawn from `MARITAL_TRANSITIONS` with uniforms `u`."""
    transitions = np.asarray(MARITAL_TRANSITIONS, dtype="float64")
    cdf = np.cumsum(transitions / transitions.sum(axis=1, keepdims=True), axis=1)
    return (u[:, None] >= cdf[status]).sum(axis=1).clip(0, len(MARITAL_STATUS) - 1).astype("int16")


def _relationship(marital: np.ndarray, male: np.ndarray, age: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Relationship coherent with marital status, sex and age; `u` is a per-user draw."""
    married = np.isin(marital, WITH_SPOUSE)
    single = np.select(
        [(age < 25) & (u < 0.75), u < 0.1, u < 0.6, u < 0.9],
        [
            RELATIONSHIP.index("Own-child"),
            RELATIONSHIP.index("Own-child"),
            RELATIONSHIP.index("Not-in-family"),
            RELATIONSHIP.index("Unmarried"),
        ],
        RELATIONSHIP.index("Other-relative"),
    )
    spouse = np.where(male, RELATIONSHIP.index("Husband"), RELATIONSHIP.index("Wife"))
    return np.where(married, spouse, single).astype("int16")


def _jobs(rng: np.random.Generator, male: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(workclass, occupation) codes; -1 is missing. No occupation without a workclass."""
    workclass = _draw(rng, WORKCLASS_WEIGHTS, len(male))
    occupation = np.where(
        male,
        _draw(rng, OCCUPATION_WEIGHTS[1], len(male)),
        _draw(rng, OCCUPATION_WEIGHTS[0], len(male)),
    )
    no_job = (workclass == len(WORKCLASS)) | (workclass == WORKCLASS.index("Never-worked"))
    return workclass, np.where(no_job, -1, occupation).astype("int16")


def _hours(rng: np.random.Generator, age: np.ndarray) -> np.ndarray:
    full_time = rng.random(len(age)) < 0.47
    spread = np.rint(rng.normal(40, 12, len(age))) - np.where(age < 22, 12, 0)
    return np.where(full_time, 40, spread).clip(1, 99).astype("int64")


def _capital(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    gain = np.where(
        rng.random(size) < 0.083,
        np.asarray(CAPITAL_GAINS)[_draw(rng, CAPITAL_GAIN_WEIGHTS, size)],
        0,
    )
    has_loss = (rng.random(size) < 0.047) & (gain == 0)
    loss = np.where(has_loss, np.rint(rng.normal(1900, 350, size)).clip(155, 4356), 0)
    return gain.astype("int64"), loss.astype("int64")


def _drift(
    drift: Drift,
    seed: int,
    user_of: np.ndarray,
    micros: np.ndarray,
    occupation: np.ndarray,
    hours: np.ndarray,
) -> np.ndarray:
    """Apply the drift's jobs and hours in place; returns which records are drifted."""
    rng = np.random.default_rng([seed, DRIFT_STREAM])
    n_users = int(user_of.max()) + 1 if len(user_of) else 0
    moves = rng.random(n_users) < drift.occupation_share
    new_job = _draw(rng, DRIFTED_OCCUPATION_WEIGHTS, n_users)
    drifted = micros >= drift.start_time.value // 1000
    # Only people with a job change jobs; the missing occupation of the jobless stays missing.
    moving = drifted & moves[user_of] & (occupation >= 0)
    occupation[moving] = new_job[user_of[moving]]
    low, high = NUMERIC_BOUNDS["hours_per_week"]
    hours[drifted] = (hours[drifted] + drift.hours_shift).clip(low, high)
    return drifted


def _income_probability(
    frame: dict[str, np.ndarray],
    occupation: np.ndarray,
    drifted: np.ndarray | None = None,
    drift: Drift | None = None,
) -> np.ndarray:
    """P(income > 50K) of each record from its own attributes (and the drifted model, when drifted)."""
    age = frame["age"]
    occupation_effect = np.append(np.asarray(list(OCCUPATION_COEF.values())), -0.8)[
        np.where(occupation >= 0, occupation, len(OCCUPATION))
    ]
    hours_coef = np.full(len(age), HOURS_COEF)
    if drift is not None and drifted is not None:
        occupation_effect = np.where(
            drifted, occupation_effect * drift.occupation_coef_scale, occupation_effect
        )
        hours_coef[drifted] = drift.hours_coef
    logit = (
        INTERCEPT
        + EDUCATION_COEF * (frame["education_num"] - 10)
        + MARRIED_COEF * frame["married"]
        + AGE_COEF * (1 - ((age - 50) / 22) ** 2).clip(-2, 1)
        + hours_coef * (frame["hours_per_week"] - 40)
        + MALE_COEF * frame["male"]
        + HIGH_GAIN_COEF * (frame["capital_gain"] >= 7000)
        + CAPITAL_LOSS_COEF * (frame["capital_loss"] > 1800)
        + occupation_effect
    )
    return 1 / (1 + np.exp(-logit))


def generate_records(
    n_users: int,
    seed: int = 7,
    start: str = "2022-01-01",
    end: str = "2025-12-31",
    label_share: float = 0.6,
    invalid_share: float = 0.0,
    drift: Drift | None = None,
) -> pd.DataFrame:
    """Raw census records of `n_users` users (user_id 1..n_users); same arguments, same frame."""
    rng = np.random.default_rng(seed)
    start_ts, end_ts = pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC")
    counts = 1 + rng.binomial(MAX_RECORDS_PER_USER - 1, 0.4, n_users)
    user_of = np.repeat(np.arange(n_users, dtype="int64"), counts)
    n = len(user_of)
    first_row = np.cumsum(counts) - counts
    position = np.arange(n) - np.repeat(first_row, counts)
    micros = _record_times(rng, user_of, start_ts, end_ts)

    # Fixed per user: sex, race, country, weight, birth moment, a relationship draw.
    male = rng.random(n_users) < 0.67
    race = _draw(rng, RACE_WEIGHTS, n_users)
    country = _draw(rng, COUNTRY_WEIGHTS, n_users)
    fnlwgt = np.rint(rng.lognormal(np.log(178_000), 0.5, n_users)).clip(12_285, 1_484_705)
    first_age = _age_at_first_record(rng, n_users)
    birth = micros[first_row] - (first_age * MICROS_PER_YEAR).astype("int64")
    relationship_draw = rng.random(n_users)
    age = ((micros - birth[user_of]) // MICROS_PER_YEAR).astype("int64")

    # Attributes that may change between answers: drawn for every record, then a record
    # keeps its predecessor's value unless a change happened (walking positions 1..5).
    male_r = male[user_of]
    workclass, occupation = _jobs(rng, male_r)
    hours = _hours(rng, age)
    education = _draw(rng, EDUCATION_WEIGHTS, n)
    # The young cannot have finished a long education yet (age 17 -> HS-grad at most).
    education = np.minimum(education, np.maximum(age - 9, 8)).astype("int16")
    marital = _initial_marital(rng, age, male_r)
    marital_draw = rng.random(n)
    job_change = rng.random(n) < 0.25
    hours_change = rng.random(n) < 0.3
    marital_change = rng.random(n) < 0.1
    education_rise = (rng.random(n) < 0.05) & (age < 45)
    for k in range(1, MAX_RECORDS_PER_USER):
        rows = np.flatnonzero(position == k)
        before = rows - 1
        keep_job = ~job_change[rows]
        workclass[rows[keep_job]] = workclass[before[keep_job]]
        occupation[rows[keep_job]] = occupation[before[keep_job]]
        keep_hours = ~hours_change[rows]
        hours[rows[keep_hours]] = hours[before[keep_hours]]
        education[rows] = np.minimum(education[before] + education_rise[rows], len(EDUCATION) - 1)
        moved = _next_marital(marital[before], marital_draw[rows])
        marital[rows] = np.where(marital_change[rows], moved, marital[before])
    relationship = _relationship(marital, male_r, age, relationship_draw[user_of])
    capital_gain, capital_loss = _capital(rng, n)
    drifted = _drift(drift, seed, user_of, micros, occupation, hours) if drift is not None else None

    education_num = education.astype("int64") + 1
    frame = {
        "age": age,
        "education_num": education_num,
        "married": np.isin(marital, WITH_SPOUSE),
        "hours_per_week": hours,
        "male": male_r,
        "capital_gain": capital_gain,
        "capital_loss": capital_loss,
    }
    high = rng.random(n) < _income_probability(frame, occupation, drifted, drift)
    labelled = rng.random(n) < label_share
    income_codes = np.where(labelled, high, -1)

    columns = {
        "user_id": user_of + 1,
        "event_timestamp": micros,
        "age": age,
        "workclass": _labels(workclass, WORKCLASS),
        "fnlwgt": fnlwgt[user_of].astype("int64"),
        "education": _labels(education, EDUCATION),
        "education_num": education_num,
        "marital_status": _labels(marital, MARITAL_STATUS),
        "occupation": _labels(occupation, OCCUPATION),
        "relationship": _labels(relationship, RELATIONSHIP),
        "race": _labels(race[user_of], RACE),
        "sex": _labels(male_r.astype("int16"), SEX),
        "capital_gain": capital_gain,
        "capital_loss": capital_loss,
        "hours_per_week": hours,
        "native_country": _labels(country[user_of], NATIVE_COUNTRY),
        "income": _labels(income_codes, [LOW_INCOME, HIGH_INCOME]),
    }
    if invalid_share > 0:
        _corrupt(columns, rng, invalid_share, position)
    columns["event_timestamp"] = pd.DatetimeIndex(micros.astype("datetime64[us]")).tz_localize("UTC")
    # No copy: consolidating the columns into blocks would double the peak memory.
    return pd.DataFrame(columns, columns=RAW_COLUMNS, copy=False)


def _corrupt(
    columns: dict[str, np.ndarray], rng: np.random.Generator, share: float, position: np.ndarray
) -> None:
    """Break `share` of the rows in place, cycling through the faults validation must catch."""
    n = len(position)
    rows = np.sort(rng.choice(n, size=round(share * n), replace=False))
    kind = np.arange(len(rows)) % 8
    # A duplicate key needs an earlier record of the same user; first records get a bad age.
    duplicate = rows[(kind == 7) & (position[rows] > 0)]
    kind[(kind == 7) & (position[rows] == 0)] = 0
    columns["event_timestamp"][duplicate] = columns["event_timestamp"][duplicate - 1]
    faults: list[tuple[str, int | str | None]] = [
        ("age", -1),
        ("age", 250),
        ("hours_per_week", 0),
        ("hours_per_week", 150),
        ("sex", "Unknown"),
        ("education", "Kindergarten"),
        ("marital_status", None),
    ]
    for k, (column, value) in enumerate(faults):
        columns[column][rows[kind == k]] = value


def floor_day(moment: pd.Timestamp) -> pd.Timestamp:
    """UTC midnight at or before a moment (a naive moment is taken as UTC)."""
    moment = pd.Timestamp(moment)
    return (moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")).floor("D")


@dataclass(frozen=True)
class DayBatch:
    """What one synthetic day delivers: its records (no labels) and a labels-only batch."""

    records: pd.DataFrame  # RAW_COLUMNS, income None
    labels: pd.DataFrame  # LABEL_ONLY_COLUMNS


@dataclass(frozen=True)
class SyntheticWorld:
    """A deterministic synthetic world (`generate_records` with these arguments), seen day by day.

    Time boundaries (UTC, microseconds; a record at exactly midnight belongs to the day it opens):

    - `backfill(until)`: every record with event_timestamp < floor_day(until); its income is
      kept when event_timestamp < floor_day(until) - lag, else None (its label comes later).
    - `day(D)`: records with event_timestamp in [D, D + 1 day), income None; labels: the
      labelled records with event_timestamp in [D - lag, D - lag + 1 day).

    So backfill(until) plus day(D) for every D from until's day on hold each record once and
    each label once. The same world and day always give equal frames (same content hash).
    With `invalid_share`, corrupted rows (validation's faults) appear in the backfill and the
    days alike; keys are unique except the rows corrupted into duplicates on purpose.

    Density: a user answers 3 times on average, uniformly over [start, end), so a day holds
    about 3 * users / span_days records: users=20_000 over one year plus 90 days (455 days)
    gives about 132 records a day (~0.27% of a one-year backfill of ~48,000), 60% of which
    later bring a label.
    """

    users: int
    seed: int = 7
    start: str = "2022-01-01"
    end: str = "2025-12-31"
    label_share: float = 0.6
    label_lag_days: int = 28
    drift: Drift | None = None
    invalid_share: float = 0.0

    @property
    def lag(self) -> pd.Timedelta:
        return pd.Timedelta(days=self.label_lag_days)

    def records(self) -> pd.DataFrame:
        """Every record of the world, labelled or not, in time order (cached: do not modify)."""
        return _world_records(self)

    def backfill(self, until: pd.Timestamp) -> pd.DataFrame:
        """Every record before until's day; labels only of records older than the lag."""
        cutoff = floor_day(until)
        records = self.records()
        before = records[records[TIMESTAMP] < cutoff].reset_index(drop=True)
        unripe = before[TIMESTAMP] >= cutoff - self.lag
        before[LABEL_SOURCE] = before[LABEL_SOURCE].where(~unripe, None)
        return before

    def day(self, day: dt.date) -> DayBatch:
        """The records of `day` without labels, and the labels of the records of `day` - lag."""
        opens = pd.Timestamp(day, tz="UTC")
        records = self.records()
        times = records[TIMESTAMP]
        of_day = records[(times >= opens) & (times < opens + pd.Timedelta(days=1))]
        labelled_then = (times >= opens - self.lag) & (times < opens - self.lag + pd.Timedelta(days=1))
        labels = records.loc[labelled_then & records[LABEL_SOURCE].notna(), LABEL_ONLY_COLUMNS]
        return DayBatch(
            records=of_day.assign(**{LABEL_SOURCE: None}).reset_index(drop=True),
            labels=labels.reset_index(drop=True),
        )


@functools.lru_cache(maxsize=2)
def _world_records(world: SyntheticWorld) -> pd.DataFrame:
    records = generate_records(
        world.users,
        seed=world.seed,
        start=world.start,
        end=world.end,
        label_share=world.label_share,
        invalid_share=world.invalid_share,
        drift=world.drift,
    )
    return records.sort_values([TIMESTAMP, ENTITY_KEY], kind="stable").reset_index(drop=True)


def write_parquet(records: pd.DataFrame, path: str | Path) -> None:
    """Write records as parquet with microsecond timestamps (Spark cannot read nanoseconds)."""
    table = pa.Table.from_pandas(records, preserve_index=False)
    pq.write_table(table, str(path), coerce_timestamps="us")


def main(argv: list[str] | None = None) -> None:
    """Generate records and write them to a parquet file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, required=True, help="number of users")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", default="2022-01-01")
    parser.add_argument("--end", default="2025-12-31")
    parser.add_argument("--label-share", type=float, default=0.6)
    parser.add_argument("--invalid-share", type=float, default=0.0)
    parser.add_argument("--out", type=Path, required=True, help="parquet file to write")
    args = parser.parse_args(argv)
    records = generate_records(
        args.users, args.seed, args.start, args.end, args.label_share, args.invalid_share
    )
    write_parquet(records, args.out)
    print(f"wrote {len(records):,} records of {args.users:,} users to {args.out}")


if __name__ == "__main__":
    main()
