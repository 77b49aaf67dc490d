"""`cali batch run` arguments, the Ray Job's entry point and environment, the DAG's day."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cali.batch.command import days_between
from cali.batch.jobs import REPO_SCRIPT, entrypoint, settings_env
from cali.batch.steps import is_local_ray
from cali.cli import app
from cali.config import Settings, local_settings


def test_days_between_includes_both_ends_and_refuses_a_reversed_range():
    assert days_between(date(2026, 11, 30), date(2026, 12, 2)) == ["2026-11-30", "2026-12-01", "2026-12-02"]
    with pytest.raises(typer.BadParameter):
        days_between(date(2026, 12, 2), date(2026, 11, 30))


@pytest.mark.parametrize("args", [["--from", "2026-11-01"], ["--date", "2026-11-01", "--from", "2026-11-01",
                                                                "--to", "2026-11-02"], ["--date", "26/11/2026"]])
def test_bad_arguments_exit_2(args):
    assert CliRunner().invoke(app, ["batch", "run", *args]).exit_code == 2


def test_entrypoint_is_this_checkout_or_the_setting():
    assert entrypoint(Settings(), "2026-11-26").endswith(f"{REPO_SCRIPT} --date 2026-11-26")
    custom = Settings.model_validate({"batch": {"job_entrypoint": "python /app/jobs/reindex.py --date {date}"}})
    assert entrypoint(custom, "2026-11-26") == "python /app/jobs/reindex.py --date 2026-11-26"


def test_settings_env_round_trips_without_secrets(tmp_path, monkeypatch):
    s = local_settings(kinesis_endpoint="http://127.0.0.1:1", aws_endpoint="http://127.0.0.1:2",
                       state_dir=tmp_path / "state", webhook_url="http://127.0.0.1:3/hook", bucket="b",
                       analysis={"kb_uri": "rel/kb.db"}, batch={"embedder": "hashing", "known_services": ["a"]})
    env = settings_env(s)
    text = json.dumps(env)
    assert "testing" not in text and "127.0.0.1:3/hook" not in text  # no keys, no webhook
    for k in list(os.environ):
        if k.startswith("CALI_"):
            monkeypatch.delenv(k)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("CALI_AWS__ACCESS_KEY_ID", "from-env")
    back = Settings()
    assert back.aws.endpoint_url == "http://127.0.0.1:2" and back.archive.bucket == "b"
    assert back.aws.access_key_id.get_secret_value() == "from-env"
    assert back.batch.known_services == ["a"] and back.batch.embedder == "hashing"
    assert back.analysis.kb_uri == str(Path("rel/kb.db").resolve())  # the job's working directory is not ours


def test_only_loopback_ray_gets_the_settings():
    assert is_local_ray("http://127.0.0.1:8265") and is_local_ray("http://localhost:8265")
    assert not is_local_ray("http://cali-head-svc.cali.svc.cluster.local:8265")


def test_dag_day_is_the_data_interval_start_or_yesterday():
    from cali.batch.dag_support import day_of

    start, end = datetime(2026, 11, 26, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC)
    assert day_of({"data_interval_start": start, "data_interval_end": end}) == "2026-11-26"
    assert day_of({"data_interval_start": end, "data_interval_end": end, "logical_date": end}) == "2026-11-26"
