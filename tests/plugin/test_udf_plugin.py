"""The claude_classify SQL function: a real DuckDB connection, the real SDK, the emulator over HTTP,
and once through a real dbt-duckdb run with the plugin in profiles.yml."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from claude_batch import plugin as plugin_mod
from claude_batch.config import ConfigError

REVIEWS = [
    (1, "I love it, works perfectly, highly recommend"),
    (2, "Terrible. It broke after two days, I want a refund"),
    (3, "Excellent quality, great value"),
    (4, "Worst purchase ever, awful and disappointed"),
    (5, "I love it, works perfectly, highly recommend"),  # duplicate of row 1
    (6, None),
]
EXPECTED = {1: "positive", 2: "negative", 3: "positive", 4: "negative", 5: "positive", 6: None}


@pytest.fixture
def api_env(emulator, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", emulator.api_key)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", emulator.base_url)
    return emulator


def _connection(config: dict | None = None, rows=REVIEWS):
    con = duckdb.connect()
    con.execute("CREATE TABLE reviews (id INTEGER, body VARCHAR)")
    con.executemany("INSERT INTO reviews VALUES (?, ?)", rows)
    plug = plugin_mod.Plugin("claude", dict(config or {}))
    plug.configure_connection(con)
    return con, plug


def _sent_texts(emulator) -> list[str]:
    return [text for entry in emulator.received() for text in entry["rows"]]


def _classify(con, sql: str = "SELECT id, claude_classify(body, ['positive', 'negative']) FROM reviews ORDER BY id"):
    return dict(con.execute(sql).fetchall())


def test_labels_come_back_per_row_and_null_stays_null(api_env):
    con, plug = _connection({"pack_size": 2})
    try:
        assert _classify(con) == EXPECTED
        # Four distinct texts were sent, each once, in packs of two: two requests.
        assert sorted(_sent_texts(api_env)) == sorted({t for _, t in REVIEWS if t})
        assert len(api_env.received()) == 2
        assert plug.classifier.rows_sent == 4 and plug.classifier.billed_usd > 0
    finally:
        plug.classifier.close()


def test_repeated_query_is_answered_from_memory(api_env):
    con, plug = _connection({"max_rows": 4})
    try:
        first = _classify(con)
        calls = len(api_env.received())
        assert _classify(con) == first  # a re-run costs nothing and does not count against max_rows
        assert len(api_env.received()) == calls
        assert plug.classifier.rows_sent == 4
    finally:
        plug.classifier.close()


def test_missing_or_out_of_set_answers_are_null(api_env):
    api_env.script({
        "Excellent quality, great value": {"omit": True},
        "Worst purchase ever, awful and disappointed": {"label": "furious"},
    })
    con, plug = _connection({"pack_size": 10})
    try:
        got = _classify(con)
        assert got[3] is None and got[4] is None
        assert got[1] == "positive" and got[2] == "negative" and got[6] is None
    finally:
        plug.classifier.close()


def test_instructions_variant_and_profile_instructions_reach_the_prompt(api_env):
    systems: list[str] = []

    def spy(row_text, labels, params):
        systems.append(params["system"][0]["text"])
        return None  # default answer

    api_env.set_responder(spy)
    con, plug = _connection({"instructions": "Judge customer reviews by their tone."})
    try:
        _classify(con, "SELECT 1, claude_classify('I love it', ['positive', 'negative'])")
        assert systems[-1].startswith("Judge customer reviews by their tone.")
        got = _classify(con, "SELECT id, claude_classify_with(body, ['bug', 'praise'], "
                             "'Sort app store reviews into bug reports and praise.') FROM reviews ORDER BY id")
        assert systems[-1].startswith("Sort app store reviews into bug reports and praise.")
        assert set(got.values()) <= {"bug", "praise", None} and got[6] is None
    finally:
        plug.classifier.close()


def test_several_arrow_batches_and_duckdb_threads(api_env):
    """More rows than one DuckDB vector: several UDF calls (on DuckDB's threads), one shared count."""
    rows = [(i, f"{'I love it, excellent' if i % 2 else 'Awful, it broke'} (order {i})") for i in range(3000)]
    limits = {"realtime_rpm": 100_000, "realtime_itpm": 100_000_000, "realtime_otpm": 10_000_000}
    con, plug = _connection({"max_rows": 3000, "pack_size": 25, **limits}, rows=rows)
    try:
        con.execute("SET threads = 4")
        got = _classify(con)
        assert len(got) == 3000
        assert all(label == ("positive" if i % 2 else "negative") for i, label in got.items())
        assert plug.classifier.rows_sent == 3000
        assert len(_sent_texts(api_env)) == 3000  # each text sent exactly once
    finally:
        plug.classifier.close()


def test_row_cap_stops_a_big_scan_before_anything_is_sent(api_env):
    rows = [(i, f"review number {i}: it was fine") for i in range(50)]
    con, plug = _connection({"max_rows": 10}, rows=rows)
    try:
        with pytest.raises(duckdb.Error, match="max_rows=10") as info:
            _classify(con)
        assert "profiles.yml" in str(info.value)
        assert api_env.received() == []
        # Within the cap it works, and the count carries over on this connection.
        assert len(_classify(con, "SELECT id, claude_classify(body, ['positive', 'negative']) "
                                  "FROM reviews WHERE id < 6")) == 6
        with pytest.raises(duckdb.Error, match="max_rows=10"):
            _classify(con, "SELECT id, claude_classify(body, ['positive', 'negative']) FROM reviews WHERE id < 12")
        assert plug.classifier.rows_sent == 6
    finally:
        plug.classifier.close()


def test_bad_label_list_is_a_clear_error(api_env):
    con, plug = _connection()
    try:
        with pytest.raises(duckdb.Error, match="at least two distinct"):
            _classify(con, "SELECT id, claude_classify(body, ['only']) FROM reviews")
        assert api_env.received() == []
    finally:
        plug.classifier.close()


def test_wrong_api_key_fails_the_query_instead_of_returning_nulls(emulator_factory, monkeypatch):
    emu = emulator_factory(api_keys=["the-right-key"])
    monkeypatch.setenv("ANTHROPIC_API_KEY", "a-wrong-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", emu.base_url)
    con, plug = _connection({"max_retries": 1})
    try:
        with pytest.raises(duckdb.Error, match="authentication_error"):
            _classify(con)
    finally:
        plug.classifier.close()


def test_no_api_key_names_the_variable(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    con, plug = _connection()  # loading the plugin needs no key
    try:
        with pytest.raises(duckdb.Error, match="ANTHROPIC_API_KEY"):
            _classify(con)
    finally:
        plug.classifier.close()


def test_plugin_config_is_validated():
    with pytest.raises(ConfigError, match="max_row"):
        plugin_mod.Plugin("claude", {"max_row": 10})
    with pytest.raises(ConfigError, match="max_rows"):
        plugin_mod.Plugin("claude", {"max_rows": 0})
    with pytest.raises(ConfigError, match="model"):
        plugin_mod.Plugin("claude", {"model": "claude-nope-9"})
    plug = plugin_mod.Plugin("claude", {"max_rows": "20", "pack_size": 5})
    assert (plug.settings.max_rows, plug.settings.pack_size) == (20, 5)


# ---------------------------------------------------------------------------- through dbt

PROFILE = """
udf_test:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: "{db}"
      threads: 2
      settings:
        threads: 2
      plugins:
        - module: claude_batch.plugin
          config:
            model: claude-haiku-4-5
            max_rows: {max_rows}
            pack_size: 2
            instructions: "Classify the sentiment of each customer review."
"""

PROJECT = """
name: udf_test
version: "1.0"
config-version: 2
profile: udf_test
model-paths: ["models"]
"""

REVIEWS_SQL = """
select * from (values
  (1, 'I love it, works perfectly, highly recommend'),
  (2, 'Terrible. It broke after two days, I want a refund'),
  (3, 'Excellent quality, great value'),
  (4, 'Worst purchase ever, awful and disappointed'),
  (5, 'I love it, works perfectly, highly recommend'),
  (6, null)
) as t(id, body)
"""

SENTIMENT_SQL = """
{{ config(materialized='table') }}
select id, claude_classify(body, ['positive', 'negative']) as sentiment
from {{ ref('reviews') }}
"""


def _dbt_project(tmp_path: Path, max_rows: int) -> tuple[Path, Path]:
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(PROJECT)
    (project / "models" / "reviews.sql").write_text(REVIEWS_SQL)
    (project / "models" / "sentiment.sql").write_text(SENTIMENT_SQL)
    db = tmp_path / "udf.duckdb"
    (project / "profiles.yml").write_text(PROFILE.format(db=db, max_rows=max_rows))
    return project, db


def _dbt_run(project: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """dbt in its own process, as users run it: the plugin is imported from the installed package."""
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    return subprocess.run(
        [sys.executable, "-m", "dbt.cli.main", "run", "--project-dir", str(project), "--profiles-dir", str(project),
         "--log-path", str(tmp_path / "logs"), "--target-path", str(tmp_path / "target")],
        env=env, capture_output=True, text=True, timeout=300,
    )


def test_dbt_run_with_the_plugin_in_profiles_yml(api_env, tmp_path):
    project, db = _dbt_project(tmp_path, max_rows=100)
    result = _dbt_run(project, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "claude_classify: 4 text(s)" in result.stdout  # progress line in the dbt log
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert dict(con.execute("SELECT id, sentiment FROM main.sentiment ORDER BY id").fetchall()) == EXPECTED
    finally:
        con.close()
    assert sorted(_sent_texts(api_env)) == sorted({t for _, t in REVIEWS if t})


def test_dbt_run_fails_on_the_row_cap_naming_the_setting(api_env, tmp_path):
    project, _ = _dbt_project(tmp_path, max_rows=3)
    result = _dbt_run(project, tmp_path)
    assert result.returncode != 0
    assert "max_rows=3" in result.stdout
    assert api_env.received() == []
