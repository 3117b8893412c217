"""Every command in README.md and docs/*.md runs (issue 13: each curl example of docs/emulator.md
failed with "Content-Type must be application/json").

Each fenced ``bash``/``sh``/``shell``/``console`` block is run by bash (``set -euo pipefail``), whole,
as a user would paste it, and must exit 0:

- in a dbt project of a new user, built from README's own snippets (the model file, its `meta` settings,
  its tests), which installs this package with ``- local:`` and has been built twice (so the state tables
  exist and the rows are classified); each block gets its own copy of it;
- against an emulator of the test's (every ``8765`` in a command becomes its port), with
  ``ANTHROPIC_BASE_URL``/``ANTHROPIC_API_KEY`` pointing at it: nothing ever reaches the real API;
- ``curl`` fails on an HTTP error (a wrapper adds ``--fail-with-body`` unless the command has ``-f``):
  an error JSON is a failure, not output;
- a line that starts an emulator (``claude-batch-emulator ...``, ``python -m claude_batch.emulator ...``)
  runs in the background on a port of its own (the block's ``8765`` becomes that port) until it
  answers its health check, and is stopped after the block;
- ``make demo`` runs in a copy of the repository (its database and emulator state under the copy's
  ``target/``), with this environment's ``.venv``.

A new block is run by default. What is not run is listed below with the reason; a GitHub Actions block
(YAML steps) has its ``run:`` steps run in order; a usage synopsis (``[--option ...]``) is checked
against the command's ``--help``; YAML blocks that configure dbt are checked by dbt's own validator.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
VENV_BIN = Path(sys.executable).parent
SHELL = {"bash", "sh", "shell", "console"}
DOC_PORT = "8765"

# Lines of shell blocks that are not run, by how they start, and why.
NOT_RUN = {
    "make test": "the whole test suite, of which this test is part",
    "pip install": "installs into the environment; the tests run where this repository is installed (editable)",
}
# Non-shell blocks that hold commands, and why they are not run.
NOT_RUN_BLOCKS = {
    "cron": "a crontab line for a production host (/srv/analytics, a secret file): the command it schedules, "
            "`dbt build -s review_sentiment`, is what the other blocks run",
}
# Commands quoted inline or in a comment (not run as a block line), each with the file that quotes it.
# Several commands in one entry run as one script, in order.
INLINE = [
    ("README.md", ["python -m claude_batch.emulator --port 8765 --state-dir .emulator",
                   "ANTHROPIC_BASE_URL=http://127.0.0.1:8765 ANTHROPIC_API_KEY=anything dbt build"]),
    ("docs/emulator.md", ["python -m claude_batch.emulator --port 8765 --state-dir .emulator"]),
]
SERVER_RE = re.compile(r"^\s*(claude-batch-emulator|python -m claude_batch\.emulator)\b")
FENCE_RE = re.compile(r"^( *)```([\w-]*)[^\n]*\n(.*?)^\1```", re.M | re.S)


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    lang: str
    text: str

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def doc_blocks() -> list[Block]:
    out = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for m in FENCE_RE.finditer(text):
            body = textwrap.dedent("\n".join(line[len(m.group(1)):] if line.startswith(m.group(1)) else line
                                             for line in m.group(3).splitlines()))
            out.append(Block(path, text.count("\n", 0, m.start()) + 1, m.group(2).lower(), body))
    return out


BLOCKS = doc_blocks()


def is_synopsis(text: str) -> bool:
    return " [--" in text


def is_actions(block: Block) -> bool:
    if block.lang not in ("yaml", "yml"):
        return False
    doc = yaml.safe_load(block.text)
    return isinstance(doc, list) and all(isinstance(s, dict) and ("run" in s or "uses" in s) for s in doc)


SHELL_BLOCKS = [b for b in BLOCKS if b.lang in SHELL and not is_synopsis(b.text)]
SYNOPSES = [b for b in BLOCKS if b.lang in SHELL and is_synopsis(b.text)]
ACTIONS = [b for b in BLOCKS if is_actions(b)]


def test_every_block_is_run_checked_or_listed():
    """Nothing slips through: a block is a shell block (run), a synopsis (checked), a GitHub Actions
    block (run), a language listed in NOT_RUN_BLOCKS, or not a command (python, sql, yaml, text)."""
    for block in BLOCKS:
        known = SHELL | set(NOT_RUN_BLOCKS) | {"python", "sql", "yaml", "yml", "json", "text", ""}
        assert block.lang in known, f"{block.id}: a ```{block.lang} block: run it here or list it in NOT_RUN_BLOCKS"
    assert SHELL_BLOCKS and ACTIONS and SYNOPSES
    for doc, commands in INLINE:
        text = (REPO / doc).read_text(encoding="utf-8")
        for command in commands:
            assert command in text, f"{doc} no longer quotes `{command}`: update INLINE"


# ---------------------------------------------------------------------------- the environment

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


README = (REPO / "README.md").read_text(encoding="utf-8")


def readme_block(lang: str, contains: str) -> str:
    (block,) = [b.text for b in BLOCKS if b.path.name == "README.md" and b.lang == lang and contains in b.text]
    return block


PROFILES = """\
my_project:
  target: dev
  outputs:
    dev: &warehouse
      type: duckdb
      path: "{{ env_var('DOC_DUCKDB') }}"
      threads: 1
    ci: *warehouse
"""
REVIEWS_CSV = """review_id,review_text
1,"Works perfectly, I love it."
2,"Broke after two days, I want a refund."
3,It arrived on Tuesday.
4,"Works perfectly, I love it."
5,"Terrible, the worst purchase ever."
"""


def user_project(root: Path) -> Path:
    """A new user's project, from README's snippets: the model file, the `meta` settings, the tests."""
    project = root / "my_project"
    (project / "models").mkdir(parents=True)
    (project / "seeds").mkdir()
    settings = yaml.safe_load(readme_block("yaml", "+meta:"))
    (project / "dbt_project.yml").write_text(yaml.safe_dump({
        "name": "my_project", "version": "1.0.0", "config-version": 2, "profile": "my_project",
        "model-paths": ["models"], "seed-paths": ["seeds"], **settings}))
    (project / "packages.yml").write_text(f"packages:\n  - local: {REPO}\n")
    (project / "profiles.yml").write_text(PROFILES)
    model = readme_block("python", "def model(dbt, session)")
    assert model.startswith("# models/review_sentiment.py")
    (project / "models" / "review_sentiment.py").write_text(model)
    tests = yaml.safe_load(readme_block("yaml", "every_row_explained"))
    (project / "models" / "schema.yml").write_text(yaml.safe_dump({"version": 2, **tests}))
    (project / "seeds" / "reviews.csv").write_text(REVIEWS_CSV)
    return project


def base_env(tmp: Path, emulator_url: str) -> dict:
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    real_curl = shutil.which("curl")
    assert real_curl, "the docs use curl"
    # curl exits 0 on an HTTP error; the docs' commands must not get one.
    (bin_dir / "curl").write_text(f"""#!{sys.executable}
import os, re, sys
args = sys.argv[1:]
fails = any(a in ("-f", "--fail", "--fail-with-body") or re.fullmatch(r"-[A-Za-z]*f[A-Za-z]*", a) for a in args)
os.execv({real_curl!r}, ["curl"] + ([] if fails else ["--fail-with-body"]) + args)
""")
    (bin_dir / "curl").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "DBT_", "CLAUDE_BATCH_"))}
    env.update(
        PATH=f"{bin_dir}:{VENV_BIN}:{env.get('PATH', '')}",
        ANTHROPIC_BASE_URL=emulator_url, ANTHROPIC_API_KEY="sk-ant-doc-test",
        CLAUDE_BATCH_USE_EMULATOR="1",  # scripts/demo.py: never the real API, whatever the key
        DBT_SEND_ANONYMOUS_USAGE_STATS="false", DO_NOT_TRACK="1",
    )
    return env


@pytest.fixture(scope="module")
def docs_env(tmp_path_factory):
    """A module-wide emulator and a user project built twice against it (classified)."""
    from claude_batch.emulator import Emulator

    root = tmp_path_factory.mktemp("docs")
    with Emulator(state_dir=root / "emulator", processing_seconds=0) as emu:
        env = base_env(root, emu.base_url)
        project = user_project(root)
        env_p = {**env, "DBT_PROFILES_DIR": str(project), "DOC_DUCKDB": str(project / "warehouse.duckdb")}
        for args in (["deps"], ["seed"], ["build"], ["build"]):
            proc = subprocess.run(["dbt", *args], cwd=project, env=env_p, capture_output=True, text=True)
            assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        yield {"root": root, "emulator": emu, "env": env, "project": project}


def project_copy(docs_env, tmp_path: Path) -> tuple[Path, dict]:
    project = tmp_path / "my_project"
    shutil.copytree(docs_env["project"], project, symlinks=True)
    env = {**docs_env["env"], "DBT_PROFILES_DIR": str(project), "DOC_DUCKDB": str(project / "warehouse.duckdb")}
    return project, env


PRELUDE = """\
set -euo pipefail
wait_health() {
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$1/_emulator/health" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "the emulator on port $1 did not answer" >&2
  return 1
}
"""


def script_for(text: str, *, emulator_port: int, tmp: Path, repo_copy: Path | None) -> str:
    """The block as a bash script: skipped lines commented out, servers in the background."""
    port = str(free_port()) if any(SERVER_RE.match(line) for line in text.splitlines()) else str(emulator_port)
    lines = [PRELUDE]
    logical: list[str] = []  # backslash-continued lines joined, so a server command stays whole
    for line in text.splitlines():
        if logical and logical[-1].endswith("\\"):
            logical[-1] += "\n" + line
        else:
            logical.append(line)
    for n, line in enumerate(logical):
        line = line.replace(DOC_PORT, port)
        stripped = line.strip()
        skip = next((why for start, why in NOT_RUN.items() if stripped.startswith(start)), None)
        if skip:
            lines.append(f"# skipped: {stripped} -- {skip}")
        elif SERVER_RE.match(line):
            log = tmp / f"server-{n}.log"
            lines.append(f"{line.split(' # ', 1)[0]} >{log} 2>&1 &")
            lines.append(f"wait_health {port}")
        elif stripped.startswith("make demo"):
            assert repo_copy is not None
            lines.append(stripped.replace("make demo", f"make -C {repo_copy} demo VENV={VENV_BIN.parent}", 1))
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def repo_for_make(tmp: Path) -> Path:
    """The repository as a user has it, minus tests and state, so `make demo` leaves ours alone."""
    copy = tmp / "repo"
    top = {".git", ".venv", ".cache", "target", "logs", "dbt_packages", "tests", "bench", "integration_tests"}
    shutil.copytree(REPO, copy, symlinks=True, ignore=lambda folder, names: [
        n for n in names if (Path(folder) == REPO and n in top) or n in ("__pycache__", ".emulator")
        or n.endswith(".duckdb")])
    os.utime(copy / "pyproject.toml", (0, 0))  # older than .venv/.installed: make must not reinstall
    return copy


def run_script(script: str, *, cwd: Path, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.Popen(["bash", "-c", script], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        try:  # servers the script started in the background: its own process group, nothing else
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


def check(proc: subprocess.CompletedProcess, what: str, script: str) -> None:
    assert proc.returncode == 0, f"{what} failed ({proc.returncode}):\n--- script\n{script}\n--- output\n{proc.stdout[-6000:]}"


# ---------------------------------------------------------------------------- the tests

@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=[b.id for b in SHELL_BLOCKS])
def test_shell_block_runs(block, docs_env, tmp_path):
    project, env = project_copy(docs_env, tmp_path)
    repo_copy = repo_for_make(tmp_path) if re.search(r"^\s*make demo", block.text, re.M) else None
    script = script_for(block.text, emulator_port=docs_env["emulator"].port, tmp=tmp_path, repo_copy=repo_copy)
    check(run_script(script, cwd=project, env=env), block.id, script)


@pytest.mark.parametrize("doc,commands", INLINE, ids=[f"{d}:{c[-1][:40]}" for d, c in INLINE])
def test_inline_commands_run(doc, commands, docs_env, tmp_path):
    project, env = project_copy(docs_env, tmp_path)
    script = script_for("\n".join(commands), emulator_port=docs_env["emulator"].port, tmp=tmp_path, repo_copy=None)
    check(run_script(script, cwd=project, env=env), f"{doc}: {commands}", script)


@pytest.mark.parametrize("block", ACTIONS, ids=[b.id for b in ACTIONS])
def test_github_actions_steps_run(block, docs_env, tmp_path):
    """The CI job's steps in order, as GitHub runs them (bash -e each; env per step; $RUNNER_TEMP),
    in the user's project whose profile has the `ci` target the job selects."""
    project, env = project_copy(docs_env, tmp_path)
    port = str(free_port())
    runner_temp = tmp_path / "runner"
    runner_temp.mkdir()
    groups = []
    try:
        for step in yaml.safe_load(block.text):
            if "run" not in step:
                continue
            step_env = {**env, "RUNNER_TEMP": str(runner_temp),
                        **{k: str(v).replace(DOC_PORT, port) for k, v in (step.get("env") or {}).items()}}
            script = "set -eo pipefail\n" + step["run"].replace(DOC_PORT, port)
            proc = subprocess.Popen(["bash", "-c", script], cwd=project, env=step_env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, start_new_session=True)
            groups.append(proc.pid)
            out, _ = proc.communicate(timeout=600)
            check(subprocess.CompletedProcess(proc.args, proc.returncode, out, ""), f"{block.id}: {step['name']}", script)
    finally:
        for pgid in groups:  # the emulator the first step left running in the background
            try:
                os.killpg(pgid, signal.SIGTERM)
            except ProcessLookupError:
                pass


@pytest.mark.parametrize("block", SYNOPSES, ids=[b.id for b in SYNOPSES])
def test_synopsis_options_exist(block):
    """A usage synopsis (a benchmark of minutes) is not run: every option it names must be in --help."""
    for line in block.text.splitlines():
        if " [--" not in line:
            continue
        command = line.split(" [", 1)[0].split()
        command[0] = str(VENV_BIN / command[0]) if command[0] == "python" else command[0]
        proc = subprocess.run([*command, "--help"], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        for option in re.findall(r"\[(--[\w-]+)", line):
            assert option in proc.stdout, f"{block.id}: {option} is not an option of {' '.join(command)}"


def test_emulator_options_table_matches_its_help():
    """docs/emulator.md's table of `claude-batch-emulator` options names each option it has (by one of
    its spellings) and no other."""
    table = (REPO / "docs" / "emulator.md").read_text(encoding="utf-8").split("| option |", 1)[1].split("\n\n", 1)[0]
    documented = set(re.findall(r"^\| `(-{1,2}[\w-]+)", table, re.M))
    proc = subprocess.run([str(VENV_BIN / "claude-batch-emulator"), "--help"], capture_output=True, text=True,
                          check=True)
    options = [set(re.findall(r"(?<![\w-])(-{1,2}[a-z][\w-]*)", line.split("  ", 2)[1]))
               for line in proc.stdout.split("options:", 1)[1].splitlines() if re.match(r"^  -", line)]
    options = [names for names in options if "--help" not in names]
    assert documented and all(names & documented for names in options), [n for n in options if not n & documented]
    assert documented <= set().union(*options), documented - set().union(*options)


# dbt's validator of dbt_project.yml and schema files (as in tests/integration/test_dbt_config.py): a
# YAML block of the docs that configures dbt must raise no deprecation (custom config keys: meta).
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
add_callback_to_manager(lambda e: events.append(f"{e.info.name}: {e.info.msg}") if "Deprecation" in e.info.name else None)
for where, kind, text in json.loads(sys.stdin.read()):
    doc = yaml.safe_load(text)
    if kind == "project":
        doc = {"name": "p", "version": "1.0.0", "config-version": 2, "profile": "p", **doc}
        where = where + "/dbt_project.yml"  # how dbt tells a project file from a schema file
    jsonschema_validate(project_schema() if kind == "project" else resources_schema(), doc, where)
print(json.dumps(events))
"""


def test_dbt_config_blocks_raise_no_dbt_deprecation():
    found = []
    for block in BLOCKS:
        if block.lang not in ("yaml", "yml") or is_actions(block):
            continue
        doc = yaml.safe_load(block.text)
        if not isinstance(doc, dict) or "models" not in doc:
            continue
        found.append((block.id, "project" if isinstance(doc["models"], dict) else "resources", block.text))
    assert found
    proc = subprocess.run([sys.executable, "-c", VALIDATE], input=json.dumps(found), capture_output=True, text=True,
                          check=True)
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
