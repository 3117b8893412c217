"""Where a classifier's settings live in a dbt project (issue 13): under ``meta`` (dbt 1.10+ warns
about custom config keys), found by ``classify()`` itself; the old ``claude`` key still read, with a
deprecation note; the documented vars work in a project that does not wire them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROJECT = REPO / "integration_tests"

REVIEWS = [(1, "I love it, works perfectly"), (2, "Terrible, it broke"), (3, "It arrived on Tuesday.")]

# dbt's own validator of dbt_project.yml and schema files, run in a fresh process (it needs an
# invocation context, and dbt runs it only for some adapters: `dbt deps`, which loads none, and
# Snowflake/BigQuery/Databricks/Redshift projects). Prints each deprecation event it raises.
VALIDATE = r"""
import json, os, sys, yaml
from argparse import Namespace
from dbt_common.context import set_invocation_context
from dbt.flags import set_from_args
set_invocation_context(os.environ)
set_from_args(Namespace(show_all_deprecations=True), None)
from dbt_common.events.event_manager_client import add_callback_to_manager
from dbt.jsonschemas.jsonschemas import jsonschema_validate, project_schema, resources_schema
events = []
add_callback_to_manager(lambda e: events.append(e.info.name) if "Deprecation" in e.info.name else None)
for kind, path in json.loads(sys.argv[1]):
    doc = yaml.safe_load(open(path))
    jsonschema_validate(project_schema() if kind == "project" else resources_schema(), doc, path)
print(json.dumps(events))
"""


def dbt_files() -> list[tuple[str, str]]:
    files = [("project", str(PROJECT / "dbt_project.yml")), ("project", str(REPO / "dbt_project.yml"))]
    for root in (PROJECT / "models", REPO / "models"):
        files += [("resources", str(p)) for p in sorted(root.rglob("*.yml"))]
    return files


def test_project_and_schema_files_raise_no_dbt_deprecation():
    import json

    out = subprocess.run([sys.executable, "-c", VALIDATE, json.dumps(dbt_files())], capture_output=True, text=True,
                         check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [], out.stdout


def test_dbt_deps_prints_no_custom_config_warning(tmp_path):
    env = {**os.environ, "CLAUDE_BATCH_DUCKDB": ":memory:", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    for project in (PROJECT, REPO):
        proc = subprocess.run(
            [sys.executable, "-m", "dbt.cli.main", "deps", "--project-dir", str(project), "--profiles-dir",
             str(project), "--log-path", str(tmp_path / "logs")],
            env=env, capture_output=True, text=True)
        said = proc.stdout + proc.stderr
        assert proc.returncode == 0, said
        assert "Custom config keys" not in said and "Deprecated functionality" not in said, said


def requests_sent(emulator) -> int:
    return len([e for e in emulator.received() if e.get("batch") not in (None, "messages")])


def test_settings_under_meta_are_found_without_options(project, emulator):
    """integration_tests/models/review_sentiment.py passes no ``options``: pack_size comes from its
    ``+meta: {claude: ...}`` in dbt_project.yml (one row a request instead of all three in one)."""
    assert "options" not in (PROJECT / "models" / "review_sentiment.py").read_text()
    project.add_reviews(REVIEWS)
    project.dbt("run", vars={"cb_pack_size": 1})
    assert requests_sent(emulator) == 3


def legacy_copy(tmp_path: Path) -> Path:
    """integration_tests as a project written before meta: settings under the ``claude`` config key."""
    copy = tmp_path / "legacy_project"
    shutil.copytree(PROJECT, copy, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", "package-lock.yml"))
    text = (copy / "dbt_project.yml").read_text()
    assert "    +meta:\n      claude:\n" in text
    legacy = text.replace("    +meta:\n      claude:\n", "    +claude:\n")
    # one indent level less under +claude
    lines = []
    inside = False
    for line in legacy.splitlines():
        if line == "    +claude:":
            inside = True
        elif inside and line.startswith("        "):
            line = line[2:]
        elif inside and line.strip():
            inside = False
        lines.append(line)
    (copy / "dbt_project.yml").write_text("\n".join(lines) + "\n")
    (copy / "packages.yml").write_text(f"packages:\n  - local: {REPO}\n")
    subprocess.run([sys.executable, "-m", "dbt.cli.main", "deps", "--project-dir", str(copy), "--profiles-dir",
                    str(copy)], env={**os.environ, "CLAUDE_BATCH_DUCKDB": ":memory:"}, check=True, capture_output=True)
    return copy


def test_old_claude_config_key_is_still_read_with_a_deprecation_note(project, emulator, tmp_path):
    project.project_dir = legacy_copy(tmp_path)
    project.add_reviews(REVIEWS)
    project.dbt("run", vars={"cb_pack_size": 1})
    assert requests_sent(emulator) == 3  # the settings were read from the old place
    log = (project.logs / "dbt.log").read_text()
    assert log.count("the `claude` config key is deprecated") == 1
    assert "+meta: {claude: {...}}" in log


def test_dry_run_var_works_in_a_project_that_does_not_wire_it(project, emulator):
    """README: `dbt build --vars '{claude_dry_run: true}'` estimates and sends nothing, for any
    classifier, with no `dry_run: "{{ var(...) }}"` in the project (integration_tests has none)."""
    assert "dry_run" not in (PROJECT / "dbt_project.yml").read_text()
    project.add_reviews(REVIEWS)
    project.dbt("build", vars={"claude_dry_run": True})
    assert emulator.received() == []
    assert project.sql("SELECT dry_run, pending_texts FROM claude_batch.cb_runs") == [(True, 3)]
    assert {r["status"] for r in project.table().values()} == {"pending"}
