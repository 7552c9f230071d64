"""An S3-compatible server for tests: moto's, as its own process on a free loopback port."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

# What every S3 client of the project reads (pyarrow, boto3 for MLflow, Spark's s3a): the
# test's own server and throw-away credentials, never a real account's.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "income-test",
    "AWS_SECRET_ACCESS_KEY": "income-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",  # no instance-metadata probes for credentials
}


@contextmanager
def s3_server() -> Iterator[str]:
    """The endpoint URL of a moto server (`moto_server`, S3 and the rest) until the block ends."""
    from income.platform.valkey_server import free_port

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto_server = Path(sys.executable).with_name("moto_server")
    server = subprocess.Popen(
        [moto_server, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not _answers(endpoint):
            assert server.poll() is None and time.monotonic() < deadline, f"moto did not start on {endpoint}"
            time.sleep(0.2)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=30)


def _answers(endpoint: str) -> bool:
    try:
        return httpx.get(f"{endpoint}/moto-api/", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def new_bucket(endpoint: str) -> str:
    """A fresh, empty bucket on the server; returns its name."""
    import boto3

    name = f"income-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **_keys())
    client.create_bucket(Bucket=name)
    return name


def _keys() -> dict[str, str]:
    return {
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }
