"""Reference outputs of the CVUSA/CVACT polar transform for
crates/metron-datasets/tests/polar_parity.rs.

The transform is the one SAFA (Shi et al., NeurIPS 2019) used to make the polar aerial files
(script/data_preparation.py of shiyujiao/cross_view_localization_SAFA); this is an independent
NumPy implementation of the same definition:

    r     = R / H * (H - 1 - i),   theta = 2 pi j / W
    x     = cx + r cos(theta)      (a row of the aerial image)
    y     = cy - r sin(theta)      (a column)

sampled bilinearly from the four neighbours trunc(x) + {0, 1}, trunc(y) + {0, 1} (truncation
toward zero, as astype(int)), each read as 0 outside the image. Defaults: (cx, cy) =
(rows / 2, cols / 2), R = min(rows, cols) / 2.

Needs numpy only.  Usage: python tests/parity/polar_reference.py OUT_DIR
Writes polar_input.npy (37 x 37 x 3 float64), polar_output_{H}_{W}.npy for each default-geometry
size, polar_output_custom.npy and polar_params.json (the sizes and the custom parameters).
"""

import json
import sys
from pathlib import Path

import numpy as np

SIZES = [(8, 32), (16, 64)]
# A centre off the middle and a radius past the edges, so that samples fall outside the image
# (zero padding) and at negative coordinates (truncation toward zero differs from the floor).
CUSTOM = {"height": 12, "width": 40, "center": [15.25, 20.5], "radius": 22.0}


def gather(img, rows_idx, cols_idx):
    """img[rows_idx, cols_idx] with zeros where an index is outside the image."""
    n_rows, n_cols = img.shape[:2]
    inside = (rows_idx >= 0) & (rows_idx < n_rows) & (cols_idx >= 0) & (cols_idx < n_cols)
    r = np.clip(rows_idx, 0, n_rows - 1)
    c = np.clip(cols_idx, 0, n_cols - 1)
    return np.where(inside[..., None], img[r, c], 0.0)


def bilinear(img, x, y):
    x0 = np.trunc(x).astype(np.int64)
    y0 = np.trunc(y).astype(np.int64)
    x1, y1 = x0 + 1, y0 + 1
    # Weights as floats of the integer neighbours, in the reference's grouping.
    wx_lo, wx_hi = (x1 - x)[..., None], (x - x0)[..., None]
    wy_lo, wy_hi = (y1 - y)[..., None], (y - y0)[..., None]
    along_y0 = wx_lo * gather(img, x0, y0) + wx_hi * gather(img, x1, y0)
    along_y1 = wx_lo * gather(img, x0, y1) + wx_hi * gather(img, x1, y1)
    return wy_lo * along_y0 + wy_hi * along_y1


def polar(img, height, width, center=None, radius=None):
    n_rows, n_cols = img.shape[:2]
    cx, cy = center if center is not None else (n_rows / 2.0, n_cols / 2.0)
    radius = radius if radius is not None else min(n_rows, n_cols) / 2.0
    i = np.arange(height).reshape(-1, 1)
    j = np.arange(width).reshape(1, -1)
    r = radius / height * (height - 1 - i)
    theta = 2 * np.pi * j / width
    x = cx + r * np.cos(theta)
    y = cy - r * np.sin(theta)
    return bilinear(img, x, y)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: polar_reference.py OUT_DIR")
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(37, 37, 3)).astype(np.float64)
    np.save(out / "polar_input.npy", img)
    for h, w in SIZES:
        np.save(out / f"polar_output_{h}_{w}.npy", polar(img, h, w))
    c = CUSTOM
    np.save(
        out / "polar_output_custom.npy",
        polar(img, c["height"], c["width"], c["center"], c["radius"]),
    )
    # Written last: the Rust test takes its presence to mean the set is complete.
    params = {"sizes": [list(s) for s in SIZES], "custom": CUSTOM}
    (out / "polar_params.json").write_text(json.dumps(params, indent=2) + "\n")


if __name__ == "__main__":
    main()
