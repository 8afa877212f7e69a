#!/usr/bin/env bash
# The benchmark suite in one command: every metron job beside its peer in the same session,
# written up as docs/benchmarks.md (+ docs/benchmarks-ratios.png, docs/benchmarks-scaling.png).
#
#     scripts/bench.sh --quick      # a few minutes: small sizes, two rounds
#     scripts/bench.sh              # about an hour on 2 cores: the papers' batch of 16, the cgd example
#     scripts/bench.sh --quick --filter knn --out /tmp/knn.md    # one family, elsewhere
#
# The peers run in a Python venv this script makes once (METRON_BENCH_VENV, default
# ~/.cache/metron/bench-venv) with these packages, about 1 GB of CPU wheels:
#   torch==2.9.0 torchvision==0.24.0 (PyTorch's CPU index), timm, faiss-cpu,
#   pytorch-metric-learning, threadpoolctl, numpy, pillow.
# BENCH_PYTHON=/path/to/python uses an existing Python with them instead.
# Other flags go to `metron-bench suite` (--threads N, --fail-on-regression, --data-dir D).
set -euo pipefail
cd "$(dirname "$0")/.."
mode_args=("$@")
quick=0
for a in "$@"; do [[ $a == --quick ]] && quick=1; done

need='import torch, torchvision, timm, faiss, pytorch_metric_learning, threadpoolctl, numpy, PIL'
if [[ -n ${BENCH_PYTHON:-} ]]; then
  python=$BENCH_PYTHON
else
  venv=${METRON_BENCH_VENV:-$HOME/.cache/metron/bench-venv}
  python=$venv/bin/python
  if ! "$python" -c "$need" >/dev/null 2>&1; then
    echo "making the peers' venv in $venv (once)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check \
      --index-url https://download.pytorch.org/whl/cpu torch==2.9.0 torchvision==0.24.0
    "$venv/bin/pip" install -q --disable-pip-version-check \
      timm faiss-cpu pytorch-metric-learning threadpoolctl numpy pillow
  fi
fi
if ! "$python" -c "$need" 2>/dev/null; then
  echo "$python cannot import the peers' packages ($need)" >&2
  exit 2
fi

target=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet -p metron-bench
extra=()
if [[ $quick == 0 ]]; then
  cargo build --release --quiet --example cgd
  extra+=(--cgd-binary "$target/release/examples/cgd")
fi
exec "$target/release/metron-bench" suite --python "$python" "${extra[@]}" "${mode_args[@]}"
