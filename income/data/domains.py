"""Allowed values of the census attributes, spelled exactly as in the UCI Adult data.

The generator draws from these domains and the validation schema checks against them,
so a record that passes validation could have come from the real survey files.
"""

from __future__ import annotations

WORKCLASS = [
    "Private",
    "Self-emp-not-inc",
    "Self-emp-inc",
    "Federal-gov",
    "Local-gov",
    "State-gov",
    "Without-pay",
    "Never-worked",
]

# Education level -> its education_num code in the Adult data (1 = Preschool .. 16 = Doctorate).
EDUCATION_NUM = {
    "Preschool": 1,
    "1st-4th": 2,
    "5th-6th": 3,
    "7th-8th": 4,
    "9th": 5,
    "10th": 6,
    "11th": 7,
    "12th": 8,
    "HS-grad": 9,
    "Some-college": 10,
    "Assoc-voc": 11,
    "Assoc-acdm": 12,
    "Bachelors": 13,
    "Masters": 14,
    "Prof-school": 15,
    "Doctorate": 16,
}
EDUCATION = list(EDUCATION_NUM)

MARITAL_STATUS = [
    "Married-civ-spouse",
    "Never-married",
    "Divorced",
    "Separated",
    "Widowed",
    "Married-spouse-absent",
    "Married-AF-spouse",
]

OCCUPATION = [
    "Tech-support",
    "Craft-repair",
    "Other-service",
    "Sales",
    "Exec-managerial",
    "Prof-specialty",
    "Handlers-cleaners",
    "Machine-op-inspct",
    "Adm-clerical",
    "Farming-fishing",
    "Transport-moving",
    "Priv-house-serv",
    "Protective-serv",
    "Armed-Forces",
]

RELATIONSHIP = ["Wife", "Own-child", "Husband", "Not-in-family", "Other-relative", "Unmarried"]

RACE = ["White", "Asian-Pac-Islander", "Amer-Indian-Eskimo", "Other", "Black"]

SEX = ["Female", "Male"]

# The 41 countries of the Adult data, including its own spellings ("Hong", "South",
# "Trinadad&Tobago", "Holand-Netherlands").
NATIVE_COUNTRY = [
    "United-States",
    "Cambodia",
    "England",
    "Puerto-Rico",
    "Canada",
    "Germany",
    "Outlying-US(Guam-USVI-etc)",
    "India",
    "Japan",
    "Greece",
    "South",
    "China",
    "Cuba",
    "Iran",
    "Honduras",
    "Philippines",
    "Italy",
    "Poland",
    "Jamaica",
    "Vietnam",
    "Mexico",
    "Portugal",
    "Ireland",
    "France",
    "Dominican-Republic",
    "Laos",
    "Ecuador",
    "Taiwan",
    "Haiti",
    "Columbia",
    "Hungary",
    "Guatemala",
    "Nicaragua",
    "Scotland",
    "Thailand",
    "Yugoslavia",
    "El-Salvador",
    "Trinadad&Tobago",
    "Peru",
    "Hong",
    "Holand-Netherlands",
]

CATEGORICAL_DOMAINS: dict[str, list[str]] = {
    "workclass": WORKCLASS,
    "education": EDUCATION,
    "marital_status": MARITAL_STATUS,
    "occupation": OCCUPATION,
    "relationship": RELATIONSHIP,
    "race": RACE,
    "sex": SEX,
    "native_country": NATIVE_COUNTRY,
}

# Inclusive (low, high) bounds of the numeric attributes; high None means unbounded.
NUMERIC_BOUNDS: dict[str, tuple[int, int | None]] = {
    "age": (16, 100),
    "fnlwgt": (1, None),
    "education_num": (1, 16),
    "capital_gain": (0, 99999),
    "capital_loss": (0, 99999),
    "hours_per_week": (1, 99),
}
