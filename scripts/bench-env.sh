#!/usr/bin/env bash
# Creates (once) the Python venv the benchmarks compare against and prints
# its interpreter's path:
#   - shap, xgboost-cpu: `ultracore bench forensics --vs-python`
#     (tools/bench_shap.py);
#   - PyPortfolioOpt, cvxpy, clarabel: `ultracore bench optimize --vs-python`.
#
#   ULTRACORE_CACHE=~/.cache/ultracore   the venv lives in $ULTRACORE_CACHE/benchvenv
#
# Both benches use this interpreter by default when the venv exists.
# xgboost-cpu rather than xgboost: the latter pulls a 470 MB CUDA package.
# Every package is pinned, dependencies included, so two machines time the
# same library code. Idempotent and quiet on success: a venv that already
# has every pinned version is reused without touching pip.
#
# Usage:
#   PY="$(scripts/bench-env.sh)"
#   target/release/ultracore bench forensics --vs-python "$PY"
set -euo pipefail

PINS=(
  # what the benches import
  "shap==0.51.0"
  "xgboost-cpu==3.2.0"
  "PyPortfolioOpt==1.6.0"
  "cvxpy==1.9.3"
  "clarabel==0.11.1"
  "numpy==2.4.6"
  "pandas==3.1.1"
  "scipy==1.17.1"
  "scikit-learn==1.9.1"
  # their dependencies
  "cffi==2.1.1"
  "cloudpickle==3.1.3"
  "highspy==1.16.0"
  "Jinja2==3.1.6"
  "joblib==1.6.0"
  "llvmlite==0.50.0"
  "MarkupSafe==3.0.4"
  "narwhals==2.29.0"
  "numba==0.68.1"
  "osqp==1.1.3"
  "packaging==26.4"
  "pycparser==3.12"
  "python-dateutil==4.0.0"
  "qdldl==0.1.9.post1"
  "scikit-base==0.13.2"
  "scs==3.3.1"
  "slicer==0.0.8"
  "sparsediffpy==0.6.1"
  "threadpoolctl==3.8.0"
  "tqdm==4.70.1"
  "typing_extensions==4.16.0"
  "tzdata==2026.6"
)
CACHE="${ULTRACORE_CACHE:-$HOME/.cache/ultracore}"
VENV="$CACHE/benchvenv"
PY="$VENV/bin/python"

# Every pin installed at exactly its version (names compared as pip does).
installed() {
  "$PY" - "${PINS[@]}" <<'PYEOF' 2>/dev/null
import re
import sys
from importlib.metadata import distributions

def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()

have = {norm(d.metadata["Name"]): d.version for d in distributions()}
sys.exit(any(have.get(norm(n)) != v for n, v in (p.split("==") for p in sys.argv[1:])))
PYEOF
}

if [ ! -x "$PY" ]; then
  mkdir -p "$CACHE"
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    echo "bench-env: 'python3 -m venv' failed; install python3-venv (apt-get install python3-venv)" >&2
    rm -rf "$VENV"
    exit 1
  fi
fi
if ! installed; then
  # numpy 2.4 and pandas 3 need Python 3.11 or newer.
  "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "bench-env: the pinned numpy and pandas need Python >= 3.11; $("$PY" --version) is too old" >&2
    exit 1
  }
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PINS[@]}" >&2
  installed || { echo "bench-env: the pinned packages did not install into $VENV" >&2; exit 1; }
fi
echo "$PY"
