#!/usr/bin/env bash
# Creates (once) the Python venv the model tools use (tools/train_models.py,
# tools/reference_shap.py) and prints its interpreter's path.
#
#   ULTRACORE_CACHE=~/.cache/ultracore   the venv lives in $ULTRACORE_CACHE/mlvenv
#
# xgboost-cpu rather than xgboost: the latter pulls a 470 MB CUDA package.
# Every version is pinned so the shipped models and the SHAP fixture can be
# regenerated bit for bit. The Rust tests never need this venv.
#
# Usage:
#   PY="$(scripts/ml-env.sh)"
#   "$PY" tools/train_models.py && "$PY" tools/reference_shap.py
set -euo pipefail

XGBOOST_VERSION=3.1.3
SHAP_VERSION=0.51.0
PINS=(
  "xgboost-cpu==$XGBOOST_VERSION"
  "shap==$SHAP_VERSION"
  "numpy==2.3.5"
  "scipy==1.16.3"
  "pandas==2.3.3"
  "scikit-learn==1.7.2"
  "numba==0.62.1"
  "llvmlite==0.45.1"
  "cloudpickle==3.1.2"
  "joblib==1.6.0"
  "packaging==26.3"
  "python-dateutil==4.0.0"
  "pytz==2026.6"
  "slicer==0.0.8"
  "threadpoolctl==3.8.0"
  "tqdm==4.70.1"
  "typing_extensions==4.16.0"
  "tzdata==2026.6"
)
CACHE="${ULTRACORE_CACHE:-$HOME/.cache/ultracore}"
VENV="$CACHE/mlvenv"
PY="$VENV/bin/python"

installed() {
  "$PY" - "$XGBOOST_VERSION" "$SHAP_VERSION" 2>/dev/null <<'PYEOF'
import sys
import shap, xgboost
sys.exit(not (xgboost.__version__ == sys.argv[1] and shap.__version__ == sys.argv[2]))
PYEOF
}

if [ ! -x "$PY" ]; then
  mkdir -p "$CACHE"
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    echo "ml-env: 'python3 -m venv' failed; install python3-venv (apt-get install python3-venv)" >&2
    rm -rf "$VENV"
    exit 1
  fi
fi
if ! installed; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PINS[@]}" >&2
  installed || { echo "ml-env: xgboost-cpu $XGBOOST_VERSION / shap $SHAP_VERSION did not install into $VENV" >&2; exit 1; }
fi
echo "$PY"
