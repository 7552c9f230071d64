"""Find a Java 17/21 runtime for Spark, or provision one.

Order: $JAVA_HOME, `java` on PATH, well-known JVM folders, then provisioning:
Debian/Ubuntu's openjdk-17-jre-headless when running as root with apt-get, else a JDK
downloaded into .runtime/jdk by the `install-jdk` package when the internet is reachable.
`python -m income.platform.java` prints the JAVA_HOME it settled on.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

SUPPORTED = (17, 21)
INSTRUCTIONS = (
    "Spark needs Java 17 or 21 and none was found or could be installed.\n"
    "  Debian/Ubuntu: sudo apt-get install -y openjdk-17-jre-headless\n"
    "  Fedora/RHEL:   sudo dnf install -y java-17-openjdk-headless\n"
    "  macOS:         brew install openjdk@17\n"
    "then run the command again (or set JAVA_HOME to the JDK's folder)."
)


def java_major(java_home: Path) -> int | None:
    """The major version of the java binary under java_home, or None if it does not run."""
    binary = java_home / "bin" / "java"
    if not binary.exists():
        return None
    try:
        out = subprocess.run([str(binary), "-version"], capture_output=True, text=True, timeout=60).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)', out)
    return int(match.group(1)) if match else None


def _candidates() -> list[Path]:
    found = []
    if os.environ.get("JAVA_HOME"):
        found.append(Path(os.environ["JAVA_HOME"]))
    on_path = shutil.which("java")
    if on_path:
        found.append(Path(os.path.realpath(on_path)).parent.parent)
    for pattern in ("/usr/lib/jvm/*", "/opt/java/*", str(_runtime_jdk_dir() / "*")):
        found.extend(Path(p) for p in sorted(glob.glob(pattern)))
    return found


def _runtime_jdk_dir() -> Path:
    return Path(os.environ.get("INCOME_RUNTIME", ".runtime")).resolve() / "jdk"


def find_java_home() -> Path | None:
    """The first Java 17/21 home on this machine, or None."""
    for home in _candidates():
        if java_major(home) in SUPPORTED:
            return home
    return None


def _install_with_apt() -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print("Java 17/21 not found: installing openjdk-17-jre-headless with apt-get", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "openjdk-17-jre-headless"],
        check=True,
        env=env,
    )


def _install_with_install_jdk() -> None:
    import jdk  # the `install-jdk` package; optional, needs the internet

    print(f"Java 17/21 not found: downloading a JDK into {_runtime_jdk_dir()}", flush=True)
    _runtime_jdk_dir().mkdir(parents=True, exist_ok=True)
    jdk.install("17", jre=True, path=str(_runtime_jdk_dir()))


def ensure_java() -> Path:
    """Return a Java 17/21 home, provisioning one if needed, and export JAVA_HOME."""
    home = find_java_home()
    if home is None:
        can_apt = hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get")
        installers = [_install_with_apt] if can_apt else []
        installers.append(_install_with_install_jdk)
        for install in installers:
            try:
                install()
            except Exception as exc:  # noqa: BLE001 - try the next way, report all at the end
                print(f"  {install.__name__[1:]} failed: {exc}", file=sys.stderr)
                continue
            home = find_java_home()
            if home is not None:
                break
    if home is None:
        raise RuntimeError(INSTRUCTIONS)
    os.environ["JAVA_HOME"] = str(home)
    return home


if __name__ == "__main__":
    try:
        print(ensure_java())
    except RuntimeError as err:
        sys.exit(str(err))
