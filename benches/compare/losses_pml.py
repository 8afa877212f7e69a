"""Forward + backward of the cases in benches/losses.rs with pytorch-metric-learning on torch
CPU, for the README's ratio.

    pip install torch pytorch-metric-learning      # or: eval "$(../shared/tools/torch-venv.sh)"
    python benches/compare/losses_pml.py [--threads 2] [--reps 20]

Same sizes (N = 384, D = 512, 96 classes x 4, unit rows) and defaults as the Rust bench.
Smooth-AP is timed twice: pytorch-metric-learning's SmoothAPLoss (whose semantics are wrong
when classes != samples per class, see ../shared/oracles/README.md) and a plain-torch
transcription of the original Smooth-AP code, which is what metron implements.
"""

import argparse
import statistics
import time

import torch
from pytorch_metric_learning import losses, miners

N, D, PER_CLASS = 384, 512, 4


def original_smooth_ap(x, num_id, tau=0.01):
    """The original Smooth-AP forward (query counted among its positives)."""

    def sigmoid(t):
        return 1.0 / (1.0 + torch.exp(torch.clamp(-t / tau, -50, 50)))

    b = x.shape[0]
    g = b // num_id
    mask = 1.0 - torch.eye(b)
    sim = x @ x.t()
    diff = sim.unsqueeze(1) - sim.unsqueeze(2)
    rank_all = (sigmoid(diff) * mask.unsqueeze(0)).sum(-1) + 1
    xs = x.view(num_id, g, -1)
    pos_mask = 1.0 - torch.eye(g)
    sim_pos = torch.bmm(xs, xs.transpose(1, 2))
    diff_pos = sim_pos.unsqueeze(2) - sim_pos.unsqueeze(3)
    rank_pos = (sigmoid(diff_pos) * pos_mask.unsqueeze(0).unsqueeze(0)).sum(-1) + 1
    ap = 0.0
    for c in range(num_id):
        block = rank_all[c * g:(c + 1) * g, c * g:(c + 1) * g]
        ap = ap + (rank_pos[c] / block).sum() / g / b
    return 1 - ap


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    base = torch.nn.functional.normalize(torch.randn(N, D), dim=1)
    labels = torch.arange(N) // PER_CLASS
    miner = miners.BatchHardMiner()
    triplet = losses.TripletMarginLoss(margin=0.05)
    cases = {
        "batch_hard_triplet": lambda x: triplet(x, labels, miner(x, labels)),
        "multi_similarity": lambda x: losses.MultiSimilarityLoss()(x, labels),
        "smooth_ap (PML SmoothAPLoss)": lambda x: losses.SmoothAPLoss(temperature=0.01)(x, labels),
        "smooth_ap (original code)": lambda x: original_smooth_ap(x, N // PER_CLASS),
        "ntxent": lambda x: losses.NTXentLoss(temperature=0.07)(x, labels),
    }
    for name, fn in cases.items():
        times = []
        for rep in range(args.reps + 2):
            x = base.clone().requires_grad_(True)
            start = time.perf_counter()
            fn(x).backward()
            elapsed = time.perf_counter() - start
            if rep >= 2:
                times.append(elapsed)
        print(f"{name}: median {statistics.median(times) * 1e3:.2f} ms over {args.reps}")


if __name__ == "__main__":
    main()
