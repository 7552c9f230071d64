"""Online latency at fixed request rates: our /predict vs `feast serve` vs raw Valkey HGETALL, each alone.

    make demo        # once: features in Valkey, Feast registry, a champion in MLflow (.runtime/)
    python -m benchmarks.serving --rate 200 --rate 400 --rate 800 --seconds 60
    # throughput: a worker per core for both servers, everything on (log, metrics, shadow)
    python -m benchmarks.serving --rate 1000 --workers 2 --feast-workers 2 \
        --target predict_shadow --target feast_serve

Reuses `.runtime/` (run through `make bench` or after `set -a; . .runtime/env; set +a`).
Starts, on free loopback ports, the service (`python -m serving`, --workers uvicorn worker
processes, one by default) and Feast's feature server in its tuned configuration (`feast
serve --no-access-log --max-requests 10000000`: with its defaults it recycles the worker
every ~1000 requests and each restart stalls requests for seconds, see DESIGN.md;
--feast-workers processes) as their own processes; this process is the load generator. The
servers stay up for the whole run. The generator keeps --connections keep-alive connections
per target and uses them in turn, so that a server's workers share the load as they would
behind a load balancer. For each measurement, the server's CPU per request (its processes'
user + system time over the requests) is noted beside the latencies.

Each target is measured ALONE: one target at a time, at one rate at a time, so that on a
2-core machine the targets do not compete for the CPU (an earlier version interleaved the
three targets, 3x the load, and measured the contention more than the services). For every
rate, the targets run one after the other with the same generator and the same users in the
same order:

  (a) POST /predict {"user_id": u}                  features + model + prediction log, our service
  (a') the same, in shadow mode: a second model scores every request too, and is logged
  (a'') the same, with the prediction log off (INCOME_SERVE_PREDICTION_LOG=0)
  (b) POST /get-online-features income_v1 for u    features only, feast serve
  (c) HGETALL <Feast key of u>                      the bare online read, Valkey (the floor)

Shadow mode needs a challenger other than the champion: the benchmark registers the
champion's model once more as a new version under the alias `benchmark-shadow` (same model,
so the shadow costs what a challenger of the same kind would) and drops the alias after.
The services log to a stream of their own (BENCH_STREAM), emptied before each measurement,
as a drain leaves the log, and deleted at the end: the project's log never sees them.
Each service process runs apart, one at a time under load; the others sit idle.

The generator is open-loop: request k is due at k / rate seconds whatever the earlier ones
are doing, and its latency counts from that due time, so a stall shows up in the tail instead
of slowing the load down. Each measurement follows --warmup seconds of the same load, not
counted (new connections, first requests through each code path).

Errors: any non-200 answer, a missing value, or no answer within --timeout seconds.

Other jobs may share the machine: each measurement waits (up to --max-wait seconds) until
processes outside the benchmark keep at most --max-other-cores busy, and records the load
average before it and the cores those processes kept busy during it (common.OtherCpu). One
with more than --max-other-cores is tried again, up to --attempts times, and the quietest
attempt is reported (all attempts are in the JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np

from benchmarks.common import OtherCpu, bench_dir, load_average, machine, wait_until_quiet
from income.features.feature_store import FEATURE_REPO, FEATURE_SERVICE, configure_environment, get_store
from income.features.offline_store import current
from income.platform.settings import ValkeySettings, load_runtime_env, offline_store_uri, runtime_dir
from income.platform.valkey_server import free_port

TARGETS = ("predict", "predict_shadow", "predict_nolog", "feast_serve", "valkey_hgetall")
LABELS = {
    "predict": "our `/predict` (features + model + prediction log)",
    "predict_shadow": "our `/predict`, shadow mode (+ challenger score, logged)",
    "predict_nolog": "our `/predict`, prediction log off",
    "feast_serve": "`feast serve` `/get-online-features` (features)",
    "valkey_hgetall": "raw Valkey `HGETALL`",
}
FEAST_SERVE = ["--no-access-log", "--max-requests", "10000000"]


def known_users(store, count: int, seed: int) -> list[int]:
    """`count` random users of the offline store that have features online."""
    import pyarrow.dataset as ds

    demographic = current(offline_store_uri()).uri("demographic")
    ids = ds.dataset(demographic, format="parquet", partitioning="hive")
    users = np.unique(ids.to_table(columns=["user_id"]).column("user_id").to_numpy())
    sample = np.random.default_rng(seed).choice(users, min(len(users), count * 2), replace=False).tolist()
    online = store.get_online_features(
        features=store.get_feature_service(FEATURE_SERVICE), entity_rows=[{"user_id": u} for u in sample]
    ).to_dict(include_event_timestamps=True)
    found = [u for u, ts in zip(online["user_id"], online["age__ts"], strict=True) if ts]
    if len(found) < 10:
        sys.exit("too few users online: run `make demo` first (it materializes the features into Valkey)")
    return found[:count]


def valkey_pid() -> list[int]:
    """The checkout's Valkey (started by `make up`, not a child of this process), if it runs."""
    try:
        return [int((runtime_dir() / "valkey" / "valkey.pid").read_text().strip())]
    except (OSError, ValueError):
        return []


def start(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


async def wait_ready(client, url: str, process: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{url} exited with {process.returncode}; its log:\n{log.read_text()[-3000:]}")
        try:
            if (await client.get(url)).status_code == 200:
                return
        except Exception:  # noqa: BLE001 - still starting
            pass
        await asyncio.sleep(0.5)
    sys.exit(f"{url} did not become ready in {timeout} s; see {log}")


class HttpPool:
    """Minimal HTTP/1.1 keep-alive client on asyncio streams: a Python load generator built on
    httpx could not hold 600 requests/s on 2 cores (it fell behind and measured itself)."""

    def __init__(self, url: str) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname, parts.port, parts.path
        # Oldest idle connection first: every open connection carries its share, as behind a
        # load balancer, and with several server workers each one's connections are used.
        self.idle: deque[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = deque()

    async def connect(self, count: int) -> None:
        """Open up to `count` idle connections ahead (the server spreads them over its workers)."""
        while len(self.idle) < count:
            self.idle.append(await asyncio.open_connection(self.host, self.port))

    async def post_json(self, body: dict) -> tuple[int, dict]:
        payload = json.dumps(body).encode()
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        ).encode()
        # A kept-alive connection may have been closed by the server while idle (uvicorn's
        # keep-alive timeout is 5 s): like any HTTP client, send again once on a new one
        # when a reused connection fails before a single response byte.
        while True:
            reused = bool(self.idle)
            reader, writer = (
                self.idle.popleft() if reused else await asyncio.open_connection(self.host, self.port)
            )
            try:
                writer.write(head + payload)
                header = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                writer.close()
                if reused and not getattr(exc, "partial", b""):
                    continue
                raise
            except BaseException:
                writer.close()
                raise
            break
        try:
            status = int(header.split(b" ", 2)[1])
            length = next(
                int(line.split(b":", 1)[1])
                for line in header.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            data = await reader.readexactly(length)
        except BaseException:
            writer.close()
            raise
        self.idle.append((reader, writer))
        return status, json.loads(data)

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


Call = Callable[[int], Awaitable[bool]]


async def open_loop(call: Call, users: list[int], rate: float, seconds: float, timeout: float) -> dict:
    """`rate` x `seconds` calls, call k due at k / rate; latency from the due time."""
    total = int(rate * seconds)
    latencies: list[float] = []
    errors = 0
    example = None

    async def one(user: int, due: float) -> None:
        nonlocal errors, example
        try:
            ok = await asyncio.wait_for(call(user), timeout)
        except Exception as exc:  # noqa: BLE001 - counted, and one example kept
            ok = False
            example = example or f"{type(exc).__name__}: {exc}"
        if ok:
            latencies.append(time.perf_counter() - due)
        else:
            errors += 1

    tasks = []
    # The generator's own full garbage collections (200-230 ms with Feast and MLflow imported)
    # would count as the server's latency: none during a measurement.
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        started = time.perf_counter() + 0.1  # uvloop's loop.time() ticks in whole ms
        for k in range(total):
            due = started + k / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(users[k % len(users)], due)))
        sent = time.perf_counter() - started
        await asyncio.gather(*tasks)
    finally:
        gc.enable()
    ms = np.asarray(latencies) * 1000
    return {
        "requests": total,
        "errors": errors,
        "p50_ms": round(float(np.percentile(ms, 50)), 2) if len(ms) else None,
        "p99_ms": round(float(np.percentile(ms, 99)), 2) if len(ms) else None,
        "max_ms": round(float(ms.max()), 2) if len(ms) else None,
        "error_example": example,
        # Below the asked rate, the generator itself fell behind: the figures are not at that rate.
        "sent_rate": round(total / sent, 1),
    }


def cpu_seconds(pid: int) -> float:
    """CPU seconds so far of a process and its live descendants (a server's workers)."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for process in (root, *root.children(recursive=True)):
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


async def measure(
    users: list[int],
    args: argparse.Namespace,
    urls: dict[str, str],
    tracked: list[int],
    servers: dict[str, int],
) -> list[dict]:
    """Every (rate, target) alone, in turn: rates in the order given, targets in TARGETS order.

    A measurement during which other processes kept more than --max-other-cores busy is
    repeated, up to --attempts times; the quietest attempt is reported, all are kept in JSON.
    `tracked`: processes outside this one's tree whose CPU is the benchmark's (Valkey).
    `servers`: target -> pid of the server process answering it, whose CPU per request is noted.
    """
    import valkey.asyncio
    from feast.infra.online_stores.helpers import _redis_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    store = get_store()
    project, version = store.config.project, store.config.entity_key_serialization_version

    def feast_key(user: int) -> bytes:
        key = EntityKey(join_keys=["user_id"], entity_values=[Value(int64_val=user)])
        return _redis_key(project, key, entity_key_serialization_version=version)

    settings = ValkeySettings.from_env()
    kv = valkey.asyncio.Valkey(
        host=settings.host, port=settings.port, password=settings.password or None, db=settings.db
    )
    http = {target: HttpPool(url) for target, url in urls.items()}
    for pool in http.values():
        await pool.connect(args.connections)

    def predict_on(target: str) -> Call:
        async def predict(user: int) -> bool:
            status, body = await http[target].post_json({"user_id": user})
            return status == 200 and body["predictions"][0]["user_id"] == user

        return predict

    async def feast_serve(user: int) -> bool:
        request = {"feature_service": FEATURE_SERVICE, "entities": {"user_id": [user]}}
        status, body = await http["feast_serve"].post_json(request)
        return status == 200 and all(s == "PRESENT" for s in body["results"][1]["statuses"])

    async def valkey_hgetall(user: int) -> bool:
        return bool(await kv.hgetall(feast_key(user)))

    calls: dict[str, Call] = {
        "predict": predict_on("predict"),
        "predict_shadow": predict_on("predict_shadow"),
        "predict_nolog": predict_on("predict_nolog"),
        "feast_serve": feast_serve,
        "valkey_hgetall": valkey_hgetall,
    }
    results = []
    for rate in args.rate:
        for target in args.target:
            attempts = []
            for _ in range(args.attempts):
                waited = wait_until_quiet(args.max_other_cores, args.max_wait, tracked)
                await kv.delete(BENCH_STREAM)
                if args.warmup > 0:
                    await open_loop(calls[target], users, rate, args.warmup, args.timeout)
                load = load_average()
                print(f"  {target} at {rate:g}/s for {args.seconds:g} s (load {load[0]}) ...", flush=True)
                server = servers.get(target)
                server_cpu = cpu_seconds(server) if server else 0.0
                with OtherCpu(tracked, poll=None) as others:
                    result = await open_loop(calls[target], users, rate, args.seconds, args.timeout)
                if server:
                    per_request = (cpu_seconds(server) - server_cpu) / result["requests"]
                    result["server_cpu_us_per_request"] = round(per_request * 1e6)
                attempts.append(
                    {
                        **result,
                        "load_average_before": load,
                        "other_cores": others.cores,
                        "waited_seconds": waited,
                    }
                )
                print(f"    {attempts[-1]}", flush=True)
                # Let the server drain what a saturated run left queued before the next one starts.
                await asyncio.sleep(args.pause)
                if others.cores <= args.max_other_cores:
                    break
            # Another agent's job during an attempt measures that job: keep the quietest attempt.
            quietest = min(attempts, key=lambda a: a["other_cores"])
            results.append({"rate": rate, "target": target, **quietest, "attempts": attempts})
    for pool in http.values():
        pool.close()
    await kv.aclose()
    return results


SHADOW_ALIAS = "benchmark-shadow"
# The services log to a stream of their own, emptied before each measurement (as a drain would
# leave it) and deleted at the end: the benchmark's predictions never reach the project's log.
BENCH_STREAM = "income:prediction_log:benchmark"
# Per service target: its settings beside the defaults (prediction log on, traffic mode off).
SERVICE_ENV = {
    "predict": {},
    "predict_shadow": {
        "INCOME_SERVE_CHALLENGER_MODE": "shadow",
        "INCOME_SERVE_CHALLENGER_ALIAS": SHADOW_ALIAS,
    },
    "predict_nolog": {"INCOME_SERVE_PREDICTION_LOG": "0"},
}


def register_shadow() -> str:
    """The champion's model registered once more, as a new version under SHADOW_ALIAS."""
    import mlflow

    from income.platform.tracking import MODEL_NAME, configure

    configure()
    client = mlflow.MlflowClient()
    champion = client.get_model_version_by_alias(MODEL_NAME, "champion")
    copy = mlflow.register_model(champion.source, MODEL_NAME, tags=champion.tags)
    client.set_registered_model_alias(MODEL_NAME, SHADOW_ALIAS, copy.version)
    return str(copy.version)


def drop_shadow() -> None:
    import mlflow

    from income.platform.tracking import MODEL_NAME

    mlflow.MlflowClient().delete_registered_model_alias(MODEL_NAME, SHADOW_ALIAS)


async def bench(args: argparse.Namespace, folder: Path) -> list[dict]:
    import httpx

    store = get_store()
    users = known_users(store, args.users, args.seed)
    env = {**os.environ}
    services = [t for t in SERVICE_ENV if t in args.target]
    if "predict_shadow" in services:
        print(f"shadow challenger: v{register_shadow()} (the champion's model, registered again)", flush=True)
    processes, urls, logs = {}, {}, {}
    for target in services:
        port = free_port()
        logs[target] = folder / f"{target}.log"
        settings = {
            "INCOME_SERVE_HOST": "127.0.0.1",
            "INCOME_SERVE_PORT": str(port),
            "INCOME_SERVE_WORKERS": str(args.workers),
            "INCOME_SERVE_PREDICTION_LOG_STREAM": BENCH_STREAM,
            **SERVICE_ENV[target],
        }
        processes[target] = start(
            [sys.executable, "-m", "serving"], Path.cwd(), {**env, **settings}, logs[target]
        )
        urls[target] = f"http://127.0.0.1:{port}"
    feast_port = free_port()
    logs["feast_serve"] = folder / "feast_serve.log"
    feast_cli = str(Path(sys.executable).parent / "feast")
    feast_command = [feast_cli, "serve", "-h", "127.0.0.1", "-p", str(feast_port), *FEAST_SERVE]
    feast_command += ["--workers", str(args.feast_workers)]
    processes["feast_serve"] = start(feast_command, FEATURE_REPO, env, logs["feast_serve"])
    urls["feast_serve"] = f"http://127.0.0.1:{feast_port}"
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            for target, process in processes.items():
                await wait_ready(client, f"{urls[target]}/health", process, logs[target])
            if "predict_shadow" in services:
                health = (await client.get(f"{urls['predict_shadow']}/health")).json()
                assert health["traffic"]["active"], f"shadow mode not active: {health}"
        print(f"{len(users)} known users; " + ", ".join(f"{t} on {u}" for t, u in urls.items()), flush=True)
        endpoints = {t: f"{u}/predict" for t, u in urls.items() if t in SERVICE_ENV}
        endpoints["feast_serve"] = f"{urls['feast_serve']}/get-online-features"
        servers = {target: process.pid for target, process in processes.items()}
        return await measure(users, args, endpoints, valkey_pid(), servers)
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        if "predict_shadow" in services:
            drop_shadow()
        ValkeySettings.from_env().client().delete(BENCH_STREAM)


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "n/a"


def markdown(results: list[dict], rates: list[float]) -> str:
    lines = [
        "| rate (req/s) | target | requests | errors | p50 (ms) | p99 (ms) | max (ms) | sent rate "
        "| server CPU per request (µs) | load before | other processes (cores) | attempts |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r['rate']:g} | {LABELS[r['target']]} | {r['requests']:,} | {r['errors']} | {r['p50_ms']} "
            f"| {r['p99_ms']} | {r['max_ms']} | {r['sent_rate']:g} "
            f"| {r.get('server_cpu_us_per_request', '')} "
            f"| {r['load_average_before'][0]} | {r['other_cores']} | {len(r['attempts'])} |"
        )
    by = {(r["rate"], r["target"]): r for r in results}
    for peer in ("predict_shadow", "predict_nolog"):
        if all((rate, t) in by for rate in rates for t in ("predict", peer)):
            lines += [
                "",
                f"| rate (req/s) | {peer} p50 / predict p50 | {peer} p99 / predict p99 |",
                "| --- | --- | --- |",
            ]
            for rate in rates:
                ours, other = by[(rate, "predict")], by[(rate, peer)]
                p50, p99 = ratio(other["p50_ms"], ours["p50_ms"]), ratio(other["p99_ms"], ours["p99_ms"])
                lines.append(f"| {rate:g} | {p50} | {p99} |")
    if all((rate, t) in by for rate in rates for t in ("predict", "feast_serve")):
        lines += ["", "| rate (req/s) | /predict p50 / feast serve p50 | /predict p99 / feast serve p99 |"]
        lines.append("| --- | --- | --- |")
        for rate in rates:
            ours, feast = by[(rate, "predict")], by[(rate, "feast_serve")]
            p50, p99 = ratio(ours["p50_ms"], feast["p50_ms"]), ratio(ours["p99_ms"], feast["p99_ms"])
            lines.append(f"| {rate:g} | {p50} | {p99} |")
    for r in results:
        if r["error_example"]:
            lines.append(f"\n{r['target']} at {r['rate']:g}/s: e.g. {r['error_example']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rate", type=float, action="append", help="requests per second; repeat for several (default 200)"
    )
    parser.add_argument("--seconds", type=float, default=60, help="measured seconds per target and rate")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of load before each, not counted")
    parser.add_argument("--pause", type=float, default=3, help="idle seconds between two measurements")
    parser.add_argument("--target", action="append", choices=TARGETS, help="repeat to pick; default: all")
    parser.add_argument("--workers", type=int, default=1, help="our service's worker processes")
    parser.add_argument("--feast-workers", type=int, default=1, help="feast serve's worker processes")
    parser.add_argument(
        "--connections", type=int, default=16, help="keep-alive connections per target, used in turn"
    )
    parser.add_argument("--users", type=int, default=1000, help="distinct random known users")
    parser.add_argument(
        "--timeout", type=float, default=5.0, help="seconds before a request counts as failed"
    )
    parser.add_argument("--attempts", type=int, default=3, help="tries per measurement while others are busy")
    parser.add_argument(
        "--max-other-cores", type=float, default=0.2, help="other processes' CPU (cores) that ends the tries"
    )
    parser.add_argument(
        "--max-wait", type=float, default=120, help="seconds to wait for a quiet machine before each try"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.rate = args.rate or [200.0]
    args.target = args.target or list(TARGETS)

    load_runtime_env()
    configure_environment()
    folder = bench_dir("serving")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    load_before = load_average()
    print(f"machine: {machine()}; load average {load_before}")
    results = asyncio.run(bench(args, folder))
    rates = " ".join(f"--rate {r:g}" for r in args.rate)
    command = f"python -m benchmarks.serving {rates} --seconds {args.seconds:g}"
    if args.target != list(TARGETS):
        command += "".join(f" --target {t}" for t in args.target)
    if args.workers != 1:
        command += f" --workers {args.workers}"
    if args.feast_workers != 1:
        command += f" --feast-workers {args.feast_workers}"
    print(
        f"\n`{command}` (open loop, loopback, each target alone; feast serve {' '.join(FEAST_SERVE)} "
        f"--workers {args.feast_workers}; "
        f"load average before {load_before}, after {load_average()})\n"
    )
    print(markdown(results, args.rate))
    # One file per run: runs with other options (--target, --feast-workers) do not replace it.
    (folder / f"result-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(
        json.dumps(
            {
                "machine": machine(),
                "command": command,
                "feast_serve_options": [*FEAST_SERVE, "--workers", str(args.feast_workers)],
                "load_average_before": load_before,
                "load_average_after": load_average(),
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
