"""Secrets never travel as Ray actor arguments: actors get Settings without them and read their environment."""

import pickle

from cali.config import SECRET_FIELDS, Settings, export_secrets, secret_env, with_secrets, without_secrets

SECRETS = {"aws": {"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCY"},
           "slack": {"webhook_url": "https://hooks.slack.com/services/T0/B0/abcdefSECRET", "bot_token": "xoxb-1-SECRET",
                     "channel": "#alerts"},
           "analysis": {"llm": {"api_key": "sk-proj-SECRETSECRETSECRET", "model": "m"}},
           "index": {"opensearch_password": "os-pass-SECRET"}}


def test_actor_settings_carry_no_secret_and_get_them_back_from_the_environment():
    settings = Settings.model_validate(SECRETS)
    stripped = without_secrets(settings)
    blob = pickle.dumps(stripped)  # what Ray would store as the actor's arguments
    for value in ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI", "abcdefSECRET", "xoxb-1-SECRET", "sk-proj-SECRET",
                  "os-pass-SECRET"):
        assert value.encode() not in blob
    assert stripped.slack.channel == "#alerts" and stripped.analysis.llm.model == "m"
    env: dict[str, str] = {}
    names = export_secrets(settings, env)
    assert sorted(names) == sorted(secret_env(p) for p in SECRET_FIELDS)
    assert env["CALI_ANALYSIS__LLM__API_KEY"] == "sk-proj-SECRETSECRETSECRET"
    restored = with_secrets(stripped, env)
    assert restored.slack.webhook_url.get_secret_value() == SECRETS["slack"]["webhook_url"]
    assert restored.aws.secret_access_key.get_secret_value() == SECRETS["aws"]["secret_access_key"]
    assert restored.analysis.llm.api_key.get_secret_value() == "sk-proj-SECRETSECRETSECRET"


def test_the_environment_variable_names_are_the_settings_own():
    # so a cluster that sets CALI_SLACK__WEBHOOK_URL from its Secret configures driver and actors alike
    assert secret_env(("slack", "webhook_url")) == "CALI_SLACK__WEBHOOK_URL"
    assert Settings(_env_file=None).slack.webhook_url is None


def test_an_existing_environment_value_is_not_overwritten_and_absent_ones_stay_absent():
    env = {"CALI_SLACK__WEBHOOK_URL": "https://hooks.slack.com/services/from/the/cluster"}
    export_secrets(Settings.model_validate(SECRETS), env)
    assert env["CALI_SLACK__WEBHOOK_URL"].endswith("from/the/cluster")
    assert with_secrets(Settings(), {}).slack.webhook_url is None
