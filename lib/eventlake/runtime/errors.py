"""Errors a job reports as one clear line instead of a stack trace (caught in the job's ``main``)."""


class EnvironmentProblem(RuntimeError):
    """The environment cannot run the job (no broker, missing jars, unusable path); the message says the fix."""
