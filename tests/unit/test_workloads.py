"""W1 reference workload and the demo seed: the prefix length the cost model assumes, deterministic
rows with about 15 % duplicates, and a demo CSV that DuckDB (dbt-duckdb's seed loader) reads."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from claude_batch import catalog, prompts, tokens

import workloads  # bench/workloads.py
REPO = Path(__file__).resolve().parents[2]
DEMO_CSV = REPO / "seeds" / "demo" / "demo_reviews.csv"


def _prefix_tokens(spec: prompts.PromptSpec) -> int:
    return tokens.count_model_text(prompts.system_text(spec), spec.model)


# ---------------------------------------------------------------------------- W1 prompt


def test_w1_prefix_is_about_2000_tokens_and_2600_on_the_newer_tokenizer():
    # cost-model.md: about 2,000 tokens on the older tokenizer, about 2,600 on Claude 4.7+.
    assert 1_900 <= _prefix_tokens(workloads.w1_spec("claude-haiku-4-5")) <= 2_200
    assert 2_450 <= _prefix_tokens(workloads.w1_spec("claude-haiku-5-5")) <= 2_900


def test_w1_prefix_caches_on_haiku_5_5_but_not_on_haiku_4_5():
    new = _prefix_tokens(workloads.w1_spec("claude-haiku-5-5"))
    old = _prefix_tokens(workloads.w1_spec("claude-haiku-4-5"))
    assert new > old  # the same text, counted by a tokenizer that counts more
    assert new >= catalog.model_info("claude-haiku-5-5").min_cacheable_tokens
    assert old < catalog.model_info("claude-haiku-4-5").min_cacheable_tokens


def test_w1_spec_shape():
    spec = workloads.w1_spec()
    assert spec.model == "claude-haiku-5-5"
    assert spec.label_names == ("positive", "negative", "neutral")
    assert all(label.description for label in spec.labels)
    assert len(workloads.W1_EXAMPLES) == 20
    for example in workloads.W1_EXAMPLES:
        assert len(example.labels) == 1 and example.labels[0] in spec.label_names
    assert {ex.labels[0] for ex in workloads.W1_EXAMPLES} == set(spec.label_names)
    # build_params accepts it (json_schema output on Sonnet 4.5).
    params = prompts.build_params(spec, [(1, "fine phone")], cache=True)
    assert params["system"][0]["cache_control"]["type"] == "ephemeral"


def test_demo_spec_shape():
    spec = workloads.demo_spec()
    assert spec.label_names == ("positive", "negative", "neutral")
    assert workloads.DEMO_EXAMPLES
    assert all(ex.labels[0] in spec.label_names for ex in workloads.DEMO_EXAMPLES)


def test_default_data_dir_honours_env(tmp_path, monkeypatch):
    monkeypatch.setenv(workloads.DATA_DIR_ENV, str(tmp_path))
    assert workloads.default_data_dir() == tmp_path
    monkeypatch.setenv(workloads.DATA_DIR_ENV, str(tmp_path / "missing"))
    assert workloads.default_data_dir() is None


# ---------------------------------------------------------------------------- W1 rows


@pytest.fixture(scope="module")
def data_dir() -> Path:
    found = workloads.default_data_dir()
    if found is None:
        pytest.skip("W1 corpus (sentiment_labelled_sentences) not available")
    return found


def _duplicate_share(rows: list[tuple[int, str]]) -> float:
    seen: set[str] = set()
    repeats = 0
    for _, text in rows:
        repeats += text in seen
        seen.add(text)
    return repeats / len(rows)


def test_load_w1_texts(data_dir):
    texts = workloads.load_w1_texts(data_dir)
    assert len(texts) == 3_000
    assert all(text and text == text.rstrip() and "\t" not in text for text in texts)


@pytest.mark.parametrize("n_rows", [1, 100, 1_000, 3_000, 3_500, 10_000])
def test_w1_rows_count_ids_duplicates(data_dir, n_rows):
    rows = workloads.w1_rows(n_rows, data_dir)
    assert len(rows) == n_rows
    assert [row_id for row_id, _ in rows] == list(range(1, n_rows + 1))
    if n_rows >= 100:
        assert abs(_duplicate_share(rows) - 0.15) < 0.01


def test_w1_rows_deterministic(data_dir):
    assert workloads.w1_rows(2_000, data_dir) == workloads.w1_rows(2_000, data_dir)
    assert workloads.w1_rows(2_000, data_dir) != workloads.w1_rows(2_000, data_dir, seed=2)


def test_w1_rows_variants_only_after_the_first_cycle(data_dir):
    corpus = set(workloads.load_w1_texts(data_dir))
    small = workloads.w1_rows(3_000, data_dir)
    assert all(text in corpus for _, text in small)
    large = workloads.w1_rows(6_000, data_dir)
    assert any(text not in corpus and text.endswith(")") and " (#" in text for _, text in large)
    plain = workloads.w1_rows(6_000, data_dir, unique_variants=False)
    assert all(text in corpus for _, text in plain)
    assert _duplicate_share(plain) > 0.4  # plain cycling: the documented high-duplicate case


# ---------------------------------------------------------------------------- demo seed


@pytest.fixture(scope="module")
def demo_rows() -> list[tuple]:
    # dbt-duckdb's seed loader reads the file with the same DuckDB CSV reader (COPY ... FORMAT CSV).
    return duckdb.connect().sql(
        f"select review_id, product, review_text from read_csv('{DEMO_CSV}') order by review_id"
    ).fetchall()


def test_demo_csv_parses(demo_rows):
    assert 180 <= len(demo_rows) <= 220
    ids = [row[0] for row in demo_rows]
    assert len(set(ids)) == len(ids) and all(isinstance(i, int) for i in ids)
    assert all(product for _, product, _ in demo_rows)


def test_demo_csv_edge_cases(demo_rows):
    texts = [text for _, _, text in demo_rows]
    # Quoted "" loads as NULL with DuckDB's defaults; whitespace-only texts stay strings.
    empty = [t for t in texts if t is None or t == ""]
    blank = [t for t in texts if t is not None and t != "" and not t.strip()]
    assert len(empty) >= 4 and len(blank) >= 2
    present = [t for t in texts if t and t.strip()]
    assert len(present) - len(set(present)) >= 8  # exact duplicates, different ids
    long_ = [t for t in present if 2_000 <= len(t) <= 6_000]
    assert len(long_) >= 3
    assert sum(1 for t in present if not t.isascii()) >= 15  # other languages and emoji
    assert any("\u0600" <= ch <= "\u06ff" for t in present for ch in t)  # Arabic
    assert any("\u0e00" <= ch <= "\u0e7f" for t in present for ch in t)  # Thai
    assert any("\u3040" <= ch <= "\u30ff" for t in present for ch in t)  # Japanese kana
    assert any("ignore previous instructions" in t.lower() for t in present)
    assert any("</row>" in t for t in present)
    assert any('"' in t and "," in t and "\n" in t for t in present)


def test_demo_csv_is_lexically_labelable(demo_rows):
    """Enough clear cue words that a keyword heuristic (the emulator's stand-in) labels most rows."""
    pos = ("love", "great", "excellent", "perfect", "recommend")
    neg = ("broke", "terrible", "refund", "disappointed", "worst")
    texts = [t.lower() for _, _, t in demo_rows if t and t.strip()]
    n_pos = sum(1 for t in texts if any(w in t for w in pos) and not any(w in t for w in neg))
    n_neg = sum(1 for t in texts if any(w in t for w in neg) and not any(w in t for w in pos))
    assert n_pos >= 60 and n_neg >= 50
