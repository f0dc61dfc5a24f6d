from __future__ import annotations

from eventlake.ops.query import delta_tables, describe_tables, register_tables


def test_tables_under_the_root_are_queryable_by_name(spark, tmp_path):
    root = tmp_path / "tables"
    spark.createDataFrame([(1, "a"), (2, "b")], "n int, s string").write.format("delta").save(str(root / "letters"))
    spark.createDataFrame([(1,)], "n int").write.parquet(str(root / "not_delta"))

    tables = register_tables(spark, str(root))

    assert list(tables) == ["letters"]
    assert [tuple(row) for row in spark.sql("SELECT s FROM letters WHERE n = 2").collect()] == [("b",)]
    [description] = describe_tables(spark, tables).collect()
    assert (description.table, description.rows, description.columns) == ("letters", 2, "n, s")


def test_a_missing_root_has_no_tables(spark, tmp_path):
    assert delta_tables(spark, str(tmp_path / "nothing-here")) == {}
