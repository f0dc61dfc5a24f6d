from __future__ import annotations

from datetime import timedelta

import pytest

from eventlake.runtime.config import RetrySettings
from eventlake.runtime.retry import RetriesExhausted, backoff_seconds, is_transient, with_retries

RETRY = RetrySettings(max_attempts=4, initial_backoff=timedelta(seconds=1), max_backoff=timedelta(seconds=3))


class FailingWrite:
    """A write that fails ``failures`` times with ``error``, then succeeds."""

    def __init__(self, failures: int, error: Exception):
        self.failures, self.error, self.calls = failures, error, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "written"


IO_ERROR = RuntimeError("An error occurred while calling o91.save.\n: java.io.IOException: Mkdirs failed to create /t")


def test_backoff_doubles_up_to_the_ceiling():
    assert [backoff_seconds(RETRY, attempt) for attempt in (1, 2, 3, 4)] == [1, 2, 3, 3]


def test_a_transient_failure_is_retried_with_backoff():
    write, waits, logged = FailingWrite(2, IO_ERROR), [], []
    assert with_retries(write, RETRY, "writing batch 3", log=logged.append, sleep=waits.append) == "written"
    assert (write.calls, waits) == (3, [1, 2])
    assert logged[0].startswith("retry: writing batch 3 failed (attempt 1 of 4), trying again in 1 s: ")


def test_retries_end_loudly_at_the_limit():
    write, waits = FailingWrite(10, IO_ERROR), []
    with pytest.raises(RetriesExhausted, match="writing batch 3: gave up after 4 attempts; last error: An error"):
        with_retries(write, RETRY, "writing batch 3", log=lambda _: None, sleep=waits.append)
    assert (write.calls, waits) == (4, [1, 2, 3])


def test_the_log_names_the_root_cause_of_a_java_error():
    error = RuntimeError(
        "An error occurred while calling o1886.execute.\n"
        ": org.apache.spark.SparkException: [TASK_WRITE_FAILED] Task failed\n"
        "\tat org.apache.spark.Foo(Foo.scala:1)\n"
        "Caused by: org.apache.spark.SparkException: [TASK_WRITE_FAILED] again\n"
        "Caused by: org.apache.hadoop.fs.FileAlreadyExistsException: Destination exists and is not a directory: /t/d\n"
    )
    logged = []
    with_retries(FailingWrite(1, error), RETRY, "writing", log=logged.append, sleep=lambda _: None)
    assert logged == [
        "retry: writing failed (attempt 1 of 4), trying again in 1 s: "
        "org.apache.hadoop.fs.FileAlreadyExistsException: Destination exists and is not a directory: /t/d"
    ]


def test_other_failures_are_not_retried():
    write = FailingWrite(1, ValueError("a bug"))
    with pytest.raises(ValueError, match="a bug"):
        with_retries(write, RETRY, "writing", log=lambda _: None, sleep=lambda _: None)
    assert write.calls == 1


@pytest.mark.parametrize(
    "text, transient",
    [
        ("io.delta.exceptions.ConcurrentAppendException: Files were added to partition [d=1]", True),
        ("[DELTA_CONCURRENT_APPEND] ConcurrentAppendException", True),
        ("org.apache.hadoop.fs.ParentNotDirectoryException: /t/d is not a directory", True),
        ("[UNRESOLVED_COLUMN.WITH_SUGGESTION] A column cannot be resolved", False),
    ],
)
def test_which_failures_are_transient(text, transient):
    assert is_transient(RuntimeError(text)) is transient
