#!/usr/bin/env bash
# GPU throughput check: random-weight DistilBERT-sized and BERT-base-sized classifiers, bf16 autocast, synthetic
# IMDb-like lengths, three batching strategies (see benchmarks/gpu_throughput.py). Needs a CUDA machine with
# Python 3 and pip access to PyPI (no Hub access, no data). Meant to finish well inside five minutes.
#
#   bash benchmarks/gpu_check.sh                      # installs torch/transformers/accelerate if missing, runs
#   bash benchmarks/gpu_check.sh --batch_size 64      # extra flags go to gpu_throughput.py
#
# Environment: PYTHON (default python3), VENV (where to install when needed, default /tmp/gpu-check-venv),
# TIME_LIMIT_S (limit for the measurement itself, default 200).
# Result lines (gpu_train ..., gpu_ratio ...) go to stdout, everything else to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-/tmp/gpu-check-venv}
TIME_LIMIT_S=${TIME_LIMIT_S:-200}

has_stack() {
    "$1" -c 'import torch, transformers; assert torch.cuda.is_available()' >/dev/null 2>&1
}

if ! has_stack "$PYTHON"; then
    if [ -x "$VENV/bin/python" ] && has_stack "$VENV/bin/python"; then
        PYTHON="$VENV/bin/python"
    else
        echo "installing torch transformers accelerate into $VENV" >&2
        started=$(date +%s)
        # --system-site-packages: a CUDA torch already installed system-wide is reused, not downloaded again.
        if "$PYTHON" -m venv --system-site-packages "$VENV" >&2; then
            "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
            "$VENV/bin/python" -m pip install --quiet torch transformers accelerate >&2
            PYTHON="$VENV/bin/python"
        else
            echo "no venv module: installing with pip --user" >&2
            "$PYTHON" -m pip install --quiet --user torch transformers accelerate >&2
        fi
        echo "installed in $(($(date +%s) - started))s" >&2
    fi
fi

has_stack "$PYTHON" || { echo "error: torch cannot see a CUDA device" >&2; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >&2 || true
"$PYTHON" -c 'import torch, transformers; print("torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__)' >&2

timeout "$TIME_LIMIT_S" "$PYTHON" benchmarks/gpu_throughput.py --device cuda "$@"
