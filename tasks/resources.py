"""Image, resources and Spark settings shared by the task definitions."""

from __future__ import annotations

import os

from flytekit import ImageSpec, Resources

from income.spark import SPARK_CONF

# The image every task runs in on a cluster (see Dockerfile); locally it is not used.
IMAGE = os.environ.get("INCOME_IMAGE", "localhost:30000/income-ml:latest")
SMALL = Resources(cpu="1", mem="2Gi")
MEDIUM = Resources(cpu="2", mem="4Gi")
__all__ = ["IMAGE", "SMALL", "MEDIUM", "SPARK_CONF", "ImageSpec"]
