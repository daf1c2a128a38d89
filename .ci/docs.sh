#!/usr/bin/env bash
# Build the documentation with warnings as errors (tutorials executed), or run the docstring examples as doctests.
#   bash .ci/docs.sh            # HTML in docs/_build/html
#   bash .ci/docs.sh doctest    # pytest --doctest-modules on the modules whose examples are runnable
# Needs the [docs] extra (pip install -e ".[all]") and PERTURBLAB_DATA_DIR (defaults to ../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
if [ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ]; then PY=.venv/bin/python; fi
if [ -z "${PERTURBLAB_DATA_DIR:-}" ] && [ -d ../shared/data ]; then
  PERTURBLAB_DATA_DIR="$(cd ../shared/data && pwd)"
fi
export PERTURBLAB_DATA_DIR MPLBACKEND=Agg PYTHONWARNINGS=ignore
case "${1:-html}" in
  html)
    rm -rf docs/_build docs/api/generated docs/jupyter_execute
    "$PY" -m sphinx -W --keep-going -q -b html docs docs/_build/html
    ;;
  doctest)
    # Every module with Examples (the CLI, the report templates and the data-building script have none).
    # Examples that need long runs are marked "# doctest: +SKIP" only where a tutorial executes the same call;
    # those that need a download or pretrained weights (no network in CI) are marked too.
    "$PY" -m pytest -q -p no:cacheprovider --doctest-modules \
      src/perturblab/datasets src/perturblab/runs src/perturblab/exceptions.py src/perturblab/io.py \
      src/perturblab/_settings.py \
      src/perturblab/classifiers src/perturblab/attack src/perturblab/audit \
      src/perturblab/predict src/perturblab/interpret src/perturblab/bridges \
      --ignore=src/perturblab/datasets/_build.py
    ;;
  *) echo "usage: bash .ci/docs.sh [html|doctest]" >&2; exit 2 ;;
esac
