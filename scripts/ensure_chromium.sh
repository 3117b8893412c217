#!/usr/bin/env bash
# The report's browser test (tests/integration/test_report.py) renders in Debian's Chromium, driven by
# Playwright (whose own browser download does not work offline). Install it when it is missing and we may
# (root with apt-get: CI, a fresh container). Elsewhere the test skips, except under CI, where it fails.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "chromium not found: installing Debian's chromium for the report's browser test"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q chromium
elif [ -n "${CI:-}" ]; then
  echo "chromium not found and cannot be installed here (root and apt-get needed): the report's browser test fails under CI" >&2
  exit 1
else
  echo "chromium not found: the report's browser test will skip (apt-get install chromium to run it)" >&2
fi
