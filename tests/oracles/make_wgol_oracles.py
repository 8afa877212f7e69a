"""Writes wgol.json: reference values for metron-localization (WGOL, spec s. 2.2-2.7).

    eval "$(../shared/tools/torch-venv.sh)"        # torch 2.9.0, NumPy
    python tests/oracles/make_wgol_oracles.py [OUT_DIR]   # default: this script's folder

Everything is written here from the spec's formulas (../shared/specs/seed-systems.md s. 2),
in float64 on float32 inputs, with PyTorch's autograd for the gradients:

    hsc          first / high-order self-correlation of two stages, the structure map
                 S = S_4 + S_5 and the edge code E
    sos_target   SOS pseudo ground truth (per-image CAM min-max, vec(cam)^T S, ReLU,
                 batch-global min-max, TC and BC segmentation)
    sos_bce      BCE-with-logits against the TC target: value, gradient
    ra_loss      RA loss: value, gradient w.r.t. the class maps
    wgol_loss    CE(GAP) + 0.5 BCE + 1.0 RA: value, gradients w.r.t. class and SOS maps
    attention    structure-aware self-attention (no residual, no norm, no dropout):
                 output, gradients w.r.t. the features and fc_q's weight
    boxes        CAM, SCG and SOS boxes at several thresholds, with cv2.INTER_LINEAR's
                 formula written out in NumPy; constant and empty maps
    metrics      +1-pixel IoU, Top-1 / Top-5 / GT-known counts and the top-1 error
                 breakdown (class, multi-instance, part, more, other) on multi-box images

Inputs come from a generator with a literal seed, so a rerun writes the same file.
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)
GEN = torch.Generator().manual_seed(20261207)
F64 = torch.float64


def randn(*shape, scale=1.0):
    """float32 normal draws, returned as float64 (what the Rust side reads exactly)."""
    return (torch.randn(*shape, generator=GEN, dtype=torch.float32) * scale).to(F64)


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


# ---- HSC (spec s. 2.2) ---------------------------------------------------------------
def colnorm(a, eps):
    return a / (a.sum(dim=1, keepdim=True) + eps)


def hsc(f, fo_th=0.2, so_th=1.0, order=2):
    b, c, h, w = f.shape
    n = h * w
    t = f.permute(0, 2, 3, 1).reshape(b, n, c)
    t = t / (t.norm(dim=2, keepdim=True) + 1e-10)
    a = torch.relu(t @ t.transpose(1, 2))
    a = torch.where(a < fo_th, torch.zeros_like(a), a)
    fo = colnorm(a, 1e-5)
    a2 = a * (1 - torch.eye(n, dtype=F64))
    p = colnorm(a2, 1e-5)
    so = p.clone()
    for _ in range(order - 1):
        so = colnorm(so @ p, 1e-10)
    so = torch.where(so < so_th / n, torch.zeros_like(so), so)
    return fo, so


def structure(stages, weight=1.0):
    return sum(colnorm(torch.max(fo, weight * so), 1e-10) for fo, so in stages)


def edge(stages):
    return sum(torch.max(fo, so) for fo, so in stages)


# ---- SOS target and losses (spec s. 2.4) --------------------------------------------------
def minmax_per_image(x, eps):
    b = x.shape[0]
    v = x.reshape(b, -1)
    lo = v.min(dim=1, keepdim=True).values
    hi = v.max(dim=1, keepdim=True).values
    return ((v - lo) / (hi - lo + eps)).reshape(x.shape)


def sos_target(cls_maps, labels, s, method, fg=0.2, bg=0.1):
    b, k, h, w = cls_maps.shape
    cam = torch.relu(cls_maps.detach())[torch.arange(b), labels]
    cam = minmax_per_image(cam, 1e-10)
    m = torch.relu(cam.reshape(b, 1, h * w) @ s).reshape(b, h, w)
    m = (m - m.min()) / (m.max() - m.min() + 1e-10)
    if method == "BC":
        return (m >= fg).to(F64)
    m = torch.where(m >= fg, torch.ones_like(m), m)
    return torch.where(m <= bg, torch.zeros_like(m), m)


def bce(logits, target):
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, target)


def ra_loss(cls_maps, labels, th_bg=0.1, gap=0.2):
    b = cls_maps.shape[0]
    p = torch.softmax(cls_maps, dim=1)
    v = minmax_per_image(torch.var(p, dim=1).detach(), 1e-15)
    bg = (v < th_bg).to(F64)
    fg = (v > th_bg + gap).to(F64)
    s = torch.sigmoid(cls_maps[torch.arange(b), labels])
    return torch.mean(s * bg + (1 - s) * fg)


# ---- attention (spec s. 2.1) ----------------------------------------------------------
def attention(x, e, wq, bq, wk, bk, wv, bv, wo, bo, heads, dk):
    b, c, h, w = x.shape
    n = h * w
    t = x.reshape(b, c, n).permute(0, 2, 1)

    def split(wt, bias):
        return (t @ wt.T + bias).reshape(b, n, heads, dk).permute(0, 2, 1, 3)

    q, k, v = split(wq, bq), split(wk, bk), split(wv, bv)
    logits = q @ k.transpose(2, 3) / np.sqrt(dk) + e.reshape(b, 1, n, n)
    out = (torch.softmax(logits, -1) @ v).permute(0, 2, 1, 3).reshape(b, n, heads * dk)
    out = out @ wo.T + bo
    return out.transpose(1, 2).reshape(b, c, h, w)


# ---- boxes (spec s. 2.7) --------------------------------------------------------------
def resize_linear(m, out_h, out_w):
    """cv2.resize(m, (out_w, out_h)) with INTER_LINEAR on a float map, from its definition:
    output centre (d + 0.5) * in / out - 0.5, floor, clamp at the edges."""

    def taps(n_in, n_out):
        res = []
        for d in range(n_out):
            f = (d + 0.5) * n_in / n_out - 0.5
            i0 = int(np.floor(f))
            wgt = f - i0
            if i0 < 0:
                i0, wgt = 0, 0.0
            if i0 >= n_in - 1:
                res.append((n_in - 1, n_in - 1, 0.0))
            else:
                res.append((i0, i0 + 1, wgt))
        return res

    ys, xs = taps(m.shape[0], out_h), taps(m.shape[1], out_w)
    out = np.zeros((out_h, out_w))
    for y, (y0, y1, wy) in enumerate(ys):
        for x, (x0, x1, wx) in enumerate(xs):
            top = m[y0, x0] * (1 - wx) + m[y0, x1] * wx
            bot = m[y1, x0] * (1 - wx) + m[y1, x1] * wx
            out[y, x] = top * (1 - wy) + bot * wy
    return out


def minmax(m):
    lo, hi = m.min(), m.max()
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)


def union_box(m, th):
    fg = m >= th
    rows, cols = np.any(fg, axis=1), np.any(fg, axis=0)
    if not rows.any():
        return [0, 0, 0, 0]
    y = np.where(rows)[0]
    x = np.where(cols)[0]
    return [int(x[0]), int(y[0]), int(x[-1]), int(y[-1])]


def cam_box(cam, out, th):
    return union_box(resize_linear(minmax(cam), *out), th)


def scg_box(cam, s, out, th):
    h, w = cam.shape
    m = np.maximum(minmax(cam).reshape(1, -1) @ s, 0).reshape(h, w)
    return union_box(resize_linear(minmax(m), *out), th)


def sos_box(logits, out, th):
    p = 1 / (1 + np.exp(-logits))
    return union_box(np.maximum(resize_linear(p, *out), 0), th)


def iou(a, b):
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if iw <= 0 or ih <= 0:
        return 0.0
    area = lambda r: max(r[2] - r[0] + 1, 0) * max(r[3] - r[1] + 1, 0)
    inter = iw * ih
    return inter / (area(a) + area(b) - inter)


def overlap(a, b, of):
    iw = max(min(a[2], b[2]) - max(a[0], b[0]) + 1, 0)
    ih = max(min(a[3], b[3]) - max(a[1], b[1]) + 1, 0)
    return iw * ih / ((of[2] - of[0] + 1) * (of[3] - of[1] + 1))


def top1_miss(im):
    """The error breakdown of the top-1 pair (spec s. 2.7; `get_badcase_detail`)."""
    if im["top"][0] != im["gt_class"]:
        return "class_wrong"
    b, gts = im["boxes"][0], im["gt_boxes"]
    ious = [iou(b, g) for g in gts]
    best = max(range(len(gts)), key=lambda i: (ious[i], -i)) if max(ious) > 0 else 0
    if ious[best] > 0.5:
        return None
    if len(gts) > 1 and sum(overlap(b, g, g) > 0.3 for g in gts) > 1:
        return "multi_instance"
    g = gts[best]
    if overlap(b, g, b) > 0.5:
        return "part"
    if overlap(b, g, g) >= 0.7:
        return "more"
    return "other"


def main():
    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent
    res = {"generator": f"tests/oracles/make_wgol_oracles.py; torch {torch.__version__}"}

    # HSC: two stages of post-ReLU features, 6 channels on a 3 x 3 map, batch 2.
    f4 = torch.relu(randn(2, 6, 3, 3))
    f5 = torch.relu(randn(2, 6, 3, 3))
    st = [hsc(f4), hsc(f5)]
    s = structure(st)
    res["hsc"] = {
        "f4": flat(f4), "f5": flat(f5), "shape": [2, 6, 3, 3],
        "fo4": flat(st[0][0]), "so4": flat(st[0][1]),
        "fo5": flat(st[1][0]), "so5": flat(st[1][1]),
        "structure": flat(s), "edge": flat(edge(st)),
    }

    # SOS target, BCE, RA, the total: 4 classes on the same 3 x 3 map.
    cls_maps = randn(2, 4, 3, 3, scale=2.0)
    labels = torch.tensor([1, 3])
    tc = sos_target(cls_maps, labels, s, "TC")
    bc = sos_target(cls_maps, labels, s, "BC")
    res["sos_target"] = {
        "cls_maps": flat(cls_maps), "shape": [2, 4, 3, 3], "labels": labels.tolist(),
        "tc": flat(tc), "bc": flat(bc),
    }
    logits = randn(2, 3, 3, scale=2.0).requires_grad_(True)
    l = bce(logits, tc)
    l.backward()
    res["sos_bce"] = {"logits": flat(logits), "loss": float(l.detach()), "grad": flat(logits.grad)}
    cm = cls_maps.clone().requires_grad_(True)
    l = ra_loss(cm, labels)
    l.backward()
    res["ra_loss"] = {"loss": float(l.detach()), "grad": flat(cm.grad)}
    cm = cls_maps.clone().requires_grad_(True)
    lg = logits.detach().clone().requires_grad_(True)
    ce = torch.nn.functional.cross_entropy(cm.mean(dim=(2, 3)), labels)
    total = ce + 0.5 * bce(lg, sos_target(cm, labels, s, "TC")) + 1.0 * ra_loss(cm, labels)
    total.backward()
    res["wgol_loss"] = {
        "ce": float(ce.detach()), "total": float(total.detach()),
        "grad_cls_maps": flat(cm.grad), "grad_sos_maps": flat(lg.grad),
    }

    # Attention: d_model 4, 2 heads of width 3, a 2 x 3 map, batch 2.
    heads, dk, c = 2, 3, 4
    x = randn(2, c, 2, 3).requires_grad_(True)
    e = randn(2, 6, 6, scale=0.5)
    wq = randn(heads * dk, c, scale=0.5).requires_grad_(True)
    params = {
        "wq": wq, "bq": randn(heads * dk, scale=0.1),
        "wk": randn(heads * dk, c, scale=0.5), "bk": randn(heads * dk, scale=0.1),
        "wv": randn(heads * dk, c, scale=0.5), "bv": randn(heads * dk, scale=0.1),
        "wo": randn(c, heads * dk, scale=0.5), "bo": randn(c, scale=0.1),
    }
    out = attention(x, e, *params.values(), heads, dk)
    r = randn(*out.shape)
    (out * r).sum().backward()
    res["attention"] = {
        "heads": heads, "head_dim": dk, "x": flat(x), "x_shape": [2, c, 2, 3], "edge": flat(e),
        **{k: flat(v) for k, v in params.items()},
        "out": flat(out), "r": flat(r), "grad_x": flat(x.grad), "grad_wq": flat(wq.grad),
    }

    # Boxes: hand-shaped 4 x 5 maps resized to 16 x 20.
    cam = np.zeros((4, 5))
    cam[1, 1], cam[1, 2], cam[2, 2], cam[3, 4] = 3.0, 2.0, 1.5, 0.66
    # A structure map that links nearby locations (as a real one links parts of one object),
    # with noise; an SOS map with a blob around (row 1, column 3).
    grid = np.array([(r, c) for r in range(4) for c in range(5)], dtype=np.float64)
    d2 = ((grid[:, None, :] - grid[None, :, :]) ** 2).sum(-1)
    sm = np.exp(-d2 / 2.0) * (0.5 + 0.5 * np.abs(randn(20, 20).numpy()))
    sm = sm / sm.sum(axis=0, keepdims=True)
    blob = np.sqrt(((grid - np.array([1.0, 3.0])) ** 2).sum(-1)).reshape(4, 5)
    sos = 2.0 - 1.5 * blob + 0.3 * randn(4, 5).numpy()
    ths = [0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5]
    out_hw = (16, 20)
    res["boxes"] = {
        "cam": cam.reshape(-1).tolist(), "structure": sm.reshape(-1).tolist(),
        "sos": sos.reshape(-1).tolist(), "map_hw": [4, 5], "out_hw": list(out_hw),
        "thresholds": ths,
        "cam_boxes": [cam_box(cam, out_hw, t) for t in ths],
        "scg_boxes": [scg_box(cam, sm, out_hw, t) for t in ths],
        "sos_boxes": [sos_box(sos, out_hw, t) for t in ths],
        "constant_map_box": cam_box(np.full((4, 5), 2.0), out_hw, 0.1),
        "empty_sos_box": sos_box(np.full((4, 5), -20.0), out_hw, 0.5),
    }

    # Metrics: four images, the second and fourth with two ground-truth boxes.
    images = [
        {"gt_class": 2, "gt_boxes": [[10, 10, 49, 59]], "top": [2, 0, 1, 3, 4],
         "boxes": [[12, 8, 50, 60]] * 5, "gt_known": [12, 8, 50, 60]},
        {"gt_class": 1, "gt_boxes": [[0, 0, 19, 19], [30, 30, 69, 69]], "top": [0, 1, 2, 3, 4],
         "boxes": [[31, 29, 70, 66], [31, 29, 70, 66], [0, 0, 5, 5], [0, 0, 5, 5], [0, 0, 5, 5]],
         "gt_known": [31, 29, 70, 66]},
        {"gt_class": 4, "gt_boxes": [[0, 0, 9, 9]], "top": [4, 3, 2, 1, 0],
         "boxes": [[0, 0, 19, 9]] * 5, "gt_known": [0, 0, 19, 9]},
        {"gt_class": 3, "gt_boxes": [[5, 5, 24, 24], [40, 0, 59, 19]], "top": [1, 2, 0, 4, 5],
         "boxes": [[40, 0, 58, 19]] * 5, "gt_known": [40, 0, 58, 19]},
        # Right class, wrong boxes: a part, two objects at once, somewhere else.
        {"gt_class": 0, "gt_boxes": [[0, 0, 39, 39]], "top": [0, 1, 2, 3, 4],
         "boxes": [[5, 5, 20, 20]] * 5, "gt_known": [5, 5, 20, 20]},
        {"gt_class": 0, "gt_boxes": [[0, 0, 19, 19], [25, 0, 44, 19]], "top": [0, 1, 2, 3, 4],
         "boxes": [[5, 0, 40, 19]] * 5, "gt_known": [5, 0, 40, 19]},
        {"gt_class": 0, "gt_boxes": [[0, 0, 19, 19]], "top": [0, 1, 2, 3, 4],
         "boxes": [[15, 15, 60, 60]] * 5, "gt_known": [15, 15, 60, 60]},
    ]
    counts = dict(top1_cls=0, top5_cls=0, top1_loc=0, top5_loc=0, gt_known_loc=0)
    misses = dict(class_wrong=0, multi_instance=0, part=0, more=0, other=0)
    ious = []
    for im in images:
        ok = [max(iou(b, g) for g in im["gt_boxes"]) > 0.5 for b in im["boxes"]]
        right = [c == im["gt_class"] for c in im["top"]]
        counts["top1_cls"] += right[0]
        counts["top5_cls"] += any(right[:5])
        counts["top1_loc"] += right[0] and ok[0]
        counts["top5_loc"] += any(r and o for r, o in zip(right[:5], ok[:5]))
        counts["gt_known_loc"] += max(iou(im["gt_known"], g) for g in im["gt_boxes"]) > 0.5
        ious.append([iou(im["gt_known"], g) for g in im["gt_boxes"]])
        miss = top1_miss(im)
        if miss:
            misses[miss] += 1
    res["metrics"] = {"images": images, "counts": {k: int(v) for k, v in counts.items()},
                      "misses": misses,
                      "gt_known_ious": ious}

    path = out_dir / "wgol.json"
    path.write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
