"""Typed configuration: one TOML file in conf/, read once, overridden with ``--set key=value``.

Every section is a frozen dataclass (:mod:`.sections`, :mod:`.contracts`, :mod:`.gold`, the whole in
:mod:`.settings`); :mod:`.loader` reads a file and the files it includes, types it and :mod:`.checks` checks it.
Unknown keys and values of the wrong type are errors that name the key, so a typo in a config file stops a job
at once instead of silently using a default.

Example::

    from eventlake.runtime.config import load_settings

    settings = load_settings("conf/local.toml", ["analytics.window=10 minutes"])
    settings.analytics.window  # datetime.timedelta(seconds=600)
    settings.storage.table_path("silver_events")  # "/.../data/tables/silver_events"
"""

from eventlake.runtime.config.checks import (
    ALERT_SEVERITIES,
    EXPECTATION_ACTIONS,
    KNOWN_EXTRACTORS,
    KNOWN_SCHEMA_VERSIONS,
    MIN_REAL_TIME_INTERVAL,
    SILVER_DEDUP_MODES,
    check_expectations,
    check_settings,
    check_trigger,
)
from eventlake.runtime.config.contracts import (
    ContractField,
    ContractVersionSpec,
    DeclaredContract,
    EventTimeSpec,
)
from eventlake.runtime.config.gold import (
    GoldJoin,
    GoldMeasure,
    GoldSettings,
    GoldSource,
    GoldWindow,
)
from eventlake.runtime.config.loader import (
    declared_contracts,
    load_settings,
)
from eventlake.runtime.config.sections import (
    AlertRule,
    AlertsSettings,
    AnalyticsSettings,
    ContractSettings,
    EnrichSettings,
    EtlSettings,
    EtlSource,
    Expectation,
    KafkaSettings,
    PiiSettings,
    RetrySettings,
    SparkSettings,
    StorageSettings,
)
from eventlake.runtime.config.settings import (
    Settings,
)
from eventlake.runtime.config.values import (
    ConfigError,
    parse_duration,
    parse_utc_time,
    resolve_secret,
    spark_interval,
)

__all__ = [
    "ALERT_SEVERITIES",
    "EXPECTATION_ACTIONS",
    "KNOWN_EXTRACTORS",
    "KNOWN_SCHEMA_VERSIONS",
    "MIN_REAL_TIME_INTERVAL",
    "SILVER_DEDUP_MODES",
    "AlertRule",
    "AlertsSettings",
    "AnalyticsSettings",
    "ConfigError",
    "ContractField",
    "ContractSettings",
    "ContractVersionSpec",
    "DeclaredContract",
    "EnrichSettings",
    "EtlSettings",
    "EtlSource",
    "EventTimeSpec",
    "Expectation",
    "GoldJoin",
    "GoldMeasure",
    "GoldSettings",
    "GoldSource",
    "GoldWindow",
    "KafkaSettings",
    "PiiSettings",
    "RetrySettings",
    "Settings",
    "SparkSettings",
    "StorageSettings",
    "check_expectations",
    "check_settings",
    "check_trigger",
    "declared_contracts",
    "load_settings",
    "parse_duration",
    "parse_utc_time",
    "resolve_secret",
    "spark_interval",
]
