#!/usr/bin/env bash
# GPU check on a CUDA machine (sized for one H200 and 16 cores, under 10 minutes from nothing
# built): the backend parity tests on cuda:0 (CubeCL) and tch:cuda:0 (LibTorch), the backbone
# and kNN benches, and PyTorch's ResNet-50 on the GPU for comparison.
#
#   scripts/gpu-check.sh OUT_DIR
#
# OUT_DIR receives summary.txt (each step's status and time), one log per step, nvidia-smi.txt
# and criterion's results (criterion/). Every step runs even if an earlier one failed; the exit
# status is non-zero if any failed. Each step is cut off so that the whole stays under
# GPU_CHECK_BUDGET_S seconds (default 570).
#
# Needs: an NVIDIA driver; ../shared/tools/torch-venv.sh (or METRON_SHARED=DIR) for PyTorch
# 2.9.0 with its CUDA libraries (METRON_TORCH_VENV=DIR reuses an existing venv); and, without
# network access, a cargo registry cache and CubeCL's LLVM bundle already in place (the `cuda`
# feature's build script downloads that bundle).
#
# One optimised build serves everything: the tests run with `--profile bench` (optimised, the
# release settings) like the benches, with the same features (cuda,tch) -- building the
# benches with `--features cuda` alone would rebuild the whole Burn stack for a second feature
# set. The benches themselves run on the CPU backend (backbones: Burn flex; knn: the
# CPU GEMM engine), so their numbers are the 16 cores', next to PyTorch's GPU numbers.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 OUT_DIR" >&2
  exit 2
fi
mkdir -p "$1"
out=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."

budget=${GPU_CHECK_BUDGET_S:-570}
start=$SECONDS
failed=0
: > "$out/summary.txt"

note() {
  echo "[$((SECONDS - start)) s] $*" | tee -a "$out/summary.txt"
}

# step NAME CMD...: runs CMD with what is left of the budget, output to OUT_DIR/NAME.log.
step() {
  local name=$1
  shift
  local left=$((budget - (SECONDS - start)))
  if [ "$left" -le 5 ]; then
    note "$name: SKIPPED (time budget spent)"
    failed=1
    return 0
  fi
  note "$name: start ($left s left)"
  local rc=0
  timeout --kill-after=10 "$left" "$@" > "$out/$name.log" 2>&1 || rc=$?
  if [ "$rc" -eq 0 ]; then
    note "$name: ok"
  else
    if [ "$rc" -eq 124 ]; then
      note "$name: TIMED OUT"
    else
      note "$name: FAILED (exit $rc)"
    fi
    tail -n 20 "$out/$name.log" | sed 's/^/    /' | tee -a "$out/summary.txt"
    failed=1
  fi
}

shared=${METRON_SHARED:-../shared}
if [ ! -d "$shared" ] && [ -d shared ]; then
  shared=shared
fi
export CARGO_TERM_COLOR=never CARGO_INCREMENTAL=0
target_dir=${CARGO_TARGET_DIR:-target}
features=cuda,tch

nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || note "nvidia-smi failed (see nvidia-smi.txt)"

# LibTorch for the tch backend (torch-sys builds against the venv's torch; the test binaries
# need its lib/ on LD_LIBRARY_PATH), and torch + torchvision for the PyTorch bench.
torch_env=$(bash "$shared/tools/torch-venv.sh" 2> "$out/torch-venv.log") || {
  note "torch venv: FAILED (see torch-venv.log)"
  exit 1
}
eval "$torch_env"
note "torch venv: $VIRTUAL_ENV"

step build_tests cargo test --profile bench --features "$features" --test backend_parity --no-run
step build_benches cargo bench --features "$features" --bench backbones --bench knn --no-run

# The parity tests on every device the build has: tch (CPU), tch:cuda:0 and cuda:0.
step backend_parity env METRON_TEST_CUDA=1 \
  cargo test --profile bench --features "$features" --test backend_parity -- --nocapture

# Criterion flags keep the groups that do not fix their own times short.
criterion_flags=(--warm-up-time 1 --measurement-time 5)
step bench_backbones \
  cargo bench --features "$features" --bench backbones -- "${criterion_flags[@]}"
step bench_knn_small \
  cargo bench --features "$features" --bench knn -- knn_small "${criterion_flags[@]}"

for mode in infer train; do
  step "torch_resnet50_${mode}_cuda" \
    python benches/compare/peer.py --job backbone --peer torch --model resnet50 --mode "$mode" \
      --batch 16 --device cuda --threads 16 --reps 10
done

mkdir -p "$out/criterion"
for group in resnet50_b16_224 knn_small knn_small_blocking; do
  if [ -d "$target_dir/criterion/$group" ]; then
    cp -r "$target_dir/criterion/$group" "$out/criterion/"
  fi
done

note "done in $((SECONDS - start)) s$([ "$failed" -ne 0 ] && echo ', with failures' || true)"
exit "$failed"
