"""Small Kafka admin tasks with confluent-kafka: is the broker there, does the topic exist, create topics."""

from __future__ import annotations

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from eventlake.errors import EnvironmentProblem

# The Kafka options that mean the same to librdkafka as to the Java client Spark uses.
_SHARED_CLIENT_OPTIONS = ("security.protocol", "sasl.mechanism", "sasl.username", "sasl.password")


def librdkafka_options(bootstrap_servers: str, client_options: dict[str, str] | None = None) -> dict[str, object]:
    """confluent-kafka settings from Spark-style ``kafka.*`` options: the ones both clients understand."""
    # librdkafka logs every refused connection to stderr; our callers turn failures into one message.
    config: dict[str, object] = {"bootstrap.servers": bootstrap_servers, "log_level": 0}
    for key, value in (client_options or {}).items():
        name = key.removeprefix("kafka.")
        if name in _SHARED_CLIENT_OPTIONS:
            config[name] = value
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
