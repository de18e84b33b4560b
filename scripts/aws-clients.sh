#!/usr/bin/env bash
# Installs the real AWS clients the tests drive — the AWS CLI (v1) and boto3
# from PyPI — into a virtual environment under target/, and prints its bin
# directory. Idempotent.
#
#   export SEASHELL_TEST_AWS_BIN="$(scripts/aws-clients.sh)"
set -euo pipefail
cd "$(dirname "$0")/.."

venv="target/aws-clients"
if [ ! -x "$venv/bin/aws" ] || ! "$venv/bin/python" -c 'import boto3' 2>/dev/null; then
    if ! command -v python3 >/dev/null; then
        [ "$(id -u)" -eq 0 ] || { echo "aws-clients.sh: python3 is missing" >&2; exit 1; }
        apt-get update -qq >&2 && apt-get install -y -qq python3 python3-venv >&2
    fi
    if ! python3 -m venv "$venv" >&2 2>/dev/null; then
        [ "$(id -u)" -eq 0 ] || { echo "aws-clients.sh: python3-venv is missing" >&2; exit 1; }
        apt-get update -qq >&2 && apt-get install -y -qq python3-venv >&2
        python3 -m venv "$venv" >&2
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check awscli boto3 >&2
fi
echo "$PWD/$venv/bin"
