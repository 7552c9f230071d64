"""An XGBoost classifier's trees in ONNX Runtime, for the online service's small calls.

One `Booster.inplace_predict` costs ~200 µs whatever the rows (1 row 198 µs, 10 rows 258 µs
for the demo's 901 trees on this project's 2-core machine), most of it the fixed cost of a
call; ONNX Runtime's tree ensemble runs the same trees in 14 µs for one row, but its cost per
row is twice the booster's (10 rows 140 µs, 100 rows 1.4 ms against 0.74). Hence the split
(`LookupScorer`): calls of up to MAX_ROWS rows here, larger ones through the booster.

The trees, thresholds and missing-value directions are the booster's (onnxmltools reads its
dump); the scores differ in the last bits because the leaves are summed in another order in
float32: up to 3.3e-7 on the demo's model. `OnnxTrees.load` returns None, and the caller
keeps the booster, unless the probabilities agree within TOLERANCE on the probe rows.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

MAX_ROWS = 16  # below the crossover (~25 rows): 10 rows 140 µs against 258, 100 rows 1.4 ms against 0.74
TOLERANCE = 1e-6  # largest |probability difference| from the booster accepted on the probe rows


class OnnxTrees:
    """P(positive) of a binary XGBoost classifier, one ONNX Runtime session on one thread."""

    def __init__(self, estimator, width: int) -> None:
        import onnxruntime
        from onnxmltools import convert_xgboost
        from onnxmltools.convert.common.data_types import FloatTensorType

        graph = convert_xgboost(estimator, initial_types=[("x", FloatTensorType([None, width]))])
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1  # one user: threads add latency
        self._session = onnxruntime.InferenceSession(
            graph.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        self._output = "probabilities"  # [P(class 0), P(class 1)] per row; "label" is not needed

    def __call__(self, matrix: np.ndarray) -> np.ndarray:
        (probabilities,) = self._session.run([self._output], {"x": matrix.astype(np.float32)})
        return probabilities[:, 1].astype(np.float64)

    @classmethod
    def load(cls, estimator, probe: np.ndarray, reference: np.ndarray) -> OnnxTrees | None:
        """The trees in ONNX Runtime if they score `probe` like `reference` (the booster), else None."""
        try:
            trees = cls(estimator, probe.shape[1])
            gap = float(np.max(np.abs(trees(probe) - reference)))
        except Exception as exc:  # noqa: BLE001 - any surprise: the booster scores every call
            log.warning("trees not compiled to ONNX (%s): the booster scores every call", exc)
            return None
        if not gap <= TOLERANCE:  # also refuses NaN
            log.warning("ONNX trees differ from the booster by %.3g (> %g): not used", gap, TOLERANCE)
            return None
        return trees
