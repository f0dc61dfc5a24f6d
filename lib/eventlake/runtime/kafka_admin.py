"""Small Kafka admin tasks with confluent-kafka: is the broker there, does the topic exist, create topics."""

from __future__ import annotations

import re

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from eventlake.runtime.config import resolve_secret
from eventlake.runtime.errors import EnvironmentProblem

# What confluent-kafka's clients take as settings.
LibrdkafkaConfig = dict[str, str | int | float | bool]

# The Kafka options that mean the same to librdkafka as to the Java client Spark uses.
_SHARED_CLIENT_OPTIONS = (
    "security.protocol", "sasl.mechanism", "sasl.username", "sasl.password",
    "ssl.endpoint.identification.algorithm",
)
_JAAS_FIELD = re.compile(r'\b(username|password)\s*=\s*"((?:[^"\\]|\\.)*)"')


def librdkafka_options(
    bootstrap_servers: str, client_options: dict[str, str] | None = None
) -> LibrdkafkaConfig:
    """confluent-kafka settings from Spark-style ``kafka.*`` options (``env:NAME`` values read from the
    environment): the ones both clients understand, the user and password of a PLAIN or SCRAM
    ``sasl.jaas.config``, and a PEM truststore as librdkafka's CA file."""
    # librdkafka logs every refused connection to stderr; our callers turn failures into one message.
    config: LibrdkafkaConfig = {"bootstrap.servers": bootstrap_servers, "log_level": 0}
    options = {key.removeprefix("kafka."): resolve_secret(value) for key, value in (client_options or {}).items()}
    for name, value in options.items():
        if name in _SHARED_CLIENT_OPTIONS:
            config[name] = value
    if config.get("ssl.endpoint.identification.algorithm") == "":
        config["ssl.endpoint.identification.algorithm"] = "none"  # the Java client's "no host check"
    for field, value in _JAAS_FIELD.findall(options.get("sasl.jaas.config", "")):
        config.setdefault(f"sasl.{field}", value)
    if "ssl.truststore.location" in options:
        if options.get("ssl.truststore.type", "JKS").upper() != "PEM":
            raise EnvironmentProblem(
                "kafka.ssl.truststore.location names a JKS/PKCS12 store, which the topic check and the producer "
                "(librdkafka) cannot read. Use a PEM file (Spark's Java client reads it too): set "
                "kafka.ssl.truststore.type = \"PEM\" (keytool -exportcert -rfc turns a JKS entry into PEM)."
            )
        config["ssl.ca.location"] = options["ssl.truststore.location"]
    return config


def admin_client(bootstrap_servers: str, client_options: dict[str, str] | None = None) -> AdminClient:
    """An AdminClient for ``bootstrap_servers``; ``client_options`` are Spark-style ``kafka.*`` options."""
    return AdminClient(librdkafka_options(bootstrap_servers, client_options))


def topic_partitions(admin: AdminClient, bootstrap_servers: str, timeout: float = 10.0) -> dict[str, int]:
    """Topic name -> partition count; raises EnvironmentProblem when no broker answers."""
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as error:
        raise EnvironmentProblem(
            f"Kafka broker not reachable at {bootstrap_servers} ({error.args[0]}). "
            "Start the local one with `scripts/kafka.sh start`, or set kafka.bootstrap_servers."
        ) from None
    return {name: len(topic.partitions) for name, topic in metadata.topics.items()}


def require_topic(bootstrap_servers: str, topic: str, client_options: dict[str, str] | None = None) -> int:
    """Check the broker answers and ``topic`` exists; return its partition count."""
    topics = topic_partitions(admin_client(bootstrap_servers, client_options), bootstrap_servers)
    if topic not in topics:
        raise EnvironmentProblem(
            f"Kafka topic '{topic}' does not exist at {bootstrap_servers}. "
            f"Create it with `scripts/kafka.sh create-topic {topic}`, or set kafka.topic."
        )
    return topics[topic]


def create_topic(bootstrap_servers: str, topic: str, partitions: int = 4, exist_ok: bool = True) -> bool:
    """Create ``topic`` (replication factor 1); return False when it already existed and ``exist_ok``."""
    admin = admin_client(bootstrap_servers)
    if topic in topic_partitions(admin, bootstrap_servers):
        if exist_ok:
            return False
        raise EnvironmentProblem(f"Kafka topic '{topic}' already exists at {bootstrap_servers}")
    future = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic]
    try:
        future.result(timeout=30)
    except KafkaException as error:
        if "TOPIC_ALREADY_EXISTS" in str(error) and exist_ok:
            return False
        raise EnvironmentProblem(f"could not create Kafka topic '{topic}': {error}") from None
    return True


def delete_topic(bootstrap_servers: str, topic: str) -> None:
    """Delete ``topic`` and wait for the broker to confirm."""
    admin = admin_client(bootstrap_servers)
    try:
        admin.delete_topics([topic])[topic].result(timeout=30)
    except KafkaException as error:
        raise EnvironmentProblem(f"could not delete Kafka topic '{topic}': {error}") from None
