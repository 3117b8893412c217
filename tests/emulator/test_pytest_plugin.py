"""The emulator's pytest fixtures are opt-in: installing the package registers no plugin; a user
enables it with ``-p claude_batch.emulator.pytest_plugin`` or ``pytest_plugins`` (docs/emulator.md)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLUGIN = "claude_batch.emulator.pytest_plugin"
USER_TEST = '''
def test_the_emulator_answers(emulator):
    client = emulator.client(max_retries=0)
    client.messages.create(model="claude-sonnet-4-6", max_tokens=16, messages=[{"role": "user", "content": "Hi"}])
    assert len(emulator.received()) == 1
'''


def _pytest(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_the_package_registers_no_pytest_plugin():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "pytest11" not in project.get("entry-points", {})


def test_a_conftest_enables_the_fixtures(tmp_path):
    (tmp_path / "conftest.py").write_text(f"pytest_plugins = [{PLUGIN!r}]\n")
    (tmp_path / "test_user.py").write_text(USER_TEST)
    proc = _pytest(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "1 passed" in proc.stdout
