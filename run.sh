#!/usr/bin/env bash
# perturblab set-up and entry points.
#   bash run.sh audit [ARGS...]   set up .venv if needed, run the robustness audit (the main job)
#   bash run.sh test  [ARGS...]   set up .venv if needed, run the test suite
# The data directory defaults to ../shared/data when it exists; set PERTURBLAB_DATA_DIR to override.
set -euo pipefail
cd "$(dirname "$0")"
VENV=${PERTURBLAB_VENV:-.venv}

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
  fi
  if ! "$VENV/bin/python" -c "import perturblab, pytest" 2>/dev/null || [ pyproject.toml -nt "$VENV/.installed" ]; then
    "$VENV/bin/pip" install -q --upgrade pip
    # CPU build of torch from the local wheel store; any other spec downloads several GB.
    "$VENV/bin/pip" install -q "torch==2.13.0"
    "$VENV/bin/pip" install -q -e ".[all,test]"
    touch "$VENV/.installed"
  fi
}

if [ -z "${PERTURBLAB_DATA_DIR:-}" ] && [ -d ../shared/data ]; then
  PERTURBLAB_DATA_DIR="$(cd ../shared/data && pwd)"
  export PERTURBLAB_DATA_DIR
fi

cmd=${1:-}
shift || true
case "$cmd" in
  audit) setup; exec "$VENV/bin/perturblab" audit --out results/audit --resume --n-jobs -1 "$@" ;;
  test)  setup; exec "$VENV/bin/python" -m pytest "$@" ;;
  setup) setup ;;
  *) echo "usage: bash run.sh audit|test|setup [ARGS...]" >&2; exit 2 ;;
esac
