"""Every setting a classifier accepts is in README's configuration reference, and the reference names
no setting that does not exist (issue 13: `settings_json` showed `max_rows_per_run`, undocumented)."""

from __future__ import annotations

import inspect
import re
from dataclasses import fields
from pathlib import Path

from claude_batch import config, pipeline

README = Path(__file__).resolve().parents[2] / "README.md"


def documented() -> set[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Configuration reference", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`([a-z_]+)`", first_cell))
    return names


def accepted() -> set[str]:
    """What a user can set: the settings build_config takes, and classify()'s own keyword arguments."""
    names = set(config._OPTION_NAMES) | set(config._SPEC_NAMES) | set(config._INPUT_NAMES) | {"extra"}
    params = inspect.signature(pipeline.classify).parameters
    names |= {n for n, p in params.items() if p.kind is p.KEYWORD_ONLY} - {"options", "client"}
    return names


def test_every_setting_is_in_the_readme_table_and_nothing_else():
    assert accepted() - documented() == set(), "settings missing from README's configuration reference"
    assert documented() - accepted() == set(), "README documents settings that do not exist"


def test_every_config_field_is_a_setting_or_stands_for_one():
    """A new ClassifierConfig field becomes a setting (config._OPTION_NAMES) unless it is one of these,
    each of which stands for settings of its own (checked above)."""
    stands_for = {"name": "the dbt model's name", "key_columns": "key", "text_column": "text",
                  "text_template": "text_template", "spec": "config._SPEC_NAMES", "extra": "extra"}
    for f in fields(config.ClassifierConfig):
        assert f.name in config._OPTION_NAMES or f.name in stands_for, f.name
