"""Production monitoring: the prediction log, outcomes joined to it, live metrics and alerts."""
