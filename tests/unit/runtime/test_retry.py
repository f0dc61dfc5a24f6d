"""Which write failures are retried, by the Java exception's type and causes, and how (tenacity)."""

from __future__ import annotations

from datetime import timedelta
from functools import reduce

import pytest

from eventlake.runtime.config import RetrySettings
from eventlake.runtime.retry import RetriesExhausted, is_transient, with_retries

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


def java_exception(spark, class_name: str, message: str, cause=None):
    """A new Java exception of ``class_name`` in the session's JVM, with ``cause`` when given."""
    java_class = reduce(getattr, class_name.split("."), spark.sparkContext._jvm)
    return java_class(message) if cause is None else java_class(message, cause)


def thrown_by_the_jvm(spark, exception, wrapped: bool = True) -> Exception:
    """What Python receives when the JVM throws ``exception`` during a call, the way a failed write reaches
    us: through py4j and pyspark's (and Delta's) handlers. ``wrapped``: inside an ExecutionException, as
    Spark wraps the failure of a task or a thread."""
    jvm = spark.sparkContext._jvm
    try:
        if wrapped:
            jvm.java.util.concurrent.CompletableFuture.failedFuture(exception).get()
        else:
            jvm.scala.util.Failure(exception).get()  # throws the exception itself
    except Exception as error:
        return error
    raise AssertionError("the JVM threw nothing")


def io_error(spark, message: str = "Mkdirs failed to create /t") -> Exception:
    return thrown_by_the_jvm(spark, java_exception(spark, "java.io.IOException", message))


def test_a_transient_failure_is_retried_with_backoff_doubling_up_to_the_ceiling(spark):
    write, waits, logged = FailingWrite(3, io_error(spark)), [], []
    assert with_retries(write, RETRY, "writing batch 3", log=logged.append, sleep=waits.append) == "written"
    assert (write.calls, waits) == (4, [1, 2, 3])
    assert logged[0].startswith("retry: writing batch 3 failed (attempt 1 of 4), trying again in 1 s: ")
    assert logged[2].startswith("retry: writing batch 3 failed (attempt 3 of 4), trying again in 3 s: ")


def test_retries_end_loudly_at_the_limit(spark):
    error = io_error(spark)
    write, waits = FailingWrite(10, error), []
    with pytest.raises(RetriesExhausted, match="writing batch 3: gave up after 4 attempts; last error: ") as ended:
        with_retries(write, RETRY, "writing batch 3", log=lambda _: None, sleep=waits.append)
    assert (write.calls, waits) == (4, [1, 2, 3])
    assert ended.value.__cause__ is error


def test_a_write_that_succeeds_runs_once_and_nothing_else_happens():
    # No session here: the success path never reaches the JVM.
    logged, waits = [], []
    assert with_retries(lambda: "written", RETRY, "writing", log=logged.append, sleep=waits.append) == "written"
    assert (logged, waits) == ([], [])


def test_the_log_names_the_root_cause_of_a_java_error(spark):
    in_the_way = java_exception(
        spark, "org.apache.hadoop.fs.FileAlreadyExistsException", "Destination exists and is not a directory: /t/d"
    )
    task_failed = java_exception(spark, "org.apache.spark.SparkException", "[TASK_WRITE_FAILED] Task", in_the_way)
    write, logged = FailingWrite(1, thrown_by_the_jvm(spark, task_failed)), []
    with_retries(write, RETRY, "writing", log=logged.append, sleep=lambda _: None)
    assert logged == [
        "retry: writing failed (attempt 1 of 4), trying again in 1 s: "
        "org.apache.hadoop.fs.FileAlreadyExistsException: Destination exists and is not a directory: /t/d"
    ]


@pytest.mark.parametrize(
    "class_name",
    [
        # Delta's commit conflicts: another writer committed first; the write is tried again on the new version.
        "io.delta.exceptions.ConcurrentAppendException",
        "io.delta.exceptions.ConcurrentDeleteReadException",
        "io.delta.exceptions.ConcurrentDeleteDeleteException",
        "io.delta.exceptions.ConcurrentTransactionException",
        "io.delta.exceptions.MetadataChangedException",
        "io.delta.exceptions.ProtocolChangedException",
        # I/O that may pass: a lost connection, a file in the way that an operator removes.
        "java.io.IOException",
        "java.net.SocketTimeoutException",
        "org.apache.hadoop.fs.FileAlreadyExistsException",
        "org.apache.hadoop.fs.ParentNotDirectoryException",
    ],
)
@pytest.mark.parametrize("wrapped", [False, True], ids=["thrown", "as-a-cause"])
def test_commit_conflicts_and_io_errors_are_retried(spark, class_name, wrapped):
    error = thrown_by_the_jvm(spark, java_exception(spark, class_name, "a failure"), wrapped)
    write = FailingWrite(2, error)
    assert is_transient(error)
    assert with_retries(write, RETRY, "writing", log=lambda _: None, sleep=lambda _: None) == "written"
    assert write.calls == 3


@pytest.mark.parametrize(
    "class_name",
    [
        "java.io.FileNotFoundException",  # a missing folder or file
        "java.nio.file.NoSuchFileException",
        "java.nio.file.AccessDeniedException",  # no permission (S3A raises it for a 403)
        "org.apache.hadoop.security.AccessControlException",  # no permission on HDFS
        "org.apache.hadoop.fs.PathNotFoundException",
        "org.apache.hadoop.fs.UnsupportedFileSystemException",  # no file system for the URI's scheme
    ],
)
@pytest.mark.parametrize("wrapped", [False, True], ids=["thrown", "as-a-cause"])
def test_missing_paths_and_permission_errors_are_raised_after_one_attempt(spark, class_name, wrapped):
    error = thrown_by_the_jvm(spark, java_exception(spark, class_name, "/t/d"), wrapped)
    write = FailingWrite(1, error)
    with pytest.raises(type(error)) as raised:
        with_retries(write, RETRY, "writing", log=lambda _: None, sleep=lambda _: None)
    assert raised.value is error and write.calls == 1


def test_an_io_error_caused_by_a_permission_error_is_not_retried(spark):
    denied = java_exception(spark, "java.nio.file.AccessDeniedException", "s3a://bucket/t")
    error = thrown_by_the_jvm(spark, java_exception(spark, "java.io.IOException", "write failed", denied))
    assert not is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        ValueError("a bug"),
        # Text is not a type: an error that only mentions a retried exception is not retried.
        RuntimeError("An error occurred while calling o91.save.\n: java.io.IOException: Mkdirs failed to create /t"),
        RuntimeError("[DELTA_CONCURRENT_APPEND] ConcurrentAppendException"),
    ],
)
def test_python_errors_are_not_retried(error):
    write = FailingWrite(1, error)
    with pytest.raises(type(error)):
        with_retries(write, RETRY, "writing", log=lambda _: None, sleep=lambda _: None)
    assert write.calls == 1


def test_other_java_errors_are_not_retried(spark):
    error = thrown_by_the_jvm(spark, java_exception(spark, "java.lang.IllegalStateException", "a bug"), wrapped=False)
    assert not is_transient(error)
