"""Helpers shared by the benchmarks: isolated runtime folders, a private Valkey, child runs."""

from __future__ import annotations

import json
import os
import platform
import resource
import secrets
import subprocess
import sys
import time
from pathlib import Path

from income.settings import runtime_dir
from income.valkey_server import ValkeyServer, free_port


def bench_dir(name: str) -> Path:
    path = runtime_dir() / "bench" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB, {platform.system()} {platform.release()}"


def load_average() -> list[float]:
    """The 1-, 5- and 15-minute load averages, rounded: recorded next to every figure."""
    return [round(x, 2) for x in os.getloadavg()]


def private_valkey(folder: Path) -> ValkeyServer:
    server = ValkeyServer(data_dir=folder / "valkey", port=free_port(), password=secrets.token_hex(16))
    server.start()
    return server


def run_child(module: str, args: list[str], env: dict[str, str]) -> dict:
    """Run `python -m module args` in a fresh process; it prints one JSON line last."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", module, *args],
        env={**os.environ, **env},
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    return result


def peak_rss_mib() -> float:
    """Peak resident memory of this process (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def random_column(rng, kind, n: int):
    """n random values of a benchmark column: "int" (0..99), "float" (0..60) or a list of choices."""
    import numpy as np

    if kind == "int":
        return rng.integers(0, 100, n)
    if kind == "float":
        return rng.random(n) * 60
    return np.asarray(kind, dtype=object)[rng.integers(0, len(kind), n)]
