"""Small Kafka admin tasks with confluent-kafka: is the broker there, does the topic exist, create topics."""

from __future__ import annotations

from collections.abc import Iterator

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from eventlake.runtime.config import ConfigError, resolve_secret
from eventlake.runtime.errors import EnvironmentProblem

# What confluent-kafka's clients take as settings.
LibrdkafkaConfig = dict[str, str | int | float | bool]

# The Kafka options that mean the same to librdkafka as to the Java client Spark uses.
_SHARED_CLIENT_OPTIONS = (
    "security.protocol", "sasl.mechanism", "sasl.username", "sasl.password",
    "ssl.endpoint.identification.algorithm",
)


# A sasl.jaas.config value ("<login module> <flag> name=value ...;") is read by Kafka's Java client with
# java.io.StreamTokenizer (org.apache.kafka.common.security.JaasConfig in kafka-clients 3.9, the client Spark
# uses): its default syntax plus '-', '_' and '$' in words, and // and /* */ comments. The tokens below are
# that tokenizer's, so librdkafka gets the values Spark's client gets.
Token = tuple[str, str | None]  # (kind, text): kind is WORD, NUMBER, QUOTED, or the character itself
WORD, NUMBER, QUOTED = "word", "number", "quoted"
_QUOTES = "\"'"
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_CONTROL_FLAGS = ("REQUIRED", "REQUISITE", "SUFFICIENT", "OPTIONAL")


def _is_digit(char: str) -> bool:
    return "0" <= char <= "9"


def _is_numeric(char: str) -> bool:
    return _is_digit(char) or char in ".-"


def _is_letter(char: str) -> bool:
    # 128 to 159 are not letters for StreamTokenizer; everything from 160 up is.
    return "a" <= char <= "z" or "A" <= char <= "Z" or ord(char) >= 160 or char in "-_$"


def _line_end(text: str, start: int) -> int:
    """The index of the first line break at or after ``start``, or the end of ``text``."""
    breaks = [index for index in (text.find("\n", start), text.find("\r", start)) if index >= 0]
    return min(breaks, default=len(text))


def _quoted(text: str, start: int) -> tuple[str, int]:
    """The quoted string opening at ``start`` with its escapes decoded (\\n, \\t, ... octal \\0 to \\377; a
    backslash before any other character is dropped), and the index after it. A line break or the end of
    the text closes it too."""
    quote, chars, index, end = text[start], [], start + 1, len(text)
    while index < end and text[index] != quote and text[index] not in "\n\r":
        char = text[index]
        index += 1
        if char != "\\":
            chars.append(char)
        elif index == end:
            chars.append("\uffff")  # Java appends (char) -1, the end of input, after a last backslash
        elif "0" <= text[index] <= "7":
            first, value = text[index], int(text[index])
            index += 1
            # Up to three octal digits, the third only after a first of 0 to 3 (at most \\377).
            for digits in (2, 3):
                if index < end and "0" <= text[index] <= "7" and (digits == 2 or first <= "3"):
                    value, index = value * 8 + int(text[index]), index + 1
                else:
                    break
            chars.append(chr(value))
        else:
            chars.append(_ESCAPES.get(text[index], text[index]))
            index += 1
    if index < end and text[index] == quote:
        index += 1
    return "".join(chars), index


def _jaas_tokens(text: str) -> Iterator[Token]:
    """The tokens java.io.StreamTokenizer reads from ``text`` with the syntax Kafka's JaasConfig sets."""
    index, end = 0, len(text)
    while True:
        while index < end and ord(text[index]) <= ord(" "):
            index += 1
        if index == end:
            return
        char = text[index]
        if _is_numeric(char):  # before words: '-' is both, and numeric wins
            index += 1
            if char == "-" and not (index < end and (text[index] == "." or _is_digit(text[index]))):
                yield "-", None
                continue
            seen_dot = char == "."
            while index < end and (_is_digit(text[index]) or (text[index] == "." and not seen_dot)):
                seen_dot = seen_dot or text[index] == "."
                index += 1
            yield NUMBER, None
        elif _is_letter(char):
            word_end = index + 1
            while word_end < end and (_is_letter(text[word_end]) or _is_numeric(text[word_end])):
                word_end += 1
            yield WORD, text[index:word_end]
            index = word_end
        elif char in _QUOTES:
            value, index = _quoted(text, index)
            yield QUOTED, value
        elif char == "/":
            if text.startswith("/*", index):
                close = text.find("*/", index + 2)
                if close < 0:
                    return  # an unclosed comment runs to the end
                index = close + 2
            elif text.startswith("//", index):
                index = _line_end(text, index)
            else:  # '/' alone also starts a comment; Java skips the character after it before looking for the line end
                index = _line_end(text, index + 2)
        else:
            yield char, None
            index += 1


def _login_module_options(tokens: Iterator[Token]) -> dict[str, str]:
    """The options of one login module, its name already read: ``<flag> (name=value)* ;``."""
    flag = next(tokens, None)
    if flag is None:
        raise ValueError("Login module control flag not specified in JAAS config")
    if flag[1] is None:
        raise ValueError("Login module control flag is not available in the JAAS config")
    if flag[1].upper() not in _CONTROL_FLAGS:
        raise ValueError(f"Invalid login module control flag '{flag[1]}' in JAAS config")
    options: dict[str, str] = {}
    token = next(tokens, None)
    while token is not None and token[0] != ";":
        name = token[1]
        value = next(tokens, None) if next(tokens, None) == ("=", None) else None
        if value is None or value[1] is None:
            raise ValueError(f"Value not specified for key '{'null' if name is None else name}' in JAAS config")
        if name is not None:  # a number or a sign as a name: Java keeps it under null, no client reads it
            options[name] = value[1]
        token = next(tokens, None)
    if token is None:
        raise ValueError("JAAS config entry not terminated by semi-colon")
    return options


def jaas_login_options(jaas_config: str) -> dict[str, str]:
    """The options (``username``, ``password``, ...) of the one login module of a ``sasl.jaas.config`` value,
    read as Kafka's Java client reads them: values unquoted words or quoted in ``"`` or ``'`` with Java's
    escapes (``\\"``, ``\\\\``, ``\\n``, octal). Raises ValueError with the Java client's message when it
    would refuse the value."""
    tokens = _jaas_tokens(jaas_config)
    modules = []
    while next(tokens, None) is not None:  # the login module's class name
        modules.append(_login_module_options(tokens))
    if not modules:
        raise ValueError("Login module not specified in JAAS config")
    if len(modules) != 1:
        raise ValueError(f"JAAS config property contains {len(modules)} login modules, should be 1 module")
    return modules[0]


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
    if options.get("sasl.jaas.config"):
        try:
            login = jaas_login_options(options["sasl.jaas.config"])
        except ValueError as error:  # the message names keys, never values
            raise ConfigError(f"kafka.sasl.jaas.config is not what Kafka's Java client can read: {error}") from None
        for field in ("username", "password"):
            if field in login:
                config.setdefault(f"sasl.{field}", login[field])
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


# A topic's message.timestamp.type: whose clock its records' Kafka timestamps are. CreateTime (Kafka's default)
# keeps the time the producer sets; LogAppendTime replaces it with the broker's time when the record is written.
TIMESTAMP_TYPES = ("CreateTime", "LogAppendTime")


def create_topic(
    bootstrap_servers: str,
    topic: str,
    partitions: int = 4,
    exist_ok: bool = True,
    timestamp_type: str | None = None,
    client_options: dict[str, str] | None = None,
) -> bool:
    """Create ``topic`` (replication factor 1); return False when it already existed and ``exist_ok``.

    ``timestamp_type`` (one of :data:`TIMESTAMP_TYPES`) sets the topic's ``message.timestamp.type``; None
    leaves the broker's default (CreateTime unless the broker sets ``log.message.timestamp.type``). An existing
    topic is left as it is. ``client_options``: Spark-style ``kafka.*`` options (security), as for
    :func:`admin_client`."""
    if timestamp_type is not None and timestamp_type not in TIMESTAMP_TYPES:
        raise ValueError(f"timestamp type must be one of {', '.join(TIMESTAMP_TYPES)}, got {timestamp_type!r}")
    admin = admin_client(bootstrap_servers, client_options)
    if topic in topic_partitions(admin, bootstrap_servers):
        if exist_ok:
            return False
        raise EnvironmentProblem(f"Kafka topic '{topic}' already exists at {bootstrap_servers}")
    config = {"message.timestamp.type": timestamp_type} if timestamp_type else {}
    new_topic = NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config)
    future = admin.create_topics([new_topic])[topic]
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
