"""The Airflow DAG: it imports cleanly, and a full dag.test() runs against moto S3, Milvus Lite, a local Ray
(the reindex submitted as a Ray Job through its dashboard) and the loopback Slack webhook.

Airflow reads AIRFLOW_HOME when it is imported, so each check runs in its own Python process with a
temporary AIRFLOW_HOME; the AWS connection is AIRFLOW_CONN_AWS_DEFAULT with its endpoint_url.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from cali.stack.config import repo_root
from tests.integration.conftest import LOCAL_SECRETS_ENV
from tests.support import needs

pytestmark = pytest.mark.integration
REPO = repo_root()
DAY = "2026-11-26"


@pytest.fixture(scope="module", autouse=True)
def _airflow():
    needs.module("airflow", "Airflow is not installed: pip install -e '.[airflow]' (make test does)")
    needs.module("airflow.providers.amazon", "apache-airflow-providers-amazon is not installed: "
                 "pip install -e '.[airflow]'")


def run_py(code: str, env: dict[str, str], timeout: float = 600) -> dict:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)
    if os.environ.get("CALI_TEST_LOG"):  # a file to keep the Airflow run's whole output in, to debug it
        Path(os.environ["CALI_TEST_LOG"]).write_text(proc.stdout + "\n---\n" + proc.stderr)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"exit {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
    return json.loads(lines[-1][len("RESULT "):])


def airflow_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CALI_"))}
    env |= {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"), "GX_ANALYTICS_ENABLED": "false",
            "PYTHONPATH": os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    return env | extra


def test_the_dag_imports_cleanly(tmp_path):
    result = run_py(f"""
        import json
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder={str(REPO / 'dags')!r})
        dag = bag.dags["cali_daily"]
        tasks = {{t.task_id: [t.retries, t.execution_timeout.total_seconds() if t.execution_timeout else None,
                              sorted(t.upstream_task_ids)] for t in dag.tasks}}
        print("RESULT " + json.dumps({{"errors": {{k: str(v) for k, v in bag.import_errors.items()}},
                                       "dags": sorted(bag.dag_ids), "schedule": dag.timetable.description,
                                       "tasks": tasks}}))
    """, airflow_env(tmp_path / "airflow"))
    assert result["errors"] == {} and result["dags"] == ["cali_daily"]
    tasks = result["tasks"]
    assert set(tasks) == {"check_archive", "alert_on_quality_failure", "reindex", "write_report"}
    assert all(retries >= 1 and timeout for retries, timeout, _ in tasks.values())
    assert tasks["write_report"][2] == ["alert_on_quality_failure", "check_archive", "reindex"]
    assert tasks["reindex"][2] == ["check_archive"] and result["schedule"] == "At 00:00"


@pytest.fixture
def ray_with_dashboard(tmp_path):
    from tests.support.ray_cluster import local_ray_cluster

    # The job's driver inherits the cluster's environment: the local stack's dummy keys, as a pod's Secret.
    with local_ray_cluster(tmp_path / "ray.log", env=dict(os.environ) | LOCAL_SECRETS_ENV) as cluster:
        yield cluster["dashboard"]


@pytest.mark.timeout(1500)
def test_dag_test_runs_every_task_against_the_local_stack(stack, aws_clients, tmp_path, ray_with_dashboard):
    from cali.batch.synth import write_day
    from cali.notify.local_receiver import LocalSlack

    s3 = aws_clients["s3"]
    bucket = f"dag-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)

    def defects(i, row):
        return row | {"level": "LOUD"} if i in (7, 8) else None

    write_day(lambda k, b: s3.put_object(Bucket=bucket, Key=k, Body=b), DAY, 6000, seed=5, defects=defects)
    conn = {"conn_type": "aws", "login": "testing", "password": "testing",
            "extra": {"endpoint_url": stack.aws_endpoint, "region_name": stack.region}}
    with LocalSlack().start() as slack:
        env = airflow_env(tmp_path / "airflow", AIRFLOW_CONN_AWS_DEFAULT=json.dumps(conn),
                          AIRFLOW_VAR_CALI_RAY_ADDRESS=ray_with_dashboard,
                          CALI_ARCHIVE__BUCKET=bucket, CALI_STATE__SQLITE_DIR=str(tmp_path / "state"),
                          CALI_SLACK__WEBHOOK_URL=slack.url, CALI_KINESIS__STREAM=f"s-{uuid.uuid4().hex[:6]}",
                          CALI_ANALYSIS__KB_URI=str(tmp_path / "kb.db"), CALI_BATCH__EMBEDDER="hashing",
                          CALI_ANALYSIS__APP_NAME="no-serve-here")
        migrate = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True,
                                 text=True, timeout=600, cwd=REPO)
        assert migrate.returncode == 0, migrate.stderr[-4000:]
        result = run_py(f"""
            import json
            from datetime import datetime, UTC
            from airflow.dag_processing.dagbag import DagBag
            dag = DagBag(dag_folder={str(REPO / "dags")!r}).dags["cali_daily"]
            run = dag.test(logical_date=datetime(2026, 11, 27, tzinfo=UTC))  # interval [26th, 27th)
            print("RESULT " + json.dumps({{"state": str(run.state),
                                           "tasks": {{ti.task_id: str(ti.state) for ti in run.get_task_instances()}}}}))
        """, env, timeout=900)
        messages = slack.messages()
    assert result["state"].endswith("success"), result
    assert set(result["tasks"].values()) == {"success"}
    report = json.loads(s3.get_object(Bucket=bucket, Key=f"reports/dt={DAY}/report.json")["Body"].read())
    checks = {c["check"]: c for c in report["quality"]["checks"]}
    assert checks["level is in the allowed set"]["unexpected_count"] == 2 and report["quality_failures"] == 1
    assert report["learned"] > 0 and report["knowledge"]["via"].endswith("kb.db")
    assert len(messages) == 1 and "Data quality failed" in json.dumps(messages[0])
    s3.head_object(Bucket=bucket, Key=f"reports/dt={DAY}/report.html")
