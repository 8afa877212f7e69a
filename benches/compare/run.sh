#!/usr/bin/env bash
# Times `metron knn` against faiss-cpu's exact IndexFlatIP on the same random unit vectors and
# prints the ratio. One line to run everything:
#
#     bash benches/compare/run.sh            # N=50000 D=512 K=10; N=200000 D=128 bash ... too
#
# Needs a Python with faiss-cpu, numpy and threadpoolctl (PYTHON=/path/to/python to choose it;
# `pip install faiss-cpu numpy threadpoolctl`). Both sides use all cores (THREADS, default
# nproc). Each side prints its kernel path: metron the gemm crate's instruction set and its
# share of the measured FMA peak, faiss its OpenBLAS's architecture.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${N:-50000}
D=${D:-512}
K=${K:-10}
THREADS=${THREADS:-$(nproc)}
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c "import faiss, numpy" 2>/dev/null; then
  echo "$PYTHON cannot import faiss and numpy: pip install faiss-cpu numpy (or set PYTHON)" >&2
  exit 1
fi
cargo build --release --quiet --bin metron
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
# One class per item and no noise: independent uniform unit vectors.
target/release/metron synth --out "$data" --n "$N" --dim "$D" --classes "$N" --noise 0 --seed 1 >/dev/null
# GNU time's %M is the peak RSS in KiB.
metron_line=$(RAYON_NUM_THREADS=$THREADS /usr/bin/time -f 'peak_kib=%M' \
  target/release/metron knn --embeddings "$data/embeddings.npy" --k "$K" --quiet --peak 2>&1)
faiss_line=$("$PYTHON" benches/compare/knn_faiss.py "$data/embeddings.npy" --k "$K" --threads "$THREADS")
# faiss-cpu's bundled OpenBLAS falls back to generic kernels on CPUs it does not know; compare
# with its AVX-512 kernels then, and say so.
if [[ $faiss_line == *Prescott* ]] && grep -q avx512f /proc/cpuinfo && [[ -z ${OPENBLAS_CORETYPE:-} ]]; then
  echo "faiss (its OpenBLAS's own choice): $faiss_line"
  faiss_line=$(OPENBLAS_CORETYPE=SkylakeX "$PYTHON" benches/compare/knn_faiss.py "$data/embeddings.npy" --k "$K" --threads "$THREADS")
  faiss_line="$faiss_line (OPENBLAS_CORETYPE=SkylakeX)"
fi
echo "metron: $metron_line" | tr '\n' ' '; echo
echo "$faiss_line"
m=$(echo "$metron_line" | sed -n 's/.*: \([0-9.]*\) s .*/\1/p')
f=$(echo "$faiss_line" | sed -n 's/.*: \([0-9.]*\) s .*/\1/p')
awk -v m="$m" -v f="$f" -v n="$N" -v d="$D" \
  'BEGIN { printf "N=%d d=%d: metron %.2f s, faiss %.2f s, metron is %.2fx the speed of faiss\n", n, d, m, f, f / m }'
