"""The whole of a config file: one typed section each."""

from __future__ import annotations

from dataclasses import dataclass, field

from eventlake.runtime.config.contracts import DeclaredContract
from eventlake.runtime.config.gold import GoldSettings
from eventlake.runtime.config.sections import (
    AlertsSettings,
    AnalyticsSettings,
    ContractSettings,
    EtlSettings,
    KafkaSettings,
    RetrySettings,
    SparkSettings,
    StorageSettings,
)


@dataclass(frozen=True)
class Settings:
    """The whole configuration of a run."""

    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    contract: ContractSettings = field(default_factory=ContractSettings)
    spark: SparkSettings = field(default_factory=SparkSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    analytics: AnalyticsSettings = field(default_factory=AnalyticsSettings)
    etl: EtlSettings = field(default_factory=EtlSettings)
    alerts: AlertsSettings = field(default_factory=AlertsSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    contracts: dict[str, DeclaredContract] = field(default_factory=dict)
    gold: GoldSettings = field(default_factory=GoldSettings)
