"""Retrying a table write that failed for a reason that may pass: a Delta commit conflict, a transient I/O error.

Whether a failure may pass is decided by types, never by the text of a message: the Java exception behind the
Python one (py4j's ``Py4JJavaError``, or pyspark's captured exceptions, which keep it) and its causes, looked at
through the JVM once a write has failed; a write that succeeds costs nothing more than the call. The waiting and
counting are tenacity's.

The jobs retry inside their ``foreachBatch`` functions, where a failed write still raises with its Java exception:
a failure that leaves the function reaches the query as a PythonException whose only trace of it is text.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, TypeVar

from delta.exceptions.base import (
    ConcurrentAppendException,
    ConcurrentDeleteDeleteException,
    ConcurrentDeleteReadException,
    ConcurrentTransactionException,
    ConcurrentWriteException,
    DeltaConcurrentModificationException,
    MetadataChangedException,
    ProtocolChangedException,
)
from py4j.protocol import Py4JError, Py4JJavaError
from pyspark.errors.exceptions.captured import CapturedException
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from eventlake.runtime.config import RetrySettings

T = TypeVar("T")

# Java exceptions, with their subclasses, that say a write may succeed when tried again.
TRANSIENT_JAVA_TYPES = frozenset({
    # Every Delta commit conflict (concurrent append, delete, transaction, metadata or protocol change):
    # another writer committed first, and the write is tried again on the table as it is now.
    "org.apache.spark.sql.delta.DeltaConcurrentModificationException",
    "java.io.IOException",
})
# ... and those that say it will not, though most are I/O errors: a path that is missing or may not be written,
# or a plan that cannot run (a column or a type that does not match the table).
PERMANENT_JAVA_TYPES = frozenset({
    "java.io.FileNotFoundException",
    "java.nio.file.NoSuchFileException",
    "java.nio.file.AccessDeniedException",  # also S3A's answer to a 403
    "org.apache.hadoop.fs.PathNotFoundException",
    "org.apache.hadoop.fs.PathAccessDeniedException",
    "org.apache.hadoop.fs.PathPermissionException",
    "org.apache.hadoop.security.AccessControlException",  # HDFS permissions
    "org.apache.hadoop.fs.UnsupportedFileSystemException",  # no file system for the URI's scheme
    "org.apache.hadoop.fs.s3a.UnknownStoreException",  # no such bucket
    "org.apache.spark.sql.AnalysisException",
})
# Delta's Python client turns its commit conflicts into these, without the Java exception.
DELTA_CONFLICTS = (
    DeltaConcurrentModificationException, ConcurrentWriteException, ConcurrentAppendException,
    ConcurrentDeleteReadException, ConcurrentDeleteDeleteException, ConcurrentTransactionException,
    MetadataChangedException, ProtocolChangedException,
)
# Causes followed at most (a cause chain ends well before; this only guards against a loop).
_MAX_CAUSES = 32


class RetriesExhausted(RuntimeError):
    """A write failed ``attempts`` times; the last failure is the cause."""


def is_transient(error: BaseException) -> bool:
    """True when ``error`` is a write failure that may pass if tried again: a Delta commit conflict or an I/O
    error. The innermost cause of a known kind decides, so an I/O error caused by a permission error is not
    retried, nor are a missing path, an analysis error (a schema mismatch), an error in the code or any other."""
    if isinstance(error, DELTA_CONFLICTS):
        return True
    try:
        kinds = [_kind(_java_class_names(cause)) for cause in _java_causes(error)]
    except Py4JError:  # the JVM cannot tell (it may be gone): not worth another attempt
        return False
    known = [kind for kind in kinds if kind is not None]
    return bool(known) and known[-1] == "transient"


def _java_causes(error: BaseException) -> Iterator[Any]:
    """The Java exception behind ``error`` and its causes, outermost first; nothing for a Python error."""
    if isinstance(error, Py4JJavaError):
        java_exception = error.java_exception
    elif isinstance(error, CapturedException):
        java_exception = error._origin  # where pyspark keeps it (pyspark 4.2 has no public accessor)
    else:
        return
    for _ in range(_MAX_CAUSES):
        if java_exception is None:
            return
        yield java_exception
        java_exception = java_exception.getCause()


def _java_class_names(java_exception: Any) -> set[str]:
    """The names of a Java object's class and all its superclasses."""
    names, java_class = set(), java_exception.getClass()
    while java_class is not None:
        names.add(java_class.getName())
        java_class = java_class.getSuperclass()
    return names


def _kind(class_names: set[str]) -> str | None:
    if class_names & PERMANENT_JAVA_TYPES:  # before transient: most permanent ones are I/O errors too
        return "permanent"
    if class_names & TRANSIENT_JAVA_TYPES:
        return "transient"
    return None


def with_retries(
    action: Callable[[], T],
    retry: RetrySettings,
    what: str,
    log: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``action``; on a failure that may pass (:func:`is_transient`) wait and try again, up to
    ``retry.max_attempts`` in all, then raise :class:`RetriesExhausted`. Other failures are raised at once.
    ``action`` must be idempotent."""

    def announce(state: RetryCallState) -> None:
        log(
            f"retry: {what} failed (attempt {state.attempt_number} of {retry.max_attempts}), "
            f"trying again in {state.upcoming_sleep:g} s: {_first_line(_failure(state))}"
        )

    def give_up(state: RetryCallState) -> NoReturn:
        error = _failure(state)
        raise RetriesExhausted(
            f"{what}: gave up after {state.attempt_number} attempts; last error: {_first_line(error)}"
        ) from error

    retrying = Retrying(
        stop=stop_after_attempt(retry.max_attempts),
        wait=wait_exponential(multiplier=retry.initial_backoff.total_seconds(), max=retry.max_backoff.total_seconds()),
        retry=retry_if_exception(is_transient),
        before_sleep=announce,
        retry_error_callback=give_up,
        sleep=sleep,
    )
    return retrying(action)


def _failure(state: RetryCallState) -> BaseException:
    error = state.outcome.exception() if state.outcome is not None else None
    if error is None:
        raise AssertionError("tenacity calls back after a failed attempt only")
    return error


def _first_line(error: BaseException) -> str:
    """The root cause when the error carries a Java stack trace (its last "Caused by:"), else its first line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    causes = [line.removeprefix("Caused by: ") for line in lines if line.startswith("Caused by: ")]
    return (causes[-1] if causes else lines[0] if lines else type(error).__name__)[:300]
