import pytest

from claude_batch.config import ConfigError, build_config

BASE = dict(key="id", text="body", labels={"pos": "good", "neg": "bad"}, instructions="Classify.")


def cfg(**kw):
    merged = {**BASE, **kw}
    return build_config("m", None, **merged)


@pytest.mark.parametrize(
    "override, setting",
    [
        ({"labels": []}, "labels"),
        ({"labels": ["a", "a"]}, "labels"),
        ({"labels": ["only"]}, "labels"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"instructions": " "}, "instructions"),
        ({"pack_size": 0}, "pack_size"),
        ({"mode": "turbo"}, "mode"),
        ({"key": 5}, "key"),
        ({"state_schema": 'x"; drop table y'}, "state_schema"),
        ({"max_requests_per_batch": 100_001}, "max_requests_per_batch"),
        ({"examples": [("t", "other")]}, "examples"),
        ({"bogus_setting": 1}, "bogus_setting"),
    ],
)
def test_bad_settings_name_the_setting(override, setting):
    with pytest.raises(ConfigError, match=setting):
        cfg(**override)


def test_text_and_template_are_exclusive():
    with pytest.raises(ConfigError, match="text"):
        cfg(text_template="{a} {b}")


def test_yaml_options_merge_and_strings_are_parsed():
    c = build_config("m", {"pack_size": "10", "reclassify": "True", "max_usd_per_run": "None", "model": "claude-sonnet-5-5"}, **BASE)
    assert c.pack_size == 10 and c.reclassify is True and c.max_usd_per_run is None
    assert c.spec.model == "claude-sonnet-5-5"


def test_version_changes_with_prompt_not_with_execution_settings():
    a = cfg()
    assert a.version == cfg(pack_size=5, max_attempts=7).version
    assert a.version != cfg(instructions="Classify, carefully.").version
    assert a.version != cfg(labels={"pos": "good", "neg": "bad", "meh": "neither"}).version
    assert a.version != cfg(model="claude-sonnet-5-5").version
    assert a.version != cfg(labels={"pos": "good!", "neg": "bad"}).version


def test_template_columns():
    c = build_config("m", None, key=["a", "b"], text_template="T: {title}\n{body} {title}",
                     labels=["x", "y"], instructions="i")
    assert c.text_columns == ("title", "body")
    assert c.key_columns == ("a", "b")
