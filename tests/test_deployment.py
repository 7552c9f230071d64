"""What would be registered on a Flyte cluster, checked offline from `pyflyte package`."""

from __future__ import annotations

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


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> dict[str, list]:
    """Task specs, workflow specs and launch plans from `pyflyte package`, by kind."""
    out = tmp_path_factory.mktemp("package") / "flyte-package.tgz"
    subprocess.run(
        [BIN / "pyflyte", "--pkgs", "workflows", "package", "--image", IMAGE, "--output", out, "--force"],
        cwd=ROOT,
        check=True,
        capture_output=True,
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
    assert "spark.executor.memory" in spark_conf


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


def test_dockerfile_is_lint_clean():
    result = subprocess.run([BIN / "hadolint", "Dockerfile"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_entrypoint_is_valid_bash():
    subprocess.run(["bash", "-n", ROOT / "docker" / "spark-entrypoint.sh"], check=True)


def test_valkey_password_comes_from_a_flyte_secret(package):
    template = _tasks(package)["tasks.features.publish_features"]
    secrets = [(s.group, s.key) for s in template.security_context.secrets]
    assert secrets == [("income", "valkey-password")]
