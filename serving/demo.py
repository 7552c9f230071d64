"""`python -m serving.demo`: start the service, ask it for one real prediction, stop it.

The user is one that is scoreable online, every view of the service holding a row for them
(from the last batch-scoring partition, so the online answer can be set beside the batch one).
The answer is printed and saved as demo-prediction.json among the reports, for the demo summary.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx

from income.platform.files import write_text_atomically
from income.platform.settings import load_runtime_env, predictions_uri, reports_uri
from income.platform.valkey_server import free_port


def _a_user_with_fresh_features() -> int:
    from income.features.feature_store import FEATURE_SERVICE, get_store
    from income.inference.predictions import read_predictions
    from income.inference.scoreable import scoreable, service_views

    store = get_store()
    first_features = [features[0] for features in service_views(store, FEATURE_SERVICE).values()]
    candidates = read_predictions(predictions_uri())["user_id"].drop_duplicates()
    for user in candidates.sample(min(len(candidates), 200), random_state=0):
        online = store.get_online_features(
            features=store.get_feature_service(FEATURE_SERVICE), entity_rows=[{"user_id": int(user)}]
        ).to_dict(include_event_timestamps=True)
        if scoreable({f: [online[f"{f}__ts"][0] > 0] for f in first_features})[0]:
            return int(user)
    raise RuntimeError("no scored user is scoreable online: run the feature pipeline first")


def main() -> None:
    load_runtime_env()
    port = free_port()
    env = {**os.environ, "INCOME_SERVE_HOST": "127.0.0.1", "INCOME_SERVE_PORT": str(port)}
    server = subprocess.Popen([sys.executable, "-m", "serving"], env=env, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the service did not become healthy on {base}")
            time.sleep(0.5)
        user = _a_user_with_fresh_features()
        answer = httpx.post(f"{base}/predict", json={"user_id": user}, timeout=10)
        answer.raise_for_status()
        body = answer.json()
        print(f'\nPOST {base}/predict {{"user_id": {user}}} ->')
        print(json.dumps(body, indent=2))
        write_text_atomically(f"{reports_uri()}/demo-prediction.json", json.dumps(body, indent=2))
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
