"""devops_agent.redact against the corpus of real-looking secrets and near misses."""

from __future__ import annotations

import io
import json
import logging

import pytest

from devops_agent.redact import MASK, redact, redact_data, redact_lines, secret_name
from devops_agent.server.main import RedactingFilter, install_log_redaction
from devops_agent.tools.fake import FakeBackend, FakeService
from devops_agent.tools.logs import error_lines, split_lines
from devops_agent.tools.registry import Registry
from tests.support.secrets import KEYS, NEAR_MISSES, SECRETS, body_lines

MIB = 1 << 20


def test_the_corpus_is_large_enough() -> None:
    assert len(SECRETS) + len(KEYS) >= 40 and len(NEAR_MISSES) >= 40


@pytest.mark.parametrize(("line", "secrets"), SECRETS, ids=[s[0][:40] for s in SECRETS])
def test_each_secret_is_masked_and_the_rest_of_its_line_stays(
    line: str, secrets: list[str]
) -> None:
    masked = redact(line)
    assert MASK in masked
    for secret in secrets:
        assert secret not in masked
    assert redact(masked) == masked  # masking twice changes nothing
    # What is not secret stays, so the model still reads the line: its first word, at least.
    assert masked.split()[0][:3] == line.split()[0][:3]


@pytest.mark.parametrize("line", NEAR_MISSES)
def test_near_misses_stay_untouched(line: str) -> None:
    assert redact(line) == line


def test_the_names_that_hold_secrets() -> None:
    # The bug of issue 21: `\b` before PASSWORD never matched after `_`.
    assert redact("DB_PASSWORD=hunter2x") == "DB_PASSWORD=***"
    assert redact("POSTGRES_PASSWORD: hunter2x") == "POSTGRES_PASSWORD: ***"
    for name in ("DB_PASSWORD", "dbPassword", "API_KEY", "apiKey", "x-api-key", "MYSQL_PWD"):
        assert secret_name(name) == "strong", name
    for name in ("AWS_SECRET_ACCESS_KEY", "client_secret", "GITHUB_TOKEN", "credentials"):
        assert secret_name(name) == "strong", name
    for name in ("password_policy", "token_count", "max_tokens", "monkey", "keyboard", "PASS"):
        assert secret_name(name) is None, name
    assert secret_name("cache_key") == secret_name("session") == "weak"
    # Weak names: a random value is masked, a word is not.
    assert redact("cache_key=user:42") == "cache_key=user:42"
    assert redact("cache_key=Qm9aT3xK7pL2wR8vZ5nY") == "cache_key=***"


@pytest.mark.parametrize("key", KEYS, ids=[k.splitlines()[0] for k in KEYS])
def test_a_pem_block_is_masked_whole_in_text_and_in_lines(key: str) -> None:
    secret = body_lines(key)
    for masked in (redact(key), "\n".join(redact_lines(key.splitlines()))):
        assert not any(line in masked for line in secret)
        assert masked.splitlines()[0] == key.splitlines()[0]  # the marker says what it was
        assert masked.splitlines()[-1] == key.splitlines()[-1]
    # As JSON keeps it (escaped newlines, one line), and with a timestamp before every line.
    one_line = json.dumps({"key": key})
    assert not any(line in redact(one_line) for line in secret)
    stamped = [
        f"2025-06-01T10:00:0{i % 10}Z app[7]: {line}" for i, line in enumerate(key.split("\n"))
    ]
    assert not any(line in "\n".join(redact_lines(stamped)) for line in secret)


@pytest.mark.parametrize("key", KEYS, ids=[k.splitlines()[0] for k in KEYS])
def test_a_pem_block_cut_in_two_is_masked_and_its_neighbours_kept(key: str) -> None:
    """A tail of 20 lines may start inside a block (no BEGIN) or end inside it (no END)."""
    lines = key.splitlines()
    secret = body_lines(key)
    for cut in range(1, len(lines)):
        for part in (lines[cut:], lines[:cut]):
            masked = redact_lines(["info: before", *part, "info: after"])
            assert not any(line in masked for line in secret), (cut, masked)
            assert masked[0] == "info: before" and masked[-1] == "info: after"


def test_log_lines_are_masked_before_error_lines_are_picked() -> None:
    """A key's body line may hold `oom` or `fail`: picked alone, it would have no markers."""
    key = KEYS[0].splitlines()
    text = "\n".join(["info: loading key", *key[:2], key[2] + "oomfail", *key[3:], "panic: boom"])
    lines = split_lines(text, 200)
    assert not any(line in "\n".join(lines) for line in body_lines(KEYS[0]))
    assert error_lines(lines) == ["panic: boom"]


def test_structured_data_is_masked_by_its_keys_and_its_lines() -> None:
    data = {
        "password": "hunter2x",
        "headers": {"Authorization": "Bearer abc", "Cookie": "sid=1", "Accept": "*/*"},
        "token_count": 12,
        "max_tokens": 2000,
        "pin": 1234,  # a weak name with a value that does not look random: kept
        "tail": KEYS[1].splitlines(),
        "nested": [{"api_key": "k-1"}, "DB_PASSWORD=zz9Yx", 3, None, True],
        "ok": True,
    }
    masked = redact_data(data)
    assert masked["password"] == MASK and masked["headers"]["Authorization"] == MASK
    assert masked["headers"]["Cookie"] == MASK and masked["headers"]["Accept"] == "*/*"
    assert masked["token_count"] == 12 and masked["max_tokens"] == 2000 and masked["pin"] == 1234
    assert masked["nested"] == [{"api_key": MASK}, "DB_PASSWORD=***", 3, None, True]
    assert masked["tail"][0] == KEYS[1].splitlines()[0] and set(masked["tail"][1:-1]) == {MASK}
    assert masked["ok"] is True
    assert data["password"] == "hunter2x"  # a copy: the input is not changed


async def test_the_registry_masks_what_an_operation_returns() -> None:
    lines = [line for line, _ in SECRETS] + KEYS[0].splitlines() + ["panic: boom"]
    registry = Registry(FakeBackend([FakeService("web", logs=lines)]))
    result = await registry.run("get_logs", {"target": "web", "lines": 5000})
    text = json.dumps(result.model_dump())
    assert result.ok and "panic: boom" in text
    assert not [secret for _, secrets in SECRETS for secret in secrets if secret in text]
    assert not any(line in text for line in body_lines(KEYS[0]))


def test_the_log_filter_masks_arguments_and_tracebacks() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("test_redact.filter")
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    install_log_redaction(logger)
    install_log_redaction(logger)  # once only
    assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
    try:
        logger.warning(
            "connecting to %s with %s", "postgres://app:Zx81kfPq2@db/app", "token=abc123"
        )
        try:
            raise ValueError("bad DB_PASSWORD=wOkeg9xvYWM7fv")
        except ValueError:
            logger.exception("start failed for %r", {"api_key": "slZ#y1DDJAcvzg"})
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert "postgres://app:***@db/app" in out and "token=***" in out
    assert "Zx81kfPq2" not in out and "abc123" not in out
    assert "wOkeg9xvYWM7fv" not in out and "slZ#y1DDJAcvzg" not in out
    assert "Traceback" in out and "DB_PASSWORD=***" in out


@pytest.mark.parametrize(
    "text",
    [
        "a=" * (MIB // 2),
        'a="' * (MIB // 3),
        "password: '" * (MIB // 11),
        "key: " * (MIB // 5),
        "x://" * (MIB // 4),
        "http://a:" + "b@" * (MIB // 2),
        "basic " + "A" * MIB,
        "eyJ" + "a" * MIB,
        "-----BEGIN A-----\n" * (MIB // 18),
        "-----END A-----\n" * (MIB // 16),
        "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB9aZ+\n" * (MIB // 53),
        "Authorization: " * (MIB // 15),
        "a" * MIB,
    ],
    ids=lambda text: repr(text[:12]),
)
def test_adversarial_input_of_a_mebibyte_finishes(text: str) -> None:
    """Linear patterns: each of these ends (bench/redaction.py prints how fast); a pattern that
    backtracks would not end within the suite's lifetime on 1 MiB."""
    assert isinstance(redact(text), str)
