#!/usr/bin/env bash
# Creates (once) the Python venv the benchmarks compare against and prints
# its interpreter's path:
#   - shap, xgboost-cpu: `ultracore bench forensics --vs-python`
#     (tools/bench_shap.py);
#   - PyPortfolioOpt, cvxpy, clarabel: `ultracore bench optimize --vs-python`;
#   - numpy-financial: tools/reference_loans.py (repayments, schedules,
#     present values pinned in crates/agents/tests/loan_reference.rs);
#   - presidio-analyzer: tools/reference_presidio.py, Presidio's recognizers on
#     the `ultracore governance corpus` (it pulls in spaCy, but no spaCy model
#     is installed or needed).
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
  "presidio-analyzer==2.2.366"
  "numpy-financial==1.0.0"
  # their dependencies
  "annotated-doc==0.0.7"
  "annotated-types==0.8.0"
  "anyio==4.16.0"
  "blis==1.3.4"
  "catalogue==2.0.10"
  "certifi==2026.10.19.post1"
  "cffi==2.1.1"
  "charset-normalizer==3.5.3"
  "click==8.5.1"
  "cloudpathlib==0.26.0"
  "cloudpickle==3.1.3"
  "confection==1.3.4"
  "cymem==2.0.16"
  "filelock==4.3.2"
  "h11==0.16.0"
  "highspy==1.16.0"
  "httpcore==1.0.9"
  "httpx==0.29.0"
  "idna==3.20"
  "Jinja2==3.1.6"
  "joblib==1.6.0"
  "llvmlite==0.50.0"
  "markdown-it-py==4.3.0"
  "MarkupSafe==3.0.4"
  "mdurl==0.1.2"
  "murmurhash==1.0.16"
  "narwhals==2.29.0"
  "numba==0.68.1"
  "osqp==1.1.3"
  "packaging==26.4"
  "phonenumbers==9.0.43"
  "preshed==3.0.13"
  "pycparser==3.12"
  "pydantic==2.14.4"
  "pydantic_core==2.50.5"
  "Pygments==2.21.0"
  "python-dateutil==4.0.0"
  "PyYAML==6.0.4"
  "qdldl==0.1.9.post1"
  "regex==2026.12.2"
  "requests==2.34.2"
  "requests-file==3.0.1"
  "rich==15.0.0"
  "scikit-base==0.13.2"
  "scs==3.3.1"
  "shellingham==1.5.4"
  "slicer==0.0.8"
  "smart_open==9.0.4"
  "spacy==3.8.18"
  "spacy-legacy==3.0.12"
  "spacy-loggers==1.0.5"
  "sparsediffpy==0.6.1"
  "srsly==2.5.6"
  "thinc==8.3.14"
  "threadpoolctl==3.8.0"
  "tldextract==5.4.0"
  "tqdm==4.70.1"
  "typer==0.29.2"
  "typing-inspection==0.4.5"
  "typing_extensions==4.16.0"
  "tzdata==2026.6"
  "urllib3==2.8.0"
  "wasabi==1.1.3"
  "weasel==1.0.1"
  "wrapt==2.5.2"
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
