"""Settings: defaults, parsing, and one clear line for a wrong value."""

from __future__ import annotations

import subprocess
import sys

import pytest

from devops_agent.config import SettingsError, load_settings


def test_defaults_match_the_contract(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    s = load_settings()
    assert (s.api_host, s.api_port, s.environment) == ("127.0.0.1", 8001, "development")
    assert s.safety_mode is True and s.reasoner == "auto" and not s.uses_llm()
    assert s.confidence_threshold == 0.8 and s.auto_approve_max_risk == "low"
    assert s.max_attempts == 2 and s.approval_timeout == 3600 and s.infra_backend == "docker"
    assert s.resolved_database_url == "sqlite+aiosqlite:///data/agent.db"


def test_env_file_and_environment_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("API_PORT=9100\nSAFETY_MODE=false\n")
    monkeypatch.setenv("TARGET_SERVICES", "web=http://127.0.0.1:1/h")
    monkeypatch.setenv("MARKET_PREDICTOR_URL", "http://127.0.0.1:2/health")
    s = load_settings()
    assert s.api_port == 9100 and s.safety_mode is False
    assert s.targets == {
        "web": "http://127.0.0.1:1/h",
        "market-predictor": "http://127.0.0.1:2/health",
    }


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("API_PORT", "eighty", "API_PORT"),
        ("CONFIDENCE_THRESHOLD", "1.5", "CONFIDENCE_THRESHOLD"),
        ("AUTO_APPROVE_MAX_RISK", "extreme", "AUTO_APPROVE_MAX_RISK"),
        ("TARGET_SERVICES", "web", "TARGET_SERVICES"),
        ("DATABASE_URL", "mysql://x", "DATABASE_URL"),
    ],
)
def test_wrong_value_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, words: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert words in str(info.value) and "example" in str(info.value)


def test_production_without_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.delenv("AGENT_API_TOKEN", raising=False)
    with pytest.raises(SettingsError, match="AGENT_API_TOKEN"):
        load_settings()


def test_process_ends_with_one_line_and_no_traceback(tmp_path) -> None:
    payload = tmp_path / "p.json"
    payload.write_text("{}")
    proc = subprocess.run(
        [sys.executable, "-m", "devops_agent", "run-alert", str(payload)],
        env={"PATH": "/usr/bin:/bin", "API_PORT": "eighty", "OPENAI_API_KEY": "sk-secret-value"},
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "API_PORT" in lines[0] and "Traceback" not in proc.stderr
    assert "sk-secret-value" not in proc.stderr + proc.stdout


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NOTIFY_WEBHOOK_URL", "hooks.slack.com/services/T0/B0/XXXX"),
        ("NOTIFY_WEBHOOK_URL", "https://"),
        ("OPENAI_BASE_URL", "127.0.0.1:11434/v1"),
        ("PROMETHEUS_URL", "ftp://127.0.0.1:9090"),
        ("PROMETHEUS_URL", "http://127.0.0.1:port"),
        ("DOCKER_HOST", "/var/run/docker.sock"),
        ("DOCKER_HOST", "unix://"),
        ("DOCKER_HOST", "tcp://:2375"),
    ],
)
def test_malformed_urls_are_refused_without_repeating_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path, name: str, value: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message, _, example = str(info.value).partition(" (example: ")
    assert name in message and example
    assert value not in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NOTIFY_WEBHOOK_URL", "https://hooks.slack.com/services/T0/B0/XXXX"),
        ("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1"),
        ("PROMETHEUS_URL", "http://prometheus:9090"),
        ("DOCKER_HOST", "unix:///var/run/docker.sock"),
        ("DOCKER_HOST", "tcp://10.0.0.5:2376"),
        ("DOCKER_HOST", "ssh://ops@build-host"),
    ],
)
def test_right_urls_are_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path, name: str, value: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(name, value)
    assert getattr(load_settings(), name.lower()) == value


def test_empty_values_count_as_unset(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("OPENAI_API_KEY=\nOPENAI_BASE_URL=\nPOLICY_FILE=\n")
    monkeypatch.setenv("REASONER", "auto")
    monkeypatch.setenv("AUDIT_KEY", "  ")
    s = load_settings()
    assert s.openai_api_key is None and not s.uses_llm()
    assert s.openai_base_url is None and s.policy_file is None and s.audit_key is None


def test_serving_in_production_needs_both_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("AGENT_API_TOKEN", "a" * 32)
    monkeypatch.delenv("WEBHOOK_TOKEN", raising=False)
    assert load_settings().environment == "production"  # run-alert, audit verify
    with pytest.raises(SettingsError, match="WEBHOOK_TOKEN is required"):
        load_settings(serving=True)


def test_postgres_needs_audit_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://agent@db.internal/agent")
    monkeypatch.delenv("AUDIT_KEY", raising=False)
    with pytest.raises(SettingsError, match="AUDIT_KEY"):
        load_settings()
    monkeypatch.setenv("AUDIT_KEY", "k" * 64)
    assert load_settings().audit_key is not None
