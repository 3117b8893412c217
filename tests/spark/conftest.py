"""One local SparkSession for the whole test session (starting one takes 10-20 s): local[2], few shuffle
partitions, the UI off, its warehouse (and so every Spark table the tests write) in a temp dir.

Tests on Spark share it: each uses its own database names (``spark_db``), never another test's.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Iterator

import pytest


def _local_session(warehouse: Path):
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master("local[2]")
        .appName("claude-batch-tests")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.warehouse.dir", str(warehouse))
        .config("spark.driver.memory", "1g")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )


@pytest.fixture(scope="session")
def spark(tmp_path_factory) -> Iterator:
    session = _local_session(tmp_path_factory.mktemp("spark-warehouse"))
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture
def spark_db(spark) -> Iterator[str]:
    """A database of this test's own (dropped after it)."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    spark.sql(f"CREATE DATABASE {name}")
    yield name
    spark.sql(f"DROP DATABASE IF EXISTS {name} CASCADE")
