"""torchvision's DataLoader on the JPEGs `cargo bench --bench data` writes, the reference for
benches/data.rs: PIL decode + RandomResizedCrop(224) + RandomHorizontalFlip + ToTensor +
Normalize, batch 64, the same number of workers as cores. Prints images per second (median
over --reps epochs of 512 images, after one warm-up epoch).

    eval "$(../shared/tools/torch-venv.sh)"
    python benches/compare/data_torchvision.py [--workers 2] [--reps 5]
"""

import argparse
import pathlib
import statistics
import time

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms


class Jpegs(Dataset):
    def __init__(self, files, tf):
        self.files, self.tf = files, tf

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        return self.tf(Image.open(self.files[i]).convert("RGB")), i % 32


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="target/bench-data/jpeg")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    files = sorted(pathlib.Path(args.dir).glob("*.jpg"))
    assert files, f"no JPEGs in {args.dir}: run `cargo bench --bench data` first"
    tf = transforms.Compose([
        transforms.RandomResizedCrop(224),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    loader = DataLoader(Jpegs(files, tf), batch_size=64, num_workers=args.workers,
                        persistent_workers=args.workers > 0, prefetch_factor=2 if args.workers else None)

    def epoch():
        n = 0
        for x, _ in loader:
            n += x.shape[0]
        return n

    epoch()
    rates = []
    for _ in range(args.reps):
        t = time.perf_counter()
        n = epoch()
        rates.append(n / (time.perf_counter() - t))
    print(f"torchvision DataLoader, {args.workers} workers: {statistics.median(rates):.0f} images/s "
          f"(median of {args.reps} epochs of {len(files)})")


if __name__ == "__main__":
    main()
