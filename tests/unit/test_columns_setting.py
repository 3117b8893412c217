"""The `columns` setting (issue 13, point 4): parsed and checked before anything is sent."""

import duckdb
import pytest

from claude_batch import source
from claude_batch.config import ConfigError, build_config
from claude_batch.warehouse import Warehouse

BASE = dict(key="id", text="body", labels={"pos": "good", "neg": "bad"}, instructions="Classify.")


def cfg(options=None, **kw):
    return build_config("m", options, **{**BASE, **kw})


@pytest.mark.parametrize("value, expected", [
    (None, ()),
    ("none", ()),  # an unset dbt var renders as None
    (["product", "stars"], ("product", "stars")),
    ('["product", "stars"]', ("product", "stars")),  # JSON text
    ("['product', 'stars']", ("product", "stars")),  # a list var as dbt renders it
    ("product", ("product",)),  # one column
    (["ticket no"], ("ticket no",)),  # any column name
])
def test_columns_are_read_from_lists_and_dbt_rendered_text(value, expected):
    assert cfg(columns=value).columns == expected
    assert cfg({"columns": value}).columns == expected  # from the model's config too


@pytest.mark.parametrize("value, named", [
    (["a", "a"], "repeats"),
    (["id"], "key"),
    (["status"], "clash"),
    (["Label"], "clash"),
    ([5], "list of column names"),
    ("[oops", "list of column names"),
])
def test_bad_columns_name_the_setting(value, named):
    with pytest.raises(ConfigError, match=f"setting 'columns'.*{named}"):
        cfg(columns=value)


def test_columns_do_not_change_the_version():
    assert cfg(columns=["product"]).version == cfg().version


def test_a_column_missing_from_the_source_is_named_at_the_start():
    wh = Warehouse(duckdb.connect())
    wh.execute("CREATE TABLE src (id INTEGER, body VARCHAR, product VARCHAR)")
    source.check_columns(wh, "src", cfg(columns=["product"]))
    with pytest.raises(ConfigError, match="setting 'columns': column 'stars' is not in the source"):
        source.check_columns(wh, "src", cfg(columns=["product", "stars"]))
