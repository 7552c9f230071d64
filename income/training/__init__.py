"""The training pipeline's library: training sets, trials, model, MLflow tracking, registry, promotion."""
