#!/usr/bin/env bash
# Installs schemathesis (PyPI) — property-based testing of an API from its
# OpenAPI description — into a virtual environment under target/, and
# prints the path of its `schemathesis` command. Idempotent.
#
#   export SEASHELL_TEST_SCHEMATHESIS="$(scripts/schemathesis.sh)"
set -euo pipefail
cd "$(dirname "$0")/.."

venv="target/schemathesis"
version="4.32.5"
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$version"; then
    command -v python3 >/dev/null || { echo "schemathesis.sh: python3 is missing" >&2; exit 1; }
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$version" >&2
fi
echo "$PWD/$venv/bin/schemathesis"
