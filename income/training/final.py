"""The model that is registered: the best trial's configuration refit, calibrated, thresholded, explained.

After the search has chosen a trial on the validation rows:

1. calibration and decision threshold are chosen on the trial's validation scores
   (income.training.calibration);
2. the configuration is refit on training + validation rows; XGBoost gets the trial's best
   number of rounds scaled by the growth of the data (more rows, proportionally more rounds);
3. the refit model carries the calibrator and the threshold, and is scored once on the test
   rows, which nothing before has seen (the promotion gate scores the same rows);
4. SHAP values (XGBoost's exact TreeSHAP) on a sample of validation rows explain it.

Everything is logged in one nested MLflow run tagged run_role=final, which the registry
registers. The calibrator was fitted on the scores of the model trained without the
validation rows and is applied to the refit model's scores: the usual approximation, since
no rows are left to calibrate the refit model on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import mlflow
import numpy as np
import pandas as pd

from income.data.schema import LABEL
from income.training import fairness
from income.training.calibration import choose_calibration, choose_threshold
from income.training.model import FittedModel, _raw_feature, as_model_input, fit
from income.training.plots import importance_figure, log_figure, reliability_figure, roc_figure, shap_figure
from income.training.trials import ROLE_TAG, VALID_SCORES, Splits, evaluate, log_model

SHAP_SAMPLE = 2000


@dataclass(frozen=True)
class FinalModel:
    run_id: str
    model_family: str
    trial_run_id: str  # the trial whose configuration was refit
    calibration: str  # none, platt or isotonic
    threshold: float
    threshold_criterion: str
    boosting_rounds: int  # XGBoost: rounds of the refit model; 0 for other families
    refit_rows: int
    test_roc_auc: float
    test_accuracy: float
    fairness_gaps: dict[str, float] = field(default_factory=dict)  # income.training.fairness, on test


def _existing(parent_run_id: str, trial_run_id: str) -> FinalModel | None:
    """The final model a previous attempt made of this trial (a retried task), if it finished."""
    runs = mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}' and tags.{ROLE_TAG} = 'final' "
        f"and tags.trial_run_id = '{trial_run_id}' and attributes.status = 'FINISHED'",
        output_format="list",
        max_results=1,
    )
    return FinalModel(**json.loads(runs[0].data.tags["final_model"])) if runs else None


def shap_values(model: FittedModel, rows: pd.DataFrame) -> pd.DataFrame | None:
    """Per row and raw feature, its SHAP value (log-odds; one-hot columns summed); XGBoost only."""
    if model.family != "xgboost":
        return None
    from xgboost import DMatrix

    matrix = model.preprocessor.transform(as_model_input(rows, model.features))
    contributions = model.estimator.get_booster().predict(
        DMatrix(matrix), pred_contribs=True, iteration_range=(0, model.boosting_rounds)
    )[:, :-1]  # the last column is the bias
    encoded = [_raw_feature(name, model.features) for name in model.preprocessor.get_feature_names_out()]
    return pd.DataFrame(contributions, columns=encoded).T.groupby(level=0).sum().T[model.features]


def refit_params(
    family: str, params: dict, boosting_rounds: int | None, train_rows: int, valid_rows: int
) -> dict:
    """A trial's parameters for its refit on train + validation rows: XGBoost gets the rounds it
    kept when stopping early, scaled by the growth of the data (more rows, more rounds)."""
    if family != "xgboost":
        return dict(params)
    return {**params, "n_estimators": scaled_rounds(boosting_rounds, train_rows, valid_rows)}


def scaled_rounds(rounds: int, train_rows: int, valid_rows: int) -> int:
    """Boosting rounds kept on `train_rows`, scaled for a refit on train + validation rows."""
    return max(1, round(rounds * (train_rows + valid_rows) / train_rows))


def finalize(
    trial_run_id: str, splits: Splits, parent_run_id: str, criterion: str = "accuracy", seed: int = 0
) -> FinalModel:
    """Refit, calibrate, threshold and explain the trial's configuration; log it as the final run."""
    done = _existing(parent_run_id, trial_run_id)
    if done is not None:
        return done
    trial = mlflow.get_run(trial_run_id)
    family = trial.data.params["model_family"]
    valid_labels = splits.valid[LABEL].to_numpy()
    valid_scores = np.load(
        mlflow.artifacts.download_artifacts(run_id=trial_run_id, artifact_path=VALID_SCORES)
    )
    calibration = choose_calibration(valid_scores, valid_labels, seed)
    threshold = choose_threshold(valid_labels, calibration.out_of_fold, criterion)

    rounds = trial.data.params.get("boosting_rounds")
    params = refit_params(
        family,
        json.loads(trial.data.tags["params_json"]),
        int(rounds) if rounds is not None else None,
        len(splits.train),
        len(splits.valid),
    )
    both = pd.concat([splits.train, splits.valid], ignore_index=True)
    with mlflow.start_run(run_name=f"final-{family}", parent_run_id=parent_run_id, nested=True) as run:
        model = fit(family, params, both, seed=seed, features=splits.features)
        model.calibrator, model.threshold = calibration.calibrator, threshold
        test_labels = splits.test[LABEL].to_numpy()
        test_scores = model.predict_proba(splits.test)
        metrics = evaluate(test_labels, test_scores, "test", threshold)
        sliced = fairness.slices(splits.test, test_labels, test_scores, threshold)
        fairness_gaps = fairness.gaps(sliced)
        final = FinalModel(
            run_id=run.info.run_id,
            model_family=family,
            trial_run_id=trial_run_id,
            calibration=calibration.method,
            threshold=threshold,
            threshold_criterion=criterion,
            boosting_rounds=model.boosting_rounds or 0,
            refit_rows=len(both),
            test_roc_auc=metrics["test_roc_auc"],
            test_accuracy=metrics["test_accuracy"],
            fairness_gaps=fairness_gaps,
        )
        mlflow.log_params({"model_family": family, **params, "refit_rows": len(both)})
        mlflow.log_metrics(
            metrics
            | {f"val_brier_{method}": brier for method, brier in calibration.brier.items()}
            | {"decision_threshold": threshold}
            | {f"fairness_{k}": v for k, v in fairness_gaps.items()}
        )
        mlflow.log_table(sliced, "fairness/slices.json")
        log_figure(
            reliability_figure(
                valid_labels,
                {"best trial, uncalibrated": valid_scores}
                | (
                    {f"best trial, {calibration.method} (out of fold)": calibration.out_of_fold}
                    if calibration.method != "none"
                    else {}
                ),
                "Calibration on the validation rows",
            ),
            "calibration/reliability_validation.png",
        )
        log_figure(
            reliability_figure(
                test_labels,
                {f"final model ({calibration.method})": test_scores},
                "Calibration on the test rows",
            ),
            "calibration/reliability_test.png",
        )
        log_figure(roc_figure(test_labels, test_scores, f"final {family}: test ROC"), "roc_curve.png")
        log_figure(
            importance_figure(model.feature_importance(), f"final {family}: importance"),
            "feature_importance.png",
        )
        sample = splits.valid.sample(min(SHAP_SAMPLE, len(splits.valid)), random_state=seed)
        contributions = shap_values(model, sample)
        if contributions is not None:
            mean_abs = contributions.abs().mean().sort_values(ascending=False)
            mlflow.log_dict({k: float(v) for k, v in mean_abs.items()}, "explain/shap_mean_abs.json")
            log_figure(
                shap_figure(
                    contributions,
                    sample[model.features],
                    f"final {family}: SHAP on {len(sample):,} validation rows",
                ),
                "explain/shap_summary.png",
            )
        log_model(model, splits.valid)
        # The tags last: a run with them is complete, and a retry takes it as it is.
        mlflow.set_tags(
            {
                ROLE_TAG: "final",
                "trial_run_id": trial_run_id,
                "model_family": family,
                "final_model": json.dumps(final.__dict__),
            }
        )
    return final
