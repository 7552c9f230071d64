"""What would be registered on a Flyte cluster, checked offline from `pyflyte package`."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from flyteidl.admin.launch_plan_pb2 import LaunchPlan
from flyteidl.admin.task_pb2 import TaskSpec
from flyteidl.admin.workflow_pb2 import WorkflowSpec
from google.protobuf.json_format import MessageToDict

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
IMAGE = "registry.example/income-ml:test"
FEATURES = "workflows.feature_pipeline.feature_pipeline"
TRAINING = "workflows.training_pipeline.training_pipeline"


def profile(name: str = "cluster") -> dict[str, str]:
    """The settings of deploy/<name>.env."""
    lines = (ROOT / "deploy" / f"{name}.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def spark_sizes(settings: dict[str, str]) -> dict[str, str]:
    """The profile's INCOME_SPARK_* lines, which `make register` reads while registering."""
    return {key: value for key, value in settings.items() if key.startswith("INCOME_SPARK_")}


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> dict[str, list]:
    """Task specs, workflow specs and launch plans from `pyflyte package` with the cluster profile's
    Spark sizes (as `make register PROFILE=deploy/cluster.env` would send them), by kind."""
    out = tmp_path_factory.mktemp("package") / "flyte-package.tgz"
    subprocess.run(
        [BIN / "pyflyte", "--pkgs", "workflows", "package", "--image", IMAGE, "--output", out, "--force"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        env={**os.environ, **spark_sizes(profile())},
    )
    entities: dict[str, list] = {"tasks": [], "workflows": [], "launch_plans": []}
    kinds = {"1": ("tasks", TaskSpec), "2": ("workflows", WorkflowSpec), "3": ("launch_plans", LaunchPlan)}
    with tarfile.open(out) as archive:
        for member in archive.getmembers():
            kind, proto = kinds[member.name.removesuffix(".pb").rsplit("_", 1)[1]]
            entities[kind].append(proto.FromString(archive.extractfile(member).read()))
    return entities


def _tasks(package) -> dict[str, object]:
    return {spec.template.id.name: spec.template for spec in package["tasks"]}


def test_every_workflow_is_packaged(package):
    names = {spec.template.id.name for spec in package["workflows"]}
    assert {FEATURES, TRAINING, "workflows.batch_scoring.batch_scoring"} <= names


def test_spark_step_is_a_spark_task_with_its_configuration(package):
    template = _tasks(package)["tasks.features.build_features"]
    assert template.type == "spark"
    spark_conf = MessageToDict(template.custom)["sparkConf"]
    assert spark_conf["spark.sql.session.timeZone"] == "UTC"


def test_spark_pods_are_sized_by_the_profile(package):
    sizes = spark_sizes(profile())
    assert set(sizes) == {
        f"INCOME_SPARK_{name}"
        for name in (
            "DRIVER_MEMORY",
            "DRIVER_CORES",
            "EXECUTOR_MEMORY",
            "EXECUTOR_CORES",
            "EXECUTOR_INSTANCES",
        )
    }
    spark_templates = [t for t in _tasks(package).values() if t.type == "spark"]
    assert spark_templates
    for template in spark_templates:
        spark_conf = MessageToDict(template.custom)["sparkConf"]
        for key, value in sizes.items():
            spark_key = "spark." + key.removeprefix("INCOME_SPARK_").lower().replace("_", ".", 1)
            assert spark_conf[spark_key] == value, (template.id.name, spark_key)


def test_spark_reaches_object_storage_through_s3a_with_settings_from_the_pods_environment(package):
    """Endpoint and region are `${env.…}` references that Hadoop resolves in each driver and
    executor JVM; no endpoint, key or secret is baked into the registered task."""
    for template in (t for t in _tasks(package).values() if t.type == "spark"):
        hadoop_conf = MessageToDict(template.custom)["hadoopConf"]
        assert (
            hadoop_conf["fs.s3a.impl"]
            == hadoop_conf["fs.s3.impl"]
            == "org.apache.hadoop.fs.s3a.S3AFileSystem"
        )
        assert hadoop_conf["fs.s3a.aws.credentials.provider"].endswith("DefaultCredentialsProvider")
        assert hadoop_conf["fs.s3a.endpoint"] == "${env.AWS_ENDPOINT_URL:-}"
        assert hadoop_conf["fs.s3a.path.style.access"] == "true"
        assert not [k for k in hadoop_conf if "key" in k.lower() or "secret" in k.lower()]


def test_every_profile_names_where_object_storage_is_and_how_spark_is_sized():
    for name in ("cluster", "sandbox"):
        settings = profile(name)
        assert settings["INCOME_OFFLINE_STORE"].startswith("s3://"), name
        assert settings["AWS_REGION"] and spark_sizes(settings), name
        assert not [k for k in settings if k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")], name


def test_training_search_is_a_dynamic_workflow_of_rounds(package):
    workflow = next(s for s in package["workflows"] if s.template.id.name == TRAINING)
    called = [n.task_node.reference_id.name for n in workflow.template.nodes if n.HasField("task_node")]
    assert "workflows.training_pipeline.search" in called


def test_each_search_round_asks_fits_in_parallel_and_tells_before_the_next_asks():
    """The dynamic workflow compiled as Flyte compiles it on a cluster (10 trials: rounds of 4, 4, 2)."""
    from flytekit.configuration import ImageConfig, SerializationSettings
    from flytekit.core.context_manager import ExecutionState, FlyteContextManager
    from flytekit.core.type_engine import TypeEngine

    from income.training.search import SearchConfig
    from tasks.training import TrainingConfig, TrainingSet
    from workflows.training_pipeline import search

    training_set = TrainingSet(
        "s3://b/t.parquet", 10, "0" * 64, "income_v1", ["v:f"], "d", "run", 0.15, 0.15, {}
    )
    inputs = {
        "cfg": TrainingConfig(search=SearchConfig(n_trials=10, round_size=4)),
        "training_set": training_set,
    }
    settings = SerializationSettings(image_config=ImageConfig.auto(img_name=IMAGE))
    with FlyteContextManager.with_context(
        FlyteContextManager.current_context().with_serialization_settings(settings)
    ) as ctx:
        state = ctx.execution_state.with_params(mode=ExecutionState.Mode.TASK_EXECUTION)
        with FlyteContextManager.with_context(ctx.with_execution_state(state)) as ctx:
            hints = {"cfg": TrainingConfig, "training_set": TrainingSet}
            spec = search.dispatch_execute(ctx, TypeEngine.dict_to_literal_map(ctx, inputs, type_hints=hints))

    nodes = {n.id: n for n in spec.nodes}
    kinds = {
        node_id: "map" if n.array_node is not None else n.task_node.reference_id.name.rsplit(".", 1)[1]
        for node_id, n in nodes.items()
    }
    assert list(kinds.values()) == ["ask_trials", "map", "tell_trials"] * 3 + ["gather_trials"]
    for node_id, n in nodes.items():
        if kinds[node_id] == "map":
            array = n.array_node.to_flyte_idl()
            assert array.min_success_ratio == pytest.approx(0.75)
            assert "train_trial" in array.node.task_node.reference_id.name
    ids = list(nodes)
    for round_start in (3, 6):  # each ask waits for the previous round's tell
        assert ids[round_start - 1] in nodes[ids[round_start]].upstream_node_ids


def test_launch_plans_carry_their_schedules(package):
    schedules = {
        lp.id.name: lp.spec.entity_metadata.schedule.cron_schedule.schedule
        for lp in package["launch_plans"]
        if lp.spec.entity_metadata.HasField("schedule")
    }
    assert schedules == {
        "feature_pipeline_daily": "0 2 * * *",
        "training_pipeline_weekly": "0 3 * * 0",
        "batch_scoring_daily": "0 4 * * *",
        "monitoring_hourly": "15 * * * *",
    }


def test_every_task_uses_the_image_and_sets_resources_and_retries(package):
    for name, template in _tasks(package).items():
        if name.endswith("-arraynode"):
            continue
        assert template.container.image == IMAGE, name
        requests = {r.name for r in template.container.resources.requests}
        limits = {r.name for r in template.container.resources.limits}
        assert requests and limits, f"{name} has no resource requests/limits"
        assert template.metadata.timeout.seconds > 0, f"{name} has no timeout"
        if name != "tasks.training.train_trial":  # a failing trial is a result, not retried
            assert template.metadata.retries.retries >= 1, f"{name} has no retries"


def test_tasks_run_the_code_baked_into_the_image_not_a_fast_registered_copy(package):
    """Spark executors get no fast-registered code: every task must run the image's own code."""
    for name, template in _tasks(package).items():
        assert "pyflyte-fast-execute" not in template.container.args, name
    register = (ROOT / "Makefile").read_text().split("\nregister:", 1)[1].split("\n\n", 1)[0]
    assert "pyflyte register workflows --copy none" in register
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert all(
        f"COPY {package}/ {package}/" in dockerfile
        for package in ("income", "spark_jobs", "tasks", "workflows")
    )


def test_the_image_adds_hadoop_aws_of_the_hadoop_version_pyspark_bundles():
    import pyspark

    bundled = sorted(Path(pyspark.__file__).parent.joinpath("jars").glob("hadoop-client-api-*.jar"))
    assert len(bundled) == 1
    hadoop = bundled[0].name.removeprefix("hadoop-client-api-").removesuffix(".jar")
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"ARG HADOOP_VERSION={hadoop}\n" in dockerfile
    assert '"org.apache.hadoop:hadoop-aws:${HADOOP_VERSION}:${HADOOP_AWS_SHA1}"' in dockerfile
    assert "software.amazon.awssdk:bundle:" in dockerfile
    assert "INSTALL httpfs" in dockerfile


@pytest.fixture()
def maven_mirror(tmp_path):
    """A loopback HTTP server laid out like Maven Central, holding one jar: (base URL, its sha1)."""
    import functools
    import hashlib
    import http.server
    import threading

    jar = tmp_path / "repo" / "org" / "example" / "demo" / "1.0" / "demo-1.0.jar"
    jar.parent.mkdir(parents=True)
    jar.write_bytes(b"not really a jar")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=tmp_path / "repo")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", hashlib.sha1(jar.read_bytes()).hexdigest()
    server.shutdown()
    thread.join()


def test_jars_are_kept_only_when_their_checksum_matches(maven_mirror, tmp_path):
    url, sha1 = maven_mirror
    fetch = [ROOT / "docker" / "fetch-jars.sh", tmp_path / "jars"]
    env = {**os.environ, "MAVEN_CENTRAL": url}

    good = subprocess.run([*fetch, f"org.example:demo:1.0:{sha1}"], env=env, capture_output=True, text=True)
    assert good.returncode == 0, good.stderr
    assert (tmp_path / "jars" / "demo-1.0.jar").read_bytes() == b"not really a jar"

    (tmp_path / "jars" / "demo-1.0.jar").unlink()
    bad = subprocess.run(
        [*fetch, f"org.example:demo:1.0:{'0' * 40}"], env=env, capture_output=True, text=True
    )
    assert bad.returncode != 0 and "expected 0000" in bad.stderr
    assert list((tmp_path / "jars").iterdir()) == []  # neither the jar nor its partial download


def test_dockerfile_is_lint_clean():
    result = subprocess.run([BIN / "hadolint", "Dockerfile"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", ["spark-entrypoint.sh", "fetch-jars.sh"])
def test_image_scripts_are_valid_bash(script):
    subprocess.run(["bash", "-n", ROOT / "docker" / script], check=True)


def test_valkey_password_comes_from_a_flyte_secret(package):
    template = _tasks(package)["tasks.features.publish_features"]
    secrets = [(s.group, s.key) for s in template.security_context.secrets]
    assert secrets == [("income", "valkey-password")]
