"""Exact self-kNN with faiss-cpu's IndexFlatIP, the reference point for `metron knn`.

Reads the same .npy that `metron synth` writes, searches k + 1 neighbours of every row with
inner product (cosine on unit vectors) and drops each row's own hit, as evaluation code built
on faiss does. Prints one line: rows, k, seconds, queries/s, peak RSS, and the kernel path of
the OpenBLAS that faiss-cpu bundles (its `sgemm` does the work): faiss-cpu 1.15.1 ships
OpenBLAS 0.3.15, which does not know Intel's newest Xeons (family 6 model 207) and falls back
to its generic "Prescott" kernels there, about 5x slower; `OPENBLAS_CORETYPE=SkylakeX` selects
the AVX-512 kernels.

    pip install faiss-cpu numpy threadpoolctl
    python benches/compare/knn_faiss.py EMBEDDINGS.npy [--k 10] [--threads 2]
"""

import argparse
import resource
import time

import faiss
import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("embeddings")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    faiss.omp_set_num_threads(args.threads)
    x = np.ascontiguousarray(np.load(args.embeddings), dtype=np.float32)
    # Cosine, as `metron knn --metric cosine` computes it.
    faiss.normalize_L2(x)
    start = time.perf_counter()
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    _, idx = index.search(x, args.k + 1)
    # Drop the query itself wherever it appears (not always column 0 when duplicates tie).
    own = idx == np.arange(len(x))[:, None]
    keep = np.where(own.any(axis=1, keepdims=True), ~own, np.arange(args.k + 1) < args.k)
    idx = idx[keep].reshape(len(x), args.k)
    secs = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"faiss IndexFlatIP: {len(x)} queries, top {args.k}: {secs:.2f} s "
        f"({len(x) / secs:.0f} queries/s), peak RSS {peak_mb:.0f} MB, "
        f"BLAS {blas_kernels()}"
    )


def blas_kernels() -> str:
    """The architecture faiss's own OpenBLAS runs its kernels for."""
    try:
        import threadpoolctl
    except ImportError:
        return "unknown (pip install threadpoolctl)"
    for lib in threadpoolctl.threadpool_info():
        if lib.get("internal_api") == "openblas" and "faiss" in lib.get("filepath", ""):
            return f"OpenBLAS {lib.get('version')} {lib.get('architecture')}"
    return "not OpenBLAS"



if __name__ == "__main__":
    main()
