"""ResNet-50 at batch 16, 224 x 224 in PyTorch eager on the CPU (or a CUDA device), the
reference for benches/backbones.rs: inference forward (no_grad, eval) and forward + backward
(train mode).

    eval "$(../shared/tools/torch-venv.sh)"
    python benches/compare/backbones_torch.py [--threads 2] [--reps 5] [--device cpu|cuda|cuda:N]
"""

import argparse
import statistics
import time

import torch
import torchvision


def features(m, x):
    x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
    return m.layer4(m.layer3(m.layer2(m.layer1(x))))


def timed(fn, reps, sync):
    fn()
    sync()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = torchvision.models.resnet50().to(device)
    x = torch.randn(16, 3, 224, 224).to(device)
    if device.type == "cuda":
        # Kernels run asynchronously: wait for them before reading the clock.
        def sync():
            torch.cuda.synchronize(device)
    else:
        def sync():
            pass

    def forward():
        model.eval()
        with torch.no_grad():
            features(model, x).sum().item()

    def forward_backward():
        model.train()
        model.zero_grad(set_to_none=True)
        features(model, x).mean().backward()

    print(f"device: {device}")
    print(f"forward: median {timed(forward, args.reps, sync):.3f} s")
    print(f"forward_backward: median {timed(forward_backward, args.reps, sync):.3f} s")


if __name__ == "__main__":
    main()
