#!/usr/bin/env bash
# PySpark (the Spark engine and its tests) needs a Java runtime. Install Debian's JDK 17 when `java` is
# missing and we may (root with apt-get: CI, a fresh container); otherwise say what to install.
set -euo pipefail
if command -v java >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "java not found: installing openjdk-17-jre-headless (Debian) for PySpark"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends openjdk-17-jre-headless
else
  echo "java not found: the Spark tests need a Java 17+ runtime (e.g. apt-get install openjdk-17-jre-headless)" >&2
  exit 1
fi
