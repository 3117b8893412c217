"""The local Spark the Spark engine's tests run on: a real JVM, SQL and Spark's own JSON reader."""

import json


def test_local_spark_runs_sql_and_reads_jsonl(spark, spark_db, tmp_path):
    path = tmp_path / "lines.jsonl"
    path.write_text("".join(json.dumps({"custom_id": f"c{i}", "n": i}) + "\n" for i in range(5)))
    spark.read.json(str(path)).write.saveAsTable(f"{spark_db}.lines")
    got = spark.sql(f"SELECT count(*) AS n, sum(n) AS s FROM {spark_db}.lines").collect()[0]
    assert (got["n"], got["s"]) == (5, 10)
    assert spark.conf.get("spark.sql.shuffle.partitions") == "1"
