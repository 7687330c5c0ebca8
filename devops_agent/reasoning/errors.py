"""Why an LLM step failed, in a few stable kinds that records, metrics and the fallback share."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

import openai
from langchain_core.exceptions import (
    ModelConnectionError,
    ModelRateLimitError,
    ModelRefusalError,
    ModelTimeoutError,
    OutputParserException,
)

ErrorKind = Literal[
    "timeout",
    "rate_limit",
    "http_4xx",
    "http_5xx",
    "connection",
    "malformed",
    "invalid",
    "circuit_open",
    "no_target",
    "error",
]
RETRYABLE_STATUS = frozenset({408, 409, 429})
MESSAGE_CAP = 300


class LLMError(Exception):
    """A step of the LLM reasoner failed; `kind` says how, `retryable` whether to try again."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        rejected: list[str] | None = None,
    ) -> None:
        super().__init__(f"{kind}: {message[:MESSAGE_CAP]}")
        self.kind: ErrorKind = kind
        self.retryable = retryable
        self.retry_after = retry_after
        self.rejected = rejected or []


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds the server asked us to wait (`retry-after-ms`, then `retry-after`), if any."""
    if headers is None:
        return None
    try:
        if "retry-after-ms" in headers:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = parsedate_to_datetime(value)
            return max(0.0, (when - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError, OverflowError):
        return None


def classify(exc: BaseException) -> LLMError:
    """Map an exception from the model client to an LLMError (retryable for transient ones)."""
    if isinstance(exc, LLMError):
        return exc
    text = str(exc) or type(exc).__name__
    if isinstance(exc, openai.APITimeoutError | ModelTimeoutError | TimeoutError):
        # Not retried: the deadline is the budget, and the rules reasoner answers at once.
        return LLMError("timeout", text)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        wait = retry_after(exc.response.headers if exc.response is not None else None)
        if status == 429:
            return LLMError("rate_limit", text, retryable=True, retry_after=wait)
        if status >= 500:
            return LLMError("http_5xx", text, retryable=True, retry_after=wait)
        return LLMError("http_4xx", text, retryable=status in RETRYABLE_STATUS, retry_after=wait)
    if isinstance(exc, ModelRateLimitError):
        return LLMError("rate_limit", text, retryable=True)
    if isinstance(exc, openai.APIConnectionError | ModelConnectionError | ConnectionError):
        return LLMError("connection", text, retryable=True)
    if isinstance(
        exc,
        ModelRefusalError
        | OutputParserException
        | openai.LengthFinishReasonError
        | openai.ContentFilterFinishReasonError
        | json.JSONDecodeError
        | ValueError
        | KeyError,
    ):
        return LLMError("malformed", text)
    return LLMError("error", f"{type(exc).__name__}: {text}")
