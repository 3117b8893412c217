"""The anthropic SDK's own generated batch tests, run against our emulator.

Why: the emulator stands in for the Message Batches API in every other test of this project, so it
should answer the official SDK the way the API does. The SDK ships tests generated from the API's
OpenAPI spec (Stainless: ``tests/api_resources/messages/test_batches.py``); they exercise every call
shape of create and list (sync, async over httpx and aiohttp, plain / raw-response / streaming-response,
loose and strict response validation, every documented parameter). Running them here catches the
emulator refusing something the API accepts, e.g. ``after_id`` together with ``before_id`` on list.

Where the code comes from: nothing of the SDK is committed here. At test time we fetch the sdist of
``anthropic==0.121.0`` from PyPI with ``pip download --no-deps --no-binary :all:`` (the sdist carries
``tests/``; we check its sha256), unpack its ``tests/``, ``pyproject.toml`` (their pytest settings) and
``requirements-dev.lock`` (their pins), and build a throwaway venv with ``anthropic[aiohttp]==0.121.0``
plus their ``dev`` dependency group minus type checkers and linters, pinned by their lock. Version
0.121.0 because its client (``X-Api-Key``, ``anthropic-version: 2023-06-01``, httpx) is the one these
tests were generated for; our own code uses SDK 2.x. All of it lives under the git-ignored
``.cache/sdk-conformance/`` (override: ``SDK_CONFORMANCE_CACHE``) and is reused while present: the
first run takes about a minute, later ones a few seconds, and need no network.

What runs: their pytest, in a subprocess of that venv, inside the unpacked sdist, with
``TEST_API_BASE_URL`` pointing at a fresh emulator (their conftest builds clients with
``api_key="my-anthropic-api-key"``, which the emulator accepts). Deselected with ``-k``: retrieve,
cancel and delete, whose tests call the server with the made-up id ``"message_batch_id"``, written for
a stateless mock server; a stateful one rightly answers 404. Kept: create and list (all variants), the
client-side ``test_path_params_*`` checks and ``test_method_results`` (answered by respx, not by us):
57 tests, every one of which must pass. The 5 ``test_method_list_with_all_params`` variants send the
made-up cursors ``after_id="after_id", before_id="before_id"``: the emulator accepts the pair (the docs
don't forbid it) and answers a cursor naming no batch with an empty page.

In CI (``CI`` set) a failure to download or install fails the test; elsewhere, without network and
without a cached venv, it is skipped.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from claude_batch.emulator.pytest_plugin import emulator, emulator_factory  # noqa: F401

SDK_VERSION = "0.121.0"
SDK_SDIST_SHA256 = "e79d6e08ab3376602fc9a70d4d5ea3540817c76cf7e16658bed790834e1833d6"
SDK_TEST_FILE = "tests/api_resources/messages/test_batches.py"
# Their dev group minus what only type-checks or lints (and its stubs); the rest is installed pinned by
# their requirements-dev.lock, even if the two selected files import only part of it.
DEV_EXCLUDED = {"pyright", "mypy", "ruff", "boto3-stubs", "griffe"}
RECIPE = 1  # bump when the build steps change: a cache built otherwise is rebuilt

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("SDK_CONFORMANCE_CACHE") or REPO / ".cache" / "sdk-conformance")

# Server-hitting retrieve/cancel/delete tests use the made-up id "message_batch_id" (see docstring).
DESELECTED = [
    f"test_{kind}_{op}"
    for op in ("retrieve", "cancel", "delete")
    for kind in ("method", "raw_response", "streaming_response")
]
K_EXPRESSION = "not (" + " or ".join(DESELECTED) + ")"

SYNC_IDS = ("loose", "strict")
ASYNC_IDS = ("loose", "strict", "aiohttp")
SELECTED_FUNCTIONS = [
    "test_method_create",
    "test_method_create_with_all_params",
    "test_raw_response_create",
    "test_streaming_response_create",
    "test_method_list",
    "test_method_list_with_all_params",
    "test_raw_response_list",
    "test_streaming_response_list",
    "test_path_params_retrieve",
    "test_path_params_delete",
    "test_path_params_cancel",
]


def _expected_tests() -> set[str]:
    names = {f"TestBatches::{f}[{i}]" for f in SELECTED_FUNCTIONS for i in SYNC_IDS}
    names |= {f"TestAsyncBatches::{f}[{i}]" for f in SELECTED_FUNCTIONS for i in ASYNC_IDS}
    names |= {"TestBatches::test_method_results[False]", "TestAsyncBatches::test_method_results[False]"}
    return names


EXPECTED = _expected_tests()
# Made-up cursors that name no batch: the emulator's 400 (its message) is the one accepted failure.
# None left: the pair of cursors is accepted, and a cursor naming no batch gives an empty page.
KNOWN_FAILURES: dict[str, str] = {}

_NETWORK_TROUBLE = re.compile(
    r"NewConnectionError|ConnectionError|Connection refused|Name or service not known|"
    r"Temporary failure in name resolution|Network is unreachable|Max retries exceeded|"
    r"ReadTimeoutError|No matching distribution found|Could not find a version",
    re.IGNORECASE,
)


class SetupFailed(Exception):
    def __init__(self, what: str, output: str):
        super().__init__(f"{what}\n{output[-4000:]}")
        self.network = bool(_NETWORK_TROUBLE.search(output))


def _run(cmd: list[str], what: str, timeout: float, **kw) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as exc:
        raise SetupFailed(f"{what}: timed out after {timeout:.0f} s", str(exc.stdout or "") + str(exc.stderr or ""))
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise SetupFailed(f"{what}: exit {done.returncode} ({' '.join(cmd)})", output)
    return output


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # one build at a time (xdist workers, two checkouts)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _extract(sdist: Path, dest: Path) -> None:
    """Unpack tests/, pyproject.toml and requirements-dev.lock of the sdist into dest (top dir dropped)."""
    wanted_files = {"pyproject.toml", "requirements-dev.lock"}
    with tarfile.open(sdist) as tar:
        members = []
        for member in tar.getmembers():
            parts = Path(member.name).parts
            if len(parts) < 2 or not (parts[1] == "tests" or (len(parts) == 2 and parts[1] in wanted_files)):
                continue
            if not (member.isfile() or member.isdir()):
                continue
            member.name = str(Path(*parts[1:]))
            members.append(member)
        tar.extractall(dest, members=members, filter="data")


def _pip_inputs(sdk: Path, work: Path) -> list[str]:
    """The requirements to install and a constraints file made from their lock."""
    dev = tomllib.loads((sdk / "pyproject.toml").read_text())["dependency-groups"]["dev"]
    names = [re.match(r"[A-Za-z0-9._-]+", spec).group(0).lower() for spec in dev]
    requirements = [spec for spec, name in zip(dev, names) if name not in DEV_EXCLUDED]
    lock_lines = [
        line
        for line in (sdk / "requirements-dev.lock").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "-e", "-"))
    ]
    constraints = work / "constraints.txt"
    constraints.write_text("\n".join(lock_lines) + "\n")
    return [f"anthropic[aiohttp]=={SDK_VERSION}", *requirements, "-c", str(constraints)]


def _build(target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    download = target / "download"
    _run(
        [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
         "--no-binary", ":all:", f"anthropic=={SDK_VERSION}", "-d", str(download)],
        f"pip download anthropic=={SDK_VERSION} (sdist)",
        timeout=300,
    )
    [sdist] = download.glob(f"anthropic-{SDK_VERSION}.tar.gz")
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    assert digest == SDK_SDIST_SHA256, f"{sdist.name}: sha256 {digest}, expected {SDK_SDIST_SHA256}"
    sdk = target / "sdk"
    _extract(sdist, sdk)
    assert (sdk / SDK_TEST_FILE).is_file(), f"the sdist has no {SDK_TEST_FILE}"
    venv = target / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], "create the venv", timeout=300)
    _run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q",
         *_pip_inputs(sdk, target)],
        "pip install the SDK and its test dependencies",
        timeout=600,
    )
    shutil.rmtree(download)


def _stamp() -> dict:
    return {"sdk": SDK_VERSION, "sha256": SDK_SDIST_SHA256, "recipe": RECIPE, "python": sys.version}


def sdk_checkout() -> tuple[Path, Path]:
    """(unpacked sdist dir, venv python), built once and reused while the stamp matches."""
    target = CACHE / f"anthropic-{SDK_VERSION}"
    ready = target / "ready.json"
    python = target / "venv" / "bin" / "python"
    with _locked(CACHE / ".lock"):
        try:
            fresh = json.loads(ready.read_text()) == _stamp() and python.exists()
        except (OSError, ValueError):
            fresh = False
        if not fresh:
            _build(target)
            ready.write_text(json.dumps(_stamp()))
    return target / "sdk", python


def _results(junit: Path) -> dict[str, tuple[str, str]]:
    """test name (Class::name[id]) -> (outcome, message)."""
    outcomes = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            element = case.find(tag)
            if element is not None:
                outcome = tag
                message = f"{element.get('message', '')}\n{element.text or ''}"
                break
        outcomes[name] = (outcome, message)
    return outcomes


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_sdk_generated_batch_tests(emulator, tmp_path):  # noqa: F811
    try:
        sdk, python = sdk_checkout()
    except SetupFailed as exc:
        if os.environ.get("CI") or not exc.network:
            pytest.fail(f"could not set up anthropic=={SDK_VERSION} and its tests:\n{exc}", pytrace=False)
        pytest.skip(f"no network to fetch anthropic=={SDK_VERSION} from PyPI (and no cached copy): {exc}")

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANTHROPIC_", "PYTEST_", "PYTHON")) and k != "VIRTUAL_ENV"}
    env["TEST_API_BASE_URL"] = emulator.base_url
    env["NO_PROXY"] = env["no_proxy"] = ",".join(
        filter(None, [os.environ.get("NO_PROXY") or os.environ.get("no_proxy"), "127.0.0.1", "localhost"])
    )
    junit = tmp_path / "junit.xml"
    cmd = [
        str(python), "-m", "pytest", SDK_TEST_FILE,
        "-k", K_EXPRESSION,
        "-n", "0",  # their addopts say -n auto; one process is enough for 57 quick tests
        "-p", "no:cacheprovider",
        "-q", "-rfE",
        f"--junitxml={junit}",
    ]
    started = time.monotonic()
    done = subprocess.run(cmd, cwd=sdk, env=env, capture_output=True, text=True, timeout=600)
    took = time.monotonic() - started
    output = (done.stdout + done.stderr)[-8000:]
    assert junit.exists(), f"their pytest wrote no report (exit {done.returncode}):\n{output}"

    results = _results(junit)
    assert set(results) == EXPECTED, (
        f"selected tests differ from the expected {len(EXPECTED)}: "
        f"unexpected {sorted(set(results) - EXPECTED)}, missing {sorted(EXPECTED - set(results))}\n{output}"
    )
    problems = []
    for name, (outcome, message) in sorted(results.items()):
        if name in KNOWN_FAILURES:
            if outcome != "failure" or KNOWN_FAILURES[name] not in message:
                problems.append(f"{name}: expected to fail with {KNOWN_FAILURES[name]!r}, got {outcome}\n{message}")
        elif outcome != "passed":
            problems.append(f"{name}: {outcome}\n{message[-2000:]}")
    passed = sum(outcome == "passed" for outcome, _ in results.values())
    assert not problems, (
        f"{passed} of {len(EXPECTED)} SDK tests passed ({took:.1f} s); problems:\n\n" + "\n\n".join(problems)
    )
    assert passed == len(EXPECTED) - len(KNOWN_FAILURES) == 57
    print(f"anthropic {SDK_VERSION} {SDK_TEST_FILE}: {passed} passed, {len(KNOWN_FAILURES)} known failures "
          f"(made-up list cursors), in {took:.1f} s")
