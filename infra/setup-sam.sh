#!/usr/bin/env bash
# Create (or reuse) .venv-sam: an isolated virtualenv holding aws-sam-cli.
#
# aws-sam-cli pins many dependencies (boto3, jsonschema, cfn-lint, ...) that can conflict with the
# project's own .venv, so it lives in its own venv. Idempotent: re-running is a no-op once `sam`
# works. `sam build` for the python3.12 runtime without Docker needs a python3.12 on PATH; this
# script prints the directory to put on PATH (tests/infra does it for you).
#
# Usage:  infra/setup-sam.sh            # from the repository root (Makefile: `make sam`)
# Env:    SAM_VENV (default .venv-sam), SAM_PYTHON (python3.12 interpreter to use),
#         SAM_CLI_VERSION (default: a known-good pin).
set -euo pipefail

cd "$(dirname "$0")/.."
SAM_VENV="${SAM_VENV:-.venv-sam}"
SAM_CLI_VERSION="${SAM_CLI_VERSION:-}"

find_python312() {
    if [[ -n "${SAM_PYTHON:-}" ]]; then echo "$SAM_PYTHON"; return; fi
    local candidate
    for candidate in \
        "$(command -v python3.12 2>/dev/null || true)" \
        "$(pyenv which python3.12 2>/dev/null || true)" \
        "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.12*/bin/python3.12; do
        if [[ -n "$candidate" && -x "$candidate" ]] && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
            echo "$candidate"; return
        fi
    done
    return 1
}

PY312="$(find_python312)" || { echo "setup-sam: no python3.12 found (needed for the Lambda runtime); set SAM_PYTHON" >&2; exit 1; }

if [[ -x "$SAM_VENV/bin/sam" ]] && "$SAM_VENV/bin/sam" --version >/dev/null 2>&1; then
    echo "setup-sam: $("$SAM_VENV/bin/sam" --version) already in $SAM_VENV"
else
    if [[ ! -x "$SAM_VENV/bin/python" ]]; then
        "$PY312" -m venv "$SAM_VENV"
    fi
    "$SAM_VENV/bin/python" -m pip install --quiet --upgrade pip
    "$SAM_VENV/bin/python" -m pip install --quiet "aws-sam-cli${SAM_CLI_VERSION:+==$SAM_CLI_VERSION}"
    echo "setup-sam: installed $("$SAM_VENV/bin/sam" --version) into $SAM_VENV"
fi

# sam build (no container) resolves the runtime's interpreter by name from PATH.
echo "setup-sam: for 'sam build' put $(dirname "$PY312") on PATH (python3.12 = $PY312)"
