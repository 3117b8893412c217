"""No engine-specific SQL outside the warehouse package.

Every statement whose text depends on the engine lives behind ``claude_batch.warehouse`` (an abstract
``Warehouse`` and one module per engine), so the same classifier runs on DuckDB and Spark. This test
reads every other module of the package: the SQL in its string literals (f-string pieces included,
docstrings left out) must use none of the constructs below, and its Python must not reach around the
interface. Each rule says why the construct is engine-specific and what to use instead.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import claude_batch

PACKAGE = Path(claude_batch.__file__).parent
# Not warehouse-neutral code by design: the boundary itself; the API emulator (an HTTP server, no
# warehouse SQL); the dbt-duckdb plugin (SQL-callable UDFs through DuckDB's create_function: it is
# DuckDB's plugin API, and Spark UDFs would be another module).
EXEMPT = ("warehouse", "emulator", "plugin.py")

# (rule, reason): searched in the package's SQL strings, case-insensitively.
SQL_RULES = [
    (r"\blist_\w+\s*\(", "DuckDB list functions (Spark: array_*, transform, filter): a Warehouse *_sql template"),
    (r"\blambda\s+\w+\s*:", "DuckDB lambda syntax (Spark: x -> ...): a named operation or template"),
    (r"\bfrom_json\s*\(", "from_json takes a DuckDB JSON shape (Spark: a DDL schema): Warehouse.stage_batch_results"),
    (r"\bread_json\w*\s*\(", "DuckDB's JSON reader (Spark: spark.read.json): Warehouse.read_jsonl_sql"),
    (r"\bjson_(extract\w*|type|valid|keys|structure|transform\w*|array_length|group\w*)\s*\(",
     "DuckDB JSON functions (Spark: get_json_object, from_json)"),
    (r"\bto_json\s*\(", "DuckDB to_json (Spark: to_json on structs only): Warehouse.json_inner_sql"),
    (r"\browid\b", "DuckDB's row id (Spark has none): Warehouse.row_id_sql"),
    (r"\bgroup\s+by\s+all\b", "GROUP BY ALL (DuckDB, Spark 4 only): name the columns"),
    (r"\barg_(max|min)\s*\(", "DuckDB arg_max/arg_min (Spark: max_by/min_by): Warehouse.arg_max_sql / arg_min_sql"),
    (r"\bhugeint\b|\bubigint\b", "DuckDB-only integer types: Warehouse.outcome_order_sql / fingerprint_type"),
    (r"\bvarchar\s*\[\s*\]", "DuckDB list type: Warehouse.string_list_type"),
    (r"[\w)\]]::\s*\w", "'::' casts (DuckDB/Postgres): CAST(... AS ...) or Warehouse.text_sql"),
    (r"\bas\s+varchar\b(?!\s*\()", "VARCHAR without a length (Spark needs STRING): Warehouse.text_sql"),
    (r"\btemp(orary)?\s+(table|view)\b", "temporary relations differ (Spark: temp views of cached DataFrames): "
                                          "Warehouse.create_temp_table / create_temp_view / create_staging"),
    (r"\bdrop\s+(table|view)\b", "dropping relations: Warehouse.drop_temp"),
    (r"\balter\s+table\b", "ALTER TABLE differs per engine: Warehouse.add_column / drop_column / rebuild_table"),
    (r"\bcreate\s+(or\s+replace\s+)?(table|view|schema)\b", "DDL: Warehouse.create_table / create_view / ensure_schema"),
    (r"\bupdate\s+\S+\s+set\b", "UPDATE (plain Spark tables have none): Warehouse.update / update_from"),
    (r"\bdelete\s+from\b", "DELETE (plain Spark tables have none): Warehouse.delete / replace_where"),
    (r"\bmerge\s+into\b", "MERGE (Delta/Iceberg only): Warehouse.update_from"),
    (r"\binsert\s+into\b", "writes go through Warehouse.append / append_select (one atomic write each)"),
    (r"\bmaterialized\b", "CTE materialisation hints: Warehouse.materialized_cte"),
    (r"\bunnest\s*\(", "DuckDB unnest (Spark: explode)"),
    (r"\bstarts_with\s*\(", "DuckDB starts_with: Warehouse.starts_with_sql"),
    (r"\bregexp_(matches|full_match|extract_all)\s*\(", "DuckDB regexp functions (Spark: RLIKE): "
                                                         "Warehouse.regexp_matches_sql"),
    (r"\bepoch(_\w+)?\s*\(", "DuckDB epoch functions: Warehouse.seconds_between_sql / outcome_order_sql"),
    (r"\bmd5_number\s*\(|\bhash\s*\(", "engine hash functions differ: Warehouse.hash_sql / fingerprint_sql"),
    (r"\bnow\s*\(\s*\)", "now() types differ (DuckDB: TIMESTAMPTZ): Warehouse.now_sql"),
    (r"\brow_number\s*\(\s*\)\s+over\s*\(\s*\)", "an unordered window (Spark requires ORDER BY): "
                                                "Warehouse.row_number_sql"),
    (r"\s//\s", "integer division (DuckDB //, Spark div): Warehouse.int_div_sql"),
    (r"\b(bit_count|bit_or|bit_xor|log2)\s*\(", "bit functions differ: inside a named operation"),
    (r"\binformation_schema\b|\bduckdb_\w+\s*\(|\bpragma\b", "catalogs differ (plain Spark has no information_schema): "
                                                               "Warehouse.state_relations / state_columns / columns_of"),
]
# (rule, reason): searched in the package's Python code (strings and comments left out).
PYTHON_RULES = [
    (r"\bimport\s+duckdb\b|\bfrom\s+duckdb\b", "only the DuckDB engine module imports duckdb"),
    (r"\.\s*con\b", "the engine's connection is the engine's: ask the Warehouse"),
    (r"\b(fetchnumpy|fetchone|to_arrow_reader)\s*\(|\b(register|unregister)\s*\(\s*\w+\s*,",
     "DuckDB API: Warehouse.fetch_arrays / iter_arrow / arrow_relation"),
    (r"\.\s*transaction\s*\(", "the state machine needs no multi-table transaction (docs/state-machine.md)"),
    (r"\bquote_ident\s*\(", "identifier quoting is the engine's: Warehouse.q"),
]


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                ids.add(id(body[0].value))
    return ids


def sql_strings(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string literal and f-string piece in a module, docstrings excluded."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skip = _docstrings(tree)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):  # an f-string: its pieces with a stand-in for each value
            for part in node.values:
                skip.add(id(part))
            out.append((node.lineno, "".join(p.value if isinstance(p, ast.Constant) else "{x}" for p in node.values)))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            out.append((node.lineno, node.value))
    return out


def python_code(path: Path) -> list[tuple[int, str]]:
    """(line, code) with string literals and comments blanked out."""
    import io
    import tokenize

    lines: dict[int, list[str]] = {}
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if tok.type in (tokenize.STRING, tokenize.COMMENT) or tok.type == getattr(tokenize, "FSTRING_MIDDLE", -1):
            continue
        lines.setdefault(tok.start[0], []).append(tok.string)
    return [(n, " ".join(parts)) for n, parts in sorted(lines.items())]


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py")
                  if p.relative_to(PACKAGE).parts[0] not in EXEMPT and p.name != "__main__.py")


def violations() -> list[str]:
    found = []
    for path in modules():
        rel = path.relative_to(PACKAGE)
        for rules, pieces in ((SQL_RULES, sql_strings(path)), (PYTHON_RULES, python_code(path))):
            for line, text in pieces:
                for rule, reason in rules:
                    if re.search(rule, text, re.IGNORECASE if rules is SQL_RULES else 0):
                        found.append(f"{rel}:{line}: /{rule}/ ({reason})")
    return found


def test_no_engine_specific_sql_outside_the_warehouse_package():
    assert violations() == []


def test_the_rules_catch_what_they_name(tmp_path):
    """Each rule finds its construct (a rule that matches nothing protects nothing)."""
    samples = {
        r"\blist_\w+\s*\(": "SELECT list_sort(x)", r"\browid\b": "JOIN r ON r.rowid = n.rid",
        r"\bgroup\s+by\s+all\b": "FROM t GROUP BY ALL", r"[\w)\]]::\s*\w": "now()::TIMESTAMP",
        r"\bupdate\s+\S+\s+set\b": "UPDATE t SET a = 1", r"\binsert\s+into\b": "INSERT INTO t VALUES (1)",
        r"\btemp(orary)?\s+(table|view)\b": "CREATE OR REPLACE TEMP TABLE x AS",
        r"\bas\s+varchar\b(?!\s*\()": "CAST(x AS VARCHAR)", r"\s//\s": "(rn - 1) // 3",
    }
    for rule, text in samples.items():
        assert rule in dict(SQL_RULES)
        assert re.search(rule, text, re.IGNORECASE), rule
    assert not re.search(r"\bas\s+varchar\b(?!\s*\()", "CAST(x AS VARCHAR(10))", re.IGNORECASE)
    bad = tmp_path / "bad.py"
    bad.write_text('"""doc: GROUP BY ALL is fine here."""\nq = f"SELECT * FROM {t} GROUP BY ALL"\nx = wh.con.register(1)\n')
    assert [line for line, text in sql_strings(bad) if re.search(r"group\s+by\s+all", text, re.I)] == [2]
    split = tmp_path / "split.py"  # a statement cut by f-string values is still seen whole
    split.write_text('q = f"UPDATE {table} SET a = {value}"\n')
    assert any(re.search(r"\bupdate\s+\S+\s+set\b", text, re.I) for _, text in sql_strings(split))
    assert any(re.search(dict(PYTHON_RULES) and PYTHON_RULES[1][0], code) for _, code in python_code(bad))
