#!/usr/bin/env bash
# Container entrypoint: the driver/executor dispatch of Spark's Kubernetes image
# (resource-managers/kubernetes/docker/.../entrypoint.sh), reduced to what this image needs;
# every other command (pyflyte-execute, python -m serving) is executed as given.
set -euo pipefail

SPARK_CLASSPATH="${SPARK_CLASSPATH:-}:${SPARK_HOME}/jars/*"
mapfile -t SPARK_EXECUTOR_JAVA_OPTS < <(env | grep '^SPARK_JAVA_OPT_' | sort -t_ -k4 -n | sed 's/[^=]*=\(.*\)/\1/g')

case "${1:-}" in
  driver)
    shift
    CMD=("${SPARK_HOME}/bin/spark-submit"
      --conf "spark.driver.bindAddress=${SPARK_DRIVER_BIND_ADDRESS}"
      --conf "spark.executorEnv.SPARK_DRIVER_POD_IP=${SPARK_DRIVER_BIND_ADDRESS}"
      --deploy-mode client "$@")
    ;;
  executor)
    shift
    CMD=("${JAVA_HOME}/bin/java" "${SPARK_EXECUTOR_JAVA_OPTS[@]}"
      "-Xms${SPARK_EXECUTOR_MEMORY}" "-Xmx${SPARK_EXECUTOR_MEMORY}"
      -cp "${SPARK_CLASSPATH}:${SPARK_DIST_CLASSPATH:-}"
      org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend
      --driver-url "${SPARK_DRIVER_URL}" --executor-id "${SPARK_EXECUTOR_ID}"
      --cores "${SPARK_EXECUTOR_CORES}" --app-id "${SPARK_APPLICATION_ID}"
      --hostname "${SPARK_EXECUTOR_POD_IP}" --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID}"
      --podName "${SPARK_EXECUTOR_POD_NAME}")
    ;;
  *)
    CMD=("$@")
    ;;
esac

exec /usr/bin/tini -s -- "${CMD[@]}"
