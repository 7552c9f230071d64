"""How the project's tasks are declared: `task` and `spark_task`, and the resource, retry and
timeout presets they share.

The container image is not set here: `pyflyte register/package --image` gives every task
the project's image (see Dockerfile), and a local `pyflyte run` needs none.
"""

from __future__ import annotations

import functools
from datetime import timedelta

import flytekit
from flytekit import Resources, Secret
from flytekit.deck import DeckField
from flytekitplugins.spark import Spark

from income.platform.spark import HADOOP_CONF, SPARK_CONF
from tasks.execution import own_runtime

SMALL = Resources(cpu="1", mem="2Gi")
MEDIUM = Resources(cpu="2", mem="4Gi")
LARGE = Resources(cpu="2", mem="8Gi")

SHORT = timedelta(minutes=20)
LONG = timedelta(hours=2)

# Tasks that talk to Valkey get its password as a Flyte secret on a cluster (never in code or
# the image); locally VALKEY_PASSWORD from .runtime/env is used instead.
VALKEY_SECRET = Secret(group="income", key="valkey-password", mount_requirement=Secret.MountType.ENV_VAR)

# The Decks a task shows besides its own: not Dependencies, whose `pip freeze` costs about
# 2.4 s per task run (the image's lock file says the same, once).
DECK_FIELDS = (DeckField.SOURCE_CODE, DeckField.TIMELINE, DeckField.INPUT, DeckField.OUTPUT)


def task(fn=None, **options):
    """flytekit's `@task` (same options), the function run through tasks.execution.own_runtime:
    every task of the project is declared with this or with spark_task."""
    if fn is None:
        return functools.partial(task, **options)
    return flytekit.task(own_runtime(fn), **options)


def spark_task(fn):
    """A Spark task with the project's sizing: a session from SPARK_CONF (and HADOOP_CONF's s3a
    settings on a cluster), retried, with a Deck.

    Retrying is safe for every Spark task here: each attempt writes a folder of its own
    (a feature set version, a staged prediction partition) that readers never see half-done.
    """
    return task(
        fn,
        task_config=Spark(spark_conf=SPARK_CONF, hadoop_conf=HADOOP_CONF),
        requests=MEDIUM,
        limits=LARGE,
        timeout=LONG,
        retries=2,
        enable_deck=True,
        deck_fields=DECK_FIELDS,
    )


__all__ = [
    "SMALL",
    "MEDIUM",
    "LARGE",
    "SHORT",
    "LONG",
    "SPARK_CONF",
    "HADOOP_CONF",
    "DECK_FIELDS",
    "VALKEY_SECRET",
    "task",
    "spark_task",
]
