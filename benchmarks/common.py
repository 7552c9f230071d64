"""Helpers shared by the benchmarks: isolated runtime folders, a private Valkey, child runs, interference."""

from __future__ import annotations

import json
import os
import platform
import resource
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

from income.platform.settings import runtime_dir
from income.platform.valkey_server import ValkeyServer, free_port


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


class OtherCpu:
    """Cores that processes outside the benchmark kept busy while it measured (Linux /proc).

    Other agents share this machine, and the load average lags a minute and counts the
    benchmark itself; this counts the others only. The benchmark's own CPU is this process
    and every process seen in its tree (servers, Spark's JVM and Python workers), plus the
    processes in `pids` and their descendants (a daemonized Valkey); everything else the
    machine did in the meantime is interference, reported next to the figure. The tree is
    read at the start, at the end and, every `poll` seconds, from a thread; a process once
    seen is followed after it leaves the tree, so a JVM that its parent leaves behind (an
    orphan: no one in the tree reaps it, its time never reaches getrusage) still counts as
    ours. CPU of a process after its last reading, or of one that lived and left between two
    readings, counts as others': the figure errs towards interference. Without `poll`,
    nothing runs beside the measurement (the serving benchmark, whose tree does not change).
    """

    def __init__(self, pids: list[int] | tuple[int, ...] = (), poll: float | None = 1.0) -> None:
        self.pids = list(pids)
        self.poll = poll
        self.cores = float("nan")

    def __enter__(self) -> OtherCpu:
        self.started, self.busy, self.own = time.perf_counter(), _busy_seconds(), _own_seconds()
        self.last: dict[tuple[int, str], float] = {}
        self.first = self._tree()
        self.last = dict(self.first)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        if self.poll:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self.poll:
            self._thread.join()
        self.last.update(self._tree())
        elapsed = time.perf_counter() - self.started
        ours = (
            _own_seconds() - self.own + sum(cpu - self.first.get(key, 0.0) for key, cpu in self.last.items())
        )
        self.cores = round(max(0.0, (_busy_seconds() - self.busy - ours) / elapsed), 2)

    def _watch(self) -> None:
        while not self._stop.wait(self.poll):
            self.last.update(self._tree())

    def _tree(self) -> dict[tuple[int, str], float]:
        """(pid, start time) -> CPU seconds so far, for the tree but this process, and for every
        process seen in it before (followed after it leaves the tree, as an orphan)."""
        found = {}
        tree = set(_with_descendants([os.getpid(), *self.pids])) - {os.getpid()}
        seen = {pid for pid, _ in self.last}
        for pid in tree | seen:
            try:
                fields = _stat(pid)
            except (FileNotFoundError, ProcessLookupError):
                continue
            key = (pid, fields[19])
            if pid in tree or key in self.last:  # not a new process that reuses a seen pid
                found[key] = (int(fields[11]) + int(fields[12])) / _TICK
        return found


def wait_until_quiet(
    max_cores: float = 0.2, max_wait: float = 120, pids: list[int] | tuple[int, ...] = (), window: float = 5
) -> float:
    """Wait until other processes keep at most `max_cores` busy over `window` seconds, or
    `max_wait` seconds have passed (on a machine that is never quiet); returns seconds waited."""
    started = time.perf_counter()
    while time.perf_counter() - started < max_wait:
        with OtherCpu(pids, poll=None) as others:
            time.sleep(window)
        if others.cores <= max_cores:
            break
    return round(time.perf_counter() - started, 1)


_TICK = os.sysconf("SC_CLK_TCK")


def _busy_seconds() -> float:
    """CPU seconds the whole machine spent busy since boot (all but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / _TICK


def _stat(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # after "pid (comm) ": state, ppid, ...


def _own_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _with_descendants(pids: list[int]) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents.setdefault(int(_stat(int(entry.name))[1]), []).append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
    found, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


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
