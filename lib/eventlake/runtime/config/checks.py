"""Checks of a loaded config that need no Spark: each mistake a :class:`ConfigError` naming its key."""

from __future__ import annotations

import re
import typing
from datetime import timedelta

from eventlake.runtime.config.sections import AlertsSettings, EtlSettings, Expectation
from eventlake.runtime.config.settings import Settings
from eventlake.runtime.config.values import ConfigError, parse_duration

# The contract versions and formats the code can read (eventlake.pipeline.contract); kept here so a config naming
# another one fails at load time, before any Spark work.
KNOWN_SCHEMA_VERSIONS = ("1", "2")
KNOWN_EXTRACTORS = ("json", "kv")


def check_trigger(key: str, trigger: str, named: typing.Sequence[str] = ("availableNow",)) -> None:
    """A trigger is one of ``named`` or an interval; a ConfigError naming ``key`` otherwise.

    Example::

        check_trigger("alerts.trigger", "realTime", ("realTime", "availableNow"))
    """
    if trigger not in named:
        try:
            parse_duration(trigger)
        except ValueError:
            choices = " or ".join(f"'{name}'" for name in named)
            raise ConfigError(f"{key} must be {choices} or an interval like '30 seconds', got {trigger!r}") from None


def _check_choices(key: str, values: typing.Iterable[str], known: typing.Sequence[str]) -> None:
    for value in values:
        if value not in known:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(known)}")


SILVER_DEDUP_MODES = ("merge", "state")
EXPECTATION_ACTIONS = ("warn", "drop", "quarantine", "fail")


def check_expectations(key: str, expectations: typing.Sequence[Expectation]) -> None:
    """Each expectation named once (letters, digits, ``_``), with a rule and a known action.

    Example::

        check_expectations("gold.expectations", [Expectation("positive_amount", "amount > 0", "drop")])
    """
    _check_named_rules(
        key, expectations, "expectations", (r"[A-Za-z][A-Za-z0-9_]*", "a letter, then letters, digits or '_'"),
        condition="rule", choice=("action", EXPECTATION_ACTIONS),
    )


def _check_named_rules(
    key: str,
    rules: typing.Sequence[typing.Any],
    kind: str,
    name: tuple[str, str],
    *,
    condition: str,
    choice: tuple[str, typing.Sequence[str]],
) -> None:
    """Rules of one list (expectations, alert rules): each named once as ``name`` (a pattern and its words) says,
    with a non-empty ``condition`` field and a ``choice`` field among the choices."""
    pattern, in_words = name
    names = [rule.name for rule in rules]
    for rule in rules:
        if not re.fullmatch(pattern, rule.name):
            raise ConfigError(f"{key}: the name {rule.name!r} must be {in_words}")
        if names.count(rule.name) > 1:
            raise ConfigError(f"{key}: two {kind} are named {rule.name!r}")
        if not getattr(rule, condition).strip():
            raise ConfigError(f"{key}.{rule.name}.{condition} is empty")
        _check_choices(f"{key}.{rule.name}.{choice[0]}", [getattr(rule, choice[0])], choice[1])


def _check_etl(etl: EtlSettings) -> None:
    check_trigger("etl.trigger", etl.trigger)
    check_expectations("etl.expectations", etl.expectations)
    if etl.expectations and etl.silver_dedup != "merge":
        raise ConfigError("etl.expectations run in the ingest query of etl.silver_dedup = 'merge', not with 'state'")
    _check_choices("etl.enrich.on_miss", [etl.enrich.on_miss], ("keep", "dead_letter"))
    if len(set(etl.transforms)) != len(etl.transforms):
        raise ConfigError(f"etl.transforms names a stage twice: {', '.join(etl.transforms)}")
    if etl.silver_dedup_days < 0:
        raise ConfigError("etl.silver_dedup_days must be 0 (the same event day only) or more")
    _check_choices("etl.silver_dedup", [etl.silver_dedup], SILVER_DEDUP_MODES)
    if etl.silver_dedup_within <= timedelta(0):
        raise ConfigError("etl.silver_dedup_within must be a positive duration, e.g. '1 hour'")


ALERT_SEVERITIES = ("low", "medium", "high", "critical")
# Spark's smallest Real-Time Mode batch (spark.sql.streaming.realTimeMode.minBatchDuration).
MIN_REAL_TIME_INTERVAL = timedelta(seconds=5)


def _check_alerts(alerts: AlertsSettings) -> None:
    check_trigger("alerts.trigger", alerts.trigger, ("realTime", "availableNow"))
    if alerts.trigger == "realTime" and alerts.checkpoint_interval < MIN_REAL_TIME_INTERVAL:
        raise ConfigError("alerts.checkpoint_interval must be at least 5 seconds (Spark's smallest Real-Time batch)")
    check_trigger("alerts.copy_trigger", alerts.copy_trigger)
    if not alerts.topic or not alerts.dead_letters_topic or alerts.topic == alerts.dead_letters_topic:
        raise ConfigError("alerts.topic and alerts.dead_letters_topic must be two different topic names")
    _check_named_rules(
        "alerts.rules", alerts.rules, "rules", (r"[A-Za-z0-9_.-]+", "letters, digits, '_', '.' or '-'"),
        condition="when", choice=("severity", ALERT_SEVERITIES),
    )


# Functions of Spark SQL that reach outside the rows: the JVM (any static Java method, System.getenv included) and
# the files of the machine. Config SQL is data, often edited by others than the job's owner; none of it needs these.
FUNCTIONS_OUTSIDE_THE_DATA = ("reflect", "java_method", "try_reflect", "read_files")
# What SQL allows between a name and its parenthesis: blanks and comments (a comment is never taken out of the text
# first: one inside a string literal would hide what follows it).
_GAP = r"(?:\s|/\*.*?\*/|--[^\n]*(?:\n|$))*"
_CALL = re.compile(r"(?<!\w)(" + "|".join(FUNCTIONS_OUTSIDE_THE_DATA) + r")" + _GAP + r"\(", re.IGNORECASE | re.DOTALL)
# A file read as a table: parquet.`/path`, csv.`s3a://...`, text.`...`.
_FILE_TABLE = re.compile(
    r"(?<!\w)(parquet|csv|json|orc|text|binaryfile|avro|delta)" + _GAP + r"\." + _GAP + "`", re.IGNORECASE | re.DOTALL
)
_QUERY = re.compile(_GAP + r"[(\s]*(select|with)\b", re.IGNORECASE | re.DOTALL)


def sql_problem(key: str, text: str, *, statement: bool = False) -> str | None:
    """Why the config SQL ``text`` at ``key`` may not run, or None: it calls a function that reaches outside the
    data (:data:`FUNCTIONS_OUTSIDE_THE_DATA`; written in backquotes, qualified or with comments before its
    parenthesis too), reads a file as a table, or (a ``statement``) is not one query. A string literal that
    spells such a call is refused as well: the check reads text, not a parsed plan.

    Example::

        sql_problem("gold.columns.home", "reflect('java.lang.System', 'getenv', 'HOME')")
        # "gold.columns.home: calls reflect, which reaches outside the data (the JVM, the machine's files) ..."
    """
    unquoted = text.replace("`", " ")
    if call := _CALL.search(unquoted):
        return (
            f"{key}: calls {call.group(1).lower()}, which reaches outside the data (the JVM, the machine's files);"
            " config SQL may use the rows' columns and Spark's other functions only"
        )
    if file := _FILE_TABLE.search(text):
        return f"{key}: reads a file as a table ({file.group(1)}.`...`); config SQL may read the job's own rows only"
    if statement and not _QUERY.match(text):
        return f"{key}: must be one query (SELECT ... or WITH ...), got {text.strip().split()[0]!r}"
    return None


def config_sql(settings: Settings) -> list[tuple[str, str, bool]]:
    """Every piece of SQL a config holds, as (key, text, is a statement): what jobs turn into Spark expressions.

    Example::

        [key for key, _, _ in config_sql(settings)]  # ["alerts.rules.large_purchase.when", ...]
    """
    gold, etl = settings.gold, settings.etl
    pieces = [(f"alerts.rules.{rule.name}.when", rule.when, False) for rule in settings.alerts.rules]
    pieces += [(f"etl.columns.{name}", expr, False) for name, expr in etl.columns.items()]
    pieces += [(f"gold.columns.{name}", expr, False) for name, expr in gold.columns.items()]
    pieces += [(f"gold.measures.{measure.name}.expr", measure.expr, False) for measure in gold.measures]
    pieces += [("gold.filter", gold.filter, False), ("gold.window.gap_expr", gold.window.gap_expr, False)]
    pieces += [(f"etl.expectations.{rule.name}.rule", rule.rule, False) for rule in etl.expectations]
    pieces += [(f"gold.expectations.{rule.name}.rule", rule.rule, False) for rule in gold.expectations]
    if gold.sql.strip():
        pieces.append(("gold.sql", gold.sql, True))
    return pieces


def check_settings(settings: Settings) -> None:
    """Every check of a loaded config that needs no Spark, across its sections (:func:`load_settings` runs it).

    Example::

        check_settings(dataclasses.replace(settings, retry=RetrySettings(max_attempts=0)))  # ConfigError
    """
    analytics = settings.analytics
    check_trigger("analytics.trigger", analytics.trigger)
    _check_etl(settings.etl)
    _check_alerts(settings.alerts)
    check_expectations("gold.expectations", settings.gold.expectations)
    if settings.retry.max_attempts < 1:
        raise ConfigError("retry.max_attempts must be at least 1")
    kafka = settings.kafka
    for key in ("max_offsets_per_trigger", "min_offsets_per_trigger"):
        if getattr(kafka, key) < 0:
            raise ConfigError(f"kafka.{key} must be 0 (no limit) or more")
    if kafka.max_offsets_per_trigger and kafka.min_offsets_per_trigger > kafka.max_offsets_per_trigger:
        raise ConfigError("kafka.min_offsets_per_trigger must not be above kafka.max_offsets_per_trigger")
    contract = settings.contract
    _check_choices("contract.schema_versions", contract.schema_versions, KNOWN_SCHEMA_VERSIONS)
    if not contract.extractors:
        raise ConfigError("contract.extractors must list at least one format")
    _check_choices("contract.extractors", contract.extractors, KNOWN_EXTRACTORS)
    _check_choices("contract.default_format", [contract.default_format], contract.extractors)
    if analytics.slide is not None and analytics.slide > analytics.window:
        raise ConfigError("analytics.slide must not be longer than analytics.window")
    if not settings.contract.schema_versions:
        raise ConfigError("contract.schema_versions must list at least one version")
    if settings.contract.max_record_bytes <= 0:
        raise ConfigError("contract.max_record_bytes must be positive")
    for key, text, statement in config_sql(settings):
        if problem := sql_problem(key, text, statement=statement):
            raise ConfigError(problem)
