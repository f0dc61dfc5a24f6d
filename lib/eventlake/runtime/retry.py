"""Retrying a table write that failed for a reason that may pass: a concurrent Delta commit, an I/O error."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from eventlake.runtime.config import RetrySettings

T = TypeVar("T")

# Failures worth another attempt, as they appear in the text of Spark's and Delta's exceptions.
TRANSIENT_MARKERS = (
    "ConcurrentAppendException",
    "ConcurrentDeleteReadException",
    "ConcurrentDeleteDeleteException",
    "ConcurrentTransactionException",
    "MetadataChangedException",
    "ProtocolChangedException",
    "DELTA_CONCURRENT",
    "java.io.IOException",
    "java.io.FileNotFoundException",
    "org.apache.hadoop.fs.",
    "TASK_WRITE_FAILED",
)


class RetriesExhausted(RuntimeError):
    """A write failed ``attempts`` times; the last failure is the cause."""


def is_transient(error: BaseException) -> bool:
    """True when ``error`` is a write failure that may pass if tried again (a concurrent commit, an I/O
    error); errors in the data or the code are not."""
    text = f"{type(error).__name__}: {error}"
    return any(marker in text for marker in TRANSIENT_MARKERS)


def backoff_seconds(retry: RetrySettings, attempt: int) -> float:
    """The wait after failed attempt number ``attempt`` (1, 2, ...): doubling from ``initial_backoff``,
    at most ``max_backoff``."""
    initial, ceiling = retry.initial_backoff.total_seconds(), retry.max_backoff.total_seconds()
    return min(ceiling, initial * 2 ** (attempt - 1))


def with_retries(
    action: Callable[[], T],
    retry: RetrySettings,
    what: str,
    log: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``action``; on a transient failure wait and try again, up to ``retry.max_attempts`` in all, then
    raise :class:`RetriesExhausted`. Other failures are raised at once. ``action`` must be idempotent."""
    for attempt in range(1, retry.max_attempts + 1):
        try:
            return action()
        except Exception as error:
            if not is_transient(error):
                raise
            summary = _first_line(error)
            if attempt == retry.max_attempts:
                raise RetriesExhausted(f"{what}: gave up after {attempt} attempts; last error: {summary}") from error
            wait = backoff_seconds(retry, attempt)
            log(
                f"retry: {what} failed (attempt {attempt} of {retry.max_attempts}), "
                f"trying again in {wait:g} s: {summary}"
            )
            sleep(wait)
    raise AssertionError("unreachable: the loop returns or raises")


def _first_line(error: BaseException) -> str:
    """The root cause when the error carries a Java stack trace (its last "Caused by:"), else its first line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    causes = [line.removeprefix("Caused by: ") for line in lines if line.startswith("Caused by: ")]
    return (causes[-1] if causes else lines[0] if lines else type(error).__name__)[:300]
