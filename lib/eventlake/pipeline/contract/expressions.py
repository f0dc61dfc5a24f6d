"""Column functions of the contract, ``Column -> Column``: each reads one thing of a record, with Spark
expressions only (no Python UDF), and is NULL, never an error, where the record does not have it."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

# ISO-8601 with a mandatory offset; Spark keeps microseconds, so at most six fractional digits.
# \z, not $: Java's $ also matches before a final line break.
ISO_8601_WITH_OFFSET = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})\z"
KV_PAIR_SEPARATOR = ";"
BLANK = r"(?U)\S"  # a text that does not match has no visible character (tabs, Unicode spaces are blank)
INTEGER_KINDS = ("BIGINT", "INT", "SMALLINT", "TINYINT")


def header_text(name: str) -> Column:
    """The text of the first Kafka header called ``name``, NULL when there is none (no lambda: the
    position lookup compiles to plain code).

    Example::

        raw.select(header_text("content-type"))
    """
    position = F.array_position(F.col("headers.key"), F.lit(name))
    return F.get(F.col("headers.value"), position - 1).cast("string")


def is_one_json_value(text: Column) -> Column:
    """True when ``text`` is exactly one JSON value. Spark's JSON readers stop after the first value and
    ignore what follows (``{...}{...}``, ``{...} words``), so wrap the text in an array with a sentinel:
    one value gives two elements, and the first array must be one element on its own too.

    Example::

        rows.where(is_one_json_value(F.col("value").cast("string")))
    """
    one = F.json_array_length(F.concat(F.lit("["), text, F.lit("\n]"))) == 1
    two = F.json_array_length(F.concat(F.lit("["), text, F.lit("\n,0]"))) == 2
    return F.coalesce(one & two, F.lit(False))


def json_type(value: Column) -> Column:
    """The JSON type name of a VARIANT: STRING, BIGINT, DOUBLE, BOOLEAN, OBJECT, ARRAY, VOID (null)...

    Example::

        rows.select(json_type(F.parse_json(F.lit("[1]"))))  # ARRAY
    """
    return F.split(F.schema_of_variant(value), "<").getItem(0)


def present(value: Column) -> Column:
    """True when a VARIANT is there and not JSON ``null``.

    Example::

        rows.where(present(F.col("doc.user_id")))
    """
    return value.isNotNull() & ~F.is_variant_null(value)


def is_number(kind: Column) -> Column:
    """True for the :func:`pyspark.sql.functions.schema_of_variant` of a JSON number."""
    return kind.isin(*INTEGER_KINDS, "DOUBLE", "FLOAT") | kind.startswith("DECIMAL")


def is_object(value: Column) -> Column:
    """True when a VARIANT is a JSON object. The cast to a struct succeeds for an object only and looks up
    one key: no walk over the object.

    Example::

        rows.where(is_object(F.col("doc.data")))
    """
    return F.try_variant_get(value, "$", "struct<`_`: variant>").isNotNull()


def iso_timestamp(text: Column) -> Column:
    """The time of an ISO-8601 text with a UTC offset (``2026-01-31T12:00:00Z``), NULL for any other text.

    Example::

        rows.select(iso_timestamp(F.lit("2026-01-31T12:00:00+01:00")))  # 11:00 UTC
    """
    return F.when(text.rlike(ISO_8601_WITH_OFFSET), F.try_to_timestamp(text))


def iso_time(column: Column | str) -> Column:
    """A timestamp as ISO-8601 text with milliseconds and offset, for messages."""
    return F.date_format(column, "yyyy-MM-dd'T'HH:mm:ss.SSSXXX")


def variant_at(value: Column, keys: list[str]) -> Column:
    """The VARIANT under the object ``keys`` of ``value`` (``value`` itself when there are none).

    Example::

        variant_at(F.col("doc.data"), ["user_id"])
    """
    if not keys:
        return value
    return F.try_variant_get(value, "$" + "".join(f"['{key}']" for key in keys), "variant")


def key_value_map(text: Column) -> Column:
    """The pairs of a ``key=value;...`` record as a map of trimmed keys to trimmed values, NULL when the text
    is not such pairs: a pair without '=', an empty key, a key twice, or no pair at all.

    Example::

        rows.select(key_value_map(F.lit("a=1; b = x")))  # {a -> 1, b -> x}
    """
    pairs = F.filter(F.transform(F.split(text, KV_PAIR_SEPARATOR), lambda pair: F.trim(pair)), lambda pair: pair != "")
    keys = F.transform(pairs, lambda pair: F.trim(F.substring_index(pair, "=", 1)))
    entries = F.transform(
        pairs,
        lambda pair: F.struct(
            F.trim(F.substring_index(pair, "=", 1)).alias("key"),
            F.trim(F.substring(pair, F.instr(pair, "=") + 1, 1 << 30)).alias("value"),
        ),
    )
    well_formed = (
        (F.size(pairs) > 0)
        & F.forall(pairs, lambda pair: F.instr(pair, "=") > 1)
        & F.forall(keys, lambda key: key != "")
        & (F.size(F.array_distinct(keys)) == F.size(keys))
    )
    # Built only when well formed: map_from_entries fails on a key twice.
    return F.when(well_formed, F.map_from_entries(entries))


def prefixed_object(pairs: Column, prefix: str) -> Column:
    """The pairs whose keys start with ``prefix.`` as a VARIANT object of strings (the prefix removed), NULL
    when there are none: how a ``key=value`` record writes an object (``data.user_id=u-1``).

    Example::

        rows.select(prefixed_object(key_value_map(F.lit("data.user_id=u-1")), "data"))  # {"user_id": "u-1"}
    """
    start = f"{prefix}."
    inner = F.transform_keys(
        F.map_filter(pairs, lambda key, _value: key.startswith(start)),
        lambda key, _value: F.substring(key, len(start) + 1, 1 << 30),
    )
    return F.when(F.size(inner) > 0, F.to_variant_object(inner))
