"""Writes JSON reference values ("oracles") for metron's Rust numeric tests.

    eval "$(../shared/tools/torch-venv.sh)"        # torch 2.9.0
    pip install pytorch-metric-learning==2.9.0
    python tests/oracles/make_review_oracles.py [OUT_DIR]   # default: this script's folder

Files written:
    optim_steps.json         torch.optim.Adam / SGD, three steps on given gradients
    batch_norm_running.json  BatchNorm1d/2d running statistics and outputs in train mode
    triplet_semihard.json    PML TripletMarginMiner(semihard) + TripletMarginLoss, value and grad
    duplicates.json          PML ContrastiveLoss / TripletMarginLoss on batches with exact
                             duplicate embeddings (zero distances), value and grad
    miners.json              PML miners feeding losses: BatchHardMiner -> TripletMarginLoss
                             (also against a reference set), MultiSimilarityMiner ->
                             MultiSimilarityLoss; mined tuples, value and grad

Every input comes from a generator with a literal seed and everything runs on the CPU with
one thread, so a rerun reproduces the files byte for byte (same torch / PML versions).
References are computed in float64; the `_f32` variants run the same calls on the float32
cast of the same inputs, so a Rust test can check its f32 path against f32 arithmetic rather
than against f64 with a loose tolerance.
"""

import json
import sys
from pathlib import Path

import pytorch_metric_learning as pml
import torch
from pytorch_metric_learning.distances import CosineSimilarity, LpDistance
from pytorch_metric_learning.losses import (ContrastiveLoss, MultiSimilarityLoss,
                                            TripletMarginLoss)
from pytorch_metric_learning.miners import (BatchHardMiner, MultiSimilarityMiner,
                                            TripletMarginMiner)

SCRIPT = "tests/oracles/make_review_oracles.py"
GENERATOR = f"{SCRIPT}; torch {torch.__version__}; pytorch-metric-learning {pml.__version__}"

# Intra-op threading could change summation order in reductions; one thread removes the doubt.
torch.set_num_threads(1)


def L(t):
    """Tensor -> nested lists of Python floats (float32 values widen exactly to float64)."""
    return t.detach().to(torch.float64).tolist()


def write(out_dir, name, obj):
    path = out_dir / name
    # allow_nan=False: a NaN/inf in a reference is a bug here, not something to serialise.
    text = json.dumps(obj, indent=1, allow_nan=False) + "\n"
    path.write_text(text)
    print(f"wrote {path} ({len(text) / 1024:.1f} KiB)")


# --------------------------------------------------------------------------------------------
# 1. Optimizers
# --------------------------------------------------------------------------------------------

OPTIM_CASES = [
    dict(name="adam", optimizer="adam", lr=1e-2, betas=[0.9, 0.999], eps=1e-8,
         weight_decay=0.0, amsgrad=False),
    dict(name="adam_weight_decay", optimizer="adam", lr=1e-2, betas=[0.9, 0.999], eps=1e-8,
         weight_decay=1e-2, amsgrad=False),
    dict(name="sgd_momentum", optimizer="sgd", lr=0.1, momentum=0.9, dampening=0.0,
         nesterov=False, weight_decay=0.0),
    dict(name="sgd_momentum_weight_decay", optimizer="sgd", lr=0.1, momentum=0.9,
         dampening=0.0, nesterov=False, weight_decay=5e-4),
    dict(name="sgd_nesterov", optimizer="sgd", lr=0.1, momentum=0.9, dampening=0.0,
         nesterov=True, weight_decay=0.0),
    dict(name="adamw", optimizer="adamw", lr=1e-2, betas=[0.9, 0.999], eps=1e-8,
         weight_decay=1e-2, amsgrad=False),
]


def make_optimizer(case, params, eps=None):
    # foreach=False pins the single-tensor code path (the CPU default anyway), whose operation
    # order is the one a straightforward per-parameter implementation follows.
    if case["optimizer"] == "adamw":
        return torch.optim.AdamW(params, lr=case["lr"], betas=tuple(case["betas"]),
                                 eps=case["eps"] if eps is None else eps,
                                 weight_decay=case["weight_decay"], amsgrad=case["amsgrad"],
                                 foreach=False)
    if case["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=case["lr"], betas=tuple(case["betas"]),
                                eps=case["eps"] if eps is None else eps,
                                weight_decay=case["weight_decay"], amsgrad=case["amsgrad"],
                                foreach=False)
    return torch.optim.SGD(params, lr=case["lr"], momentum=case["momentum"],
                           dampening=case["dampening"], nesterov=case["nesterov"],
                           weight_decay=case["weight_decay"], foreach=False)


def optim_definition(case):
    if case["optimizer"] == "adamw":
        call = (f"torch.optim.AdamW([w, b], lr={case['lr']}, betas={tuple(case['betas'])}, "
                f"eps={case['eps']}, weight_decay={case['weight_decay']}, "
                f"amsgrad={case['amsgrad']}, foreach=False)")
        extra = " AdamW's decay is decoupled: param *= 1 - lr * wd before the Adam step."
    elif case["optimizer"] == "adam":
        call = (f"torch.optim.Adam([w, b], lr={case['lr']}, betas={tuple(case['betas'])}, "
                f"eps={case['eps']}, weight_decay={case['weight_decay']}, "
                f"amsgrad={case['amsgrad']}, foreach=False)")
        extra = (" Adam's weight_decay is L2 added to the gradient (grad + wd * param), "
                 "not AdamW's decoupled decay.") if case["weight_decay"] else ""
    else:
        call = (f"torch.optim.SGD([w, b], lr={case['lr']}, momentum={case['momentum']}, "
                f"dampening={case['dampening']}, nesterov={case['nesterov']}, "
                f"weight_decay={case['weight_decay']}, foreach=False)")
        extra = (" The first step initialises the momentum buffer to the gradient "
                 "(torch semantics, no dampening on step 1).")
    return (f"{call}; w, b = params (requires_grad); for k in 0..3: w.grad = grads[k].w, "
            f"b.grad = grads[k].b, opt.step(); after[k] = (w, b). No loss/backward. "
            f"after: float64 params/grads; after_f32: the same with params and grads cast "
            f"to float32 before the first step.{extra}")


def run_optimizer(case, params0, grads, dtype, eps=None):
    w = params0["w"].to(dtype).clone().requires_grad_(True)
    b = params0["b"].to(dtype).clone().requires_grad_(True)
    opt = make_optimizer(case, [w, b], eps=eps)
    after = []
    for g in grads:
        w.grad = g["w"].to(dtype).clone()
        b.grad = g["b"].to(dtype).clone()
        opt.step()
        after.append({"w": w.detach().clone(), "b": b.detach().clone()})
    return after


def optim_oracle():
    gen = torch.Generator().manual_seed(20240611)
    f64 = torch.float64
    params0 = {"w": torch.randn(3, 4, generator=gen, dtype=f64),
               "b": torch.randn(3, generator=gen, dtype=f64)}
    # Per-entry magnitudes: O(1), O(1e-2), O(10), and entries at 1e-6..1e-7 that stay tiny in
    # every step, so Adam's second moment stays ~1e-12 there and eps (1e-8 vs 1e-5) decides the
    # step size; a wrong eps placement (inside the sqrt, or before bias correction) shows up.
    w_scale = torch.tensor([[1e-6, 1.0, 1e-2, 10.0],
                            [1.0, 3e-7, 1.0, 1e-2],
                            [10.0, 1e-2, 1.0, 5e-7]], dtype=f64)
    b_scale = torch.tensor([1.0, 2e-7, 1e-2], dtype=f64)
    grads = []
    for _ in range(3):
        gw = torch.randn(3, 4, generator=gen, dtype=f64)
        gb = torch.randn(3, generator=gen, dtype=f64)
        # Keep the tiny entries' magnitude within 1e-6..1e-7 whatever the normal draw was.
        gw = torch.where(w_scale < 1e-5, torch.sign(gw) * (0.5 + gw.abs().clamp(max=1.0) / 2), gw)
        gb = torch.where(b_scale < 1e-5, torch.sign(gb) * (0.5 + gb.abs().clamp(max=1.0) / 2), gb)
        grads.append({"w": gw * w_scale, "b": gb * b_scale})

    # The point of the tiny entries: eps must matter visibly.
    adam = OPTIM_CASES[0]
    a8 = run_optimizer(adam, params0, grads, f64, eps=1e-8)
    a5 = run_optimizer(adam, params0, grads, f64, eps=1e-5)
    eps_diff = max(float((x[k] - y[k]).abs().max()) for x, y in zip(a8, a5) for k in ("w", "b"))
    print(f"[optim] Adam max |after(eps=1e-8) - after(eps=1e-5)| over 3 steps = {eps_diff:.6e}")
    assert eps_diff > 1e-4, eps_diff

    cases = []
    for case in OPTIM_CASES:
        after = run_optimizer(case, params0, grads, f64)
        after32 = run_optimizer(case, params0, grads, torch.float32)
        d32 = max(float((x[k] - y[k].double()).abs().max())
                  for x, y in zip(after, after32) for k in ("w", "b"))
        print(f"[optim] {case['name']}: after[2].w[0] = {L(after[2]['w'][0])}; "
              f"max |f64 - f32| = {d32:.3e}")
        cases.append({**case, "definition": optim_definition(case),
                      "after": [{k: L(v) for k, v in a.items()} for a in after],
                      "after_f32": [{k: L(v) for k, v in a.items()} for a in after32]})
    return {
        "generator": GENERATOR,
        "params": {k: L(v) for k, v in params0.items()},
        "grads": [{k: L(v) for k, v in g.items()} for g in grads],
        "adam_eps_check": {
            "definition": "max abs difference, over the 3 steps and all entries of w and b, "
                          "between case 'adam' (eps=1e-8) and the same run with eps=1e-5",
            "max_abs_diff_eps_1e-8_vs_1e-5": eps_diff,
        },
        "cases": cases,
    }


# --------------------------------------------------------------------------------------------
# 2. BatchNorm running statistics
# --------------------------------------------------------------------------------------------

def bn_case(name, module, shape, gen):
    f64 = torch.float64
    module = module.double().train()
    c = shape[1]
    view = [1, c] + [1] * (len(shape) - 2)
    inputs, after = [], []
    for k in range(3):
        # A different per-channel mean and scale per batch, so that the running average has
        # something to track and a momentum of (1 - 0.1) vs 0.1 mix-up is visible.
        scale = (0.5 + 2.0 * torch.rand(c, generator=gen, dtype=f64)).view(view)
        shift = (3.0 * torch.randn(c, generator=gen, dtype=f64)).view(view)
        x = torch.randn(*shape, generator=gen, dtype=f64) * scale + shift
        with torch.no_grad():
            y = module(x)
        inputs.append(L(x))
        after.append({"running_mean": L(module.running_mean),
                      "running_var": L(module.running_var),
                      "num_batches_tracked": int(module.num_batches_tracked),
                      "output": L(y)})
    print(f"[bn] {name}: running_mean after pass 3 = {after[-1]['running_mean']}, "
          f"running_var = {after[-1]['running_var']}")
    cls = type(module).__name__
    return {
        "name": name,
        "num_features": c,
        "momentum": module.momentum,
        "eps": module.eps,
        "input_shape": list(shape),
        "initial_running_mean": [0.0] * c,
        "initial_running_var": [1.0] * c,
        "definition": (
            f"m = torch.nn.{cls}({c}).double().train() (momentum=0.1, eps=1e-5, affine weight=1, "
            f"bias=0, track_running_stats=True); for k in 0..3: output = m(inputs[k]) under "
            f"no_grad; after[k] records m.running_mean, m.running_var, m.num_batches_tracked, "
            f"output. Torch: running = (1 - momentum) * running + momentum * batch_stat, where "
            f"running_var uses the UNBIASED batch variance (divide by n - 1, n = elements per "
            f"channel) while output normalises with the BIASED variance (divide by n): "
            f"(x - mean) / sqrt(var_biased + eps)."),
        "inputs": inputs,
        "after": after,
    }


def batch_norm_oracle():
    gen = torch.Generator().manual_seed(4242)
    torch.manual_seed(0)  # module construction draws nothing, but pin it anyway
    return {
        "generator": GENERATOR,
        "cases": [bn_case("bn2d", torch.nn.BatchNorm2d(3), (4, 3, 5, 5), gen),
                  bn_case("bn1d", torch.nn.BatchNorm1d(4), (6, 4), gen)],
    }


# --------------------------------------------------------------------------------------------
# 3. Semihard triplet mining + triplet margin loss
# --------------------------------------------------------------------------------------------

DISTANCES = {
    "lp_normalized": (lambda: LpDistance(), "LpDistance()  (p=2, normalize_embeddings=True)"),
    "cosine": (lambda: CosineSimilarity(), "CosineSimilarity()  (normalize_embeddings=True)"),
    "lp_raw": (lambda: LpDistance(normalize_embeddings=False),
               "LpDistance(normalize_embeddings=False)  (p=2)"),
}


def triplet_margins(emb, labels, dist):
    """Per-triplet quantity the miner thresholds, for reporting how far cases sit from ties."""
    from pytorch_metric_learning.utils import loss_and_miner_utils as lmu
    a, p, n = lmu.get_all_triplets_indices(labels)
    with torch.no_grad():
        mat = dist(emb)
        ap, an = mat[a, p], mat[a, n]
        return (ap - an) if dist.is_inverted else (an - ap)


def run_semihard(emb0, labels, miner_margin, loss_margin, dist_key, dtype):
    make_dist, _ = DISTANCES[dist_key]
    emb = emb0.to(dtype).clone().requires_grad_(True)
    miner = TripletMarginMiner(margin=miner_margin, type_of_triplets="semihard",
                               distance=make_dist())
    loss_fn = TripletMarginLoss(margin=loss_margin, distance=make_dist())
    idx = miner(emb, labels)
    loss = loss_fn(emb, labels, idx)
    loss.backward()
    triplets = sorted(torch.stack(idx, dim=1).tolist())
    # Per-triplet loss terms (before AvgNonZeroReducer) to report how many are non-zero.
    with torch.no_grad():
        terms = loss_fn.compute_loss(emb, labels, idx, emb, labels)["loss"]["losses"]
    # The miner runs under torch.no_grad inside PML (BaseMiner.forward); mining on a detached
    # copy must give the same triplets and the same gradient.
    emb_d = emb0.to(dtype).clone().requires_grad_(True)
    idx_d = miner(emb_d.detach(), labels)
    loss_fn(emb_d, labels, idx_d).backward()
    assert sorted(torch.stack(idx_d, dim=1).tolist()) == triplets
    assert torch.equal(emb_d.grad, emb.grad)
    assert all(not t.requires_grad for t in idx)
    return float(loss.detach()), emb.grad.detach().clone(), triplets, int((terms > 0).sum())


def triplet_oracle():
    # Seed chosen (search over 1..3000) to maximise, over all four cases, the smallest distance
    # of any triplet's (an - ap) margin from the thresholds 0, M and L (here >= 1.4e-3), so an
    # f32 or Gram-matrix distance in Rust cannot flip a triplet in or out of the mined set.
    gen = torch.Generator().manual_seed(1542)
    emb0 = torch.randn(16, 8, generator=gen, dtype=torch.float64)
    labels = torch.arange(16) % 4
    settings = [(0.2, 0.2, "lp_normalized"), (0.1, 0.05, "lp_normalized"),
                (0.3, 0.3, "cosine"), (0.5, 0.1, "lp_raw")]
    total = 16 * 3 * 12
    cases = []
    for m, l, dk in settings:
        v64, g64, t64, nz64 = run_semihard(emb0, labels, m, l, dk, torch.float64)
        v32, g32, t32, nz32 = run_semihard(emb0, labels, m, l, dk, torch.float32)
        # A test comparing f32 against these triplets needs f32 to mine the same set.
        assert t64 == t32, (dk, m)
        assert 0 < len(t64) < total, (dk, m, len(t64))
        tm = triplet_margins(emb0, labels, DISTANCES[dk][0]())
        gap = float(torch.stack([tm.abs(), (tm - m).abs(), (tm - l).abs()]).min())
        print(f"[triplet] {dk} M={m} L={l}: mined {len(t64)}/{total}, non-zero loss terms "
              f"{nz64}, value={v64!r} value_f32={v32!r}, |grad|max={float(g64.abs().max()):.4f}, "
              f"max|g64-g32|={float((g64 - g32.double()).abs().max()):.2e}, "
              f"min gap of (an-ap) to 0, M, L = {gap:.2e}")
        cases.append({
            "name": f"semihard_{dk}_m{m}_l{l}",
            "miner_margin": m,
            "loss_margin": l,
            "distance": dk,
            "definition": (
                f"emb = embeddings (requires_grad); dist = {DISTANCES[dk][1]}; "
                f"idx = TripletMarginMiner(margin={m}, type_of_triplets='semihard', "
                f"distance=dist)(emb, labels)  [keeps (a,p,n) with 0 < margin_an_ap <= {m}, "
                f"margin_an_ap = d(a,n) - d(a,p) for distances, s(a,p) - s(a,n) for cosine]; "
                f"value = TripletMarginLoss(margin={l}, distance=dist)(emb, labels, idx)  "
                f"[relu(d_ap - d_an + {l}) (cosine: relu(s_an - s_ap + {l})), reduced by "
                f"AvgNonZeroReducer = mean over terms > 0]; grad = d value / d emb. Each of "
                f"miner and loss has its own distance instance. _f32: the same on "
                f"embeddings.float() (mines the identical triplet set). min_threshold_gap: min over "
                f"all 576 triplets of |t|, |t - M|, |t - L| with t = margin_an_ap (float64)."),
            "num_triplets": len(t64),
            "num_nonzero_losses": nz64,
            "min_threshold_gap": gap,
            "triplets": t64,
            "value": v64,
            "value_f32": v32,
            "grad": L(g64),
            "grad_f32": L(g32),
        })
    return {
        "generator": GENERATOR,
        "embeddings": L(emb0),
        "labels": labels.tolist(),
        "num_all_triplets": total,
        "cases": cases,
    }


# --------------------------------------------------------------------------------------------
# 4. Exact duplicates (zero distances)
# --------------------------------------------------------------------------------------------

DUP_PAIRS = [[0, 1], [4, 5], [3, 8]]  # (same label), (same label), (different labels)


def run_dup(kind, params, emb0, labels, dtype):
    emb = emb0.to(dtype).clone().requires_grad_(True)
    if kind == "contrastive":
        loss_fn = ContrastiveLoss(**params)
    else:
        loss_fn = TripletMarginLoss(**params)
    loss = loss_fn(emb, labels)
    loss.backward()
    extra = {}
    with torch.no_grad():
        parts = loss_fn.compute_loss(emb, labels, None, emb, labels)
    if kind == "contrastive":
        extra["num_nonzero_pos"] = int((parts["pos_loss"]["losses"] > 0).sum())
        extra["num_nonzero_neg"] = int((parts["neg_loss"]["losses"] > 0).sum())
        extra["num_pos_pairs"] = len(parts["pos_loss"]["losses"])
        extra["num_neg_pairs"] = len(parts["neg_loss"]["losses"])
    else:
        extra["num_nonzero_triplets"] = int((parts["loss"]["losses"] > 0).sum())
        extra["num_triplets"] = len(parts["loss"]["losses"])
    return float(loss.detach()), emb.grad.detach().clone(), extra


def duplicates_oracle():
    # Seed chosen (search over 1..5000) so that, besides the duplicate pair (3,8), several
    # negative pairs fall inside neg_margin 1 but none inside 0.5 (the two contrastive cases
    # then differ in their gradient), and every non-tied pair distance / triplet margin sits
    # >= 0.05 away from the margins.
    gen = torch.Generator().manual_seed(3704)
    emb0 = torch.randn(10, 6, generator=gen, dtype=torch.float64)
    for i, j in DUP_PAIRS:
        emb0[j] = emb0[i]
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1, 2, 3])
    assert labels[0] == labels[1] and labels[4] == labels[5] and labels[3] != labels[8]

    # cdist's direct (non-matmul) path is used when both sides have <= 25 rows, so identical
    # rows give an exact 0 rather than a tiny positive/NaN-prone value from |x|^2+|y|^2-2xy.
    dist_at = {}
    for dtype, key in ((torch.float64, "lp_normalized"), (torch.float32, "lp_normalized_f32")):
        mat = LpDistance()(emb0.to(dtype))
        dist_at[key] = [float(mat[i, j]) for i, j in DUP_PAIRS]
        assert all(v == 0.0 for v in dist_at[key]), dist_at
    print(f"[dup] LpDistance() at duplicate pairs {DUP_PAIRS}: {dist_at}")

    specs = [
        ("contrastive_default", "contrastive", {"pos_margin": 0.0, "neg_margin": 1.0},
         "ContrastiveLoss()  (pos_margin=0, neg_margin=1, distance=LpDistance() normalised, "
         "reducer AvgNonZeroReducer per sub-loss)"),
        ("contrastive_neg_margin_0.5", "contrastive", {"pos_margin": 0.0, "neg_margin": 0.5},
         "ContrastiveLoss(pos_margin=0, neg_margin=0.5)"),
        ("triplet_default", "triplet", {"margin": 0.05},
         "TripletMarginLoss()  (margin=0.05, all triplets, distance=LpDistance() normalised, "
         "reducer AvgNonZeroReducer)"),
        ("triplet_margin_0.2", "triplet", {"margin": 0.2}, "TripletMarginLoss(margin=0.2)"),
    ]
    cases = []
    for name, kind, params, call in specs:
        v64, g64, ex64 = run_dup(kind, params, emb0, labels, torch.float64)
        v32, g32, ex32 = run_dup(kind, params, emb0, labels, torch.float32)
        assert torch.isfinite(g64).all() and torch.isfinite(g32).all()
        assert ex64 == ex32, (name, ex64, ex32)
        print(f"[dup] {name}: value={v64!r} value_f32={v32!r} {ex64} "
              f"grad rows 0,1 = {L(g64[0][:3])}.., {L(g64[1][:3])}.., "
              f"max|g64-g32|={float((g64 - g32.double()).abs().max()):.2e}")
        if kind == "contrastive":
            definition = (
                f"loss_fn = {call}; value = loss_fn(emb, labels) with emb = embeddings "
                f"(requires_grad), no miner: all ordered pairs (i != j; both (i,j) and (j,i)); "
                f"value = mean of positive terms relu(d - pos_margin) over the non-zero ones "
                f"+ mean of negative terms relu(neg_margin - d) over the non-zero ones (each 0 "
                f"if none non-zero); grad = d value / d emb (torch.cdist's backward gives 0 at "
                f"d = 0, so the duplicate negative pair (3,8) adds 1 = neg_margin - 0 to the "
                f"loss but nothing to the gradient). num_nonzero_pos/neg: count of terms > 0 "
                f"from loss_fn.compute_loss (ordered pairs). _f32: the same on embeddings.float().")
        else:
            definition = (
                f"loss_fn = {call}; value = loss_fn(emb, labels) with emb = embeddings "
                f"(requires_grad), no miner: all (a,p,n) with label[a]==label[p], a != p, "
                f"label[n] != label[a]; terms relu(d_ap - d_an + margin), mean over terms > 0; "
                f"grad = d value / d emb (cdist backward: 0 at d = 0). "
                f"_f32: the same on embeddings.float().")
        cases.append({"name": name, "definition": definition,
                      "params": {**params, "distance": "lp_normalized"},
                      **ex64, "value": v64, "value_f32": v32,
                      "grad": L(g64), "grad_f32": L(g32)})
    return {
        "generator": GENERATOR,
        "embeddings": L(emb0),
        "labels": labels.tolist(),
        "duplicate_pairs": DUP_PAIRS,
        "distance_at_duplicates": {
            "definition": "LpDistance()(embeddings)[i, j] (normalised rows, torch.cdist p=2) at "
                          "each [i, j] of duplicate_pairs; _f32 on embeddings.float()",
            "pairs": DUP_PAIRS,
            **dist_at,
        },
        "cases": cases,
    }


# --------------------------------------------------------------------------------------------
# 5. Miners plugged into losses
# --------------------------------------------------------------------------------------------

MINER_CASES = [
    dict(name="batch_hard_triplet_lp_normalized", miner="batch_hard", loss="triplet",
         margin=0.2, distance="lp_normalized", reference=False),
    dict(name="batch_hard_triplet_cosine", miner="batch_hard", loss="triplet", margin=0.1,
         distance="cosine", reference=False),
    dict(name="batch_hard_triplet_reference", miner="batch_hard", loss="triplet", margin=0.2,
         distance="lp_normalized", reference=True),
    dict(name="multi_similarity_mined", miner="multi_similarity", loss="multi_similarity",
         epsilon=0.1, distance="cosine", reference=False),
]


def tuples_of(idx):
    """Mined indices as sorted lists (pairs: [[a1, p]...], [[a2, n]...]; triplets: [[a, p, n]])."""
    if len(idx) == 4:
        a1, p, a2, n = idx
        return [sorted(torch.stack([a1, p], 1).tolist()), sorted(torch.stack([a2, n], 1).tolist())]
    return sorted(torch.stack(idx, dim=1).tolist())


def run_miner_case(case, emb0, labels, dtype):
    make_dist, _ = DISTANCES[case["distance"]]
    emb = emb0.to(dtype).clone().requires_grad_(True)
    if case["miner"] == "batch_hard":
        miner = BatchHardMiner(distance=make_dist())
        loss_fn = TripletMarginLoss(margin=case["margin"], distance=make_dist())
    else:
        miner = MultiSimilarityMiner(epsilon=case["epsilon"])
        loss_fn = MultiSimilarityLoss()
    if case["reference"]:
        # Anchors: the first 8 rows; positives and negatives from the last 8 (a leaf of its own).
        half = emb0.shape[0] // 2
        anchors = emb[:half]
        ref = emb0[half:].to(dtype).clone().requires_grad_(True)
        idx = miner(anchors, labels[:half], ref, labels[half:])
        loss = loss_fn(anchors, labels[:half], idx, ref, labels[half:])
        loss.backward()
        return float(loss.detach()), emb.grad[:half].clone(), ref.grad.clone(), tuples_of(idx)
    idx = miner(emb, labels)
    loss = loss_fn(emb, labels, idx)
    loss.backward()
    return float(loss.detach()), emb.grad.clone(), None, tuples_of(idx)


def miners_oracle():
    gen = torch.Generator().manual_seed(2718)
    emb0 = torch.randn(16, 8, generator=gen, dtype=torch.float64)
    labels = torch.arange(16) % 4
    cases = []
    for case in MINER_CASES:
        v64, g64, r64, t64 = run_miner_case(case, emb0, labels, torch.float64)
        v32, g32, r32, t32 = run_miner_case(case, emb0, labels, torch.float32)
        # A test comparing f32 against these tuples needs f32 to mine the same ones.
        assert t64 == t32, case["name"]
        print(f"[miners] {case['name']}: value={v64!r} value_f32={v32!r}, "
              f"tuples {sum(len(t) for t in t64) if case['miner'] == 'multi_similarity' else len(t64)}")
        out = dict(case)
        out.update({
            "definition": (
                "emb = embeddings (requires_grad); BatchHardMiner(distance=dist) -> "
                "TripletMarginLoss(margin, distance=dist)(emb, labels, idx), or "
                "MultiSimilarityMiner(epsilon) -> MultiSimilarityLoss()(emb, labels, idx) "
                "(alpha 2, beta 50, base 0.5, cosine). reference: anchors = emb[:8], "
                "ref_emb = emb[8:] (own leaf), miner(anchors, labels[:8], ref_emb, labels[8:]), "
                "loss(anchors, labels[:8], idx, ref_emb, labels[8:]); grad = d value / d anchors "
                "(rows 0-7), ref_grad = d value / d ref_emb. tuples: sorted mined indices "
                "(triplets [a, p, n]; pairs [[a1, p]...], [[a2, n]...], second index into the "
                "reference set)."),
            "tuples": t64,
            "value": v64,
            "value_f32": v32,
            "grad": L(g64),
            "grad_f32": L(g32),
        })
        if r64 is not None:
            out["ref_grad"] = L(r64)
            out["ref_grad_f32"] = L(r32)
        cases.append(out)
    return {
        "generator": GENERATOR,
        "embeddings": L(emb0),
        "labels": labels.tolist(),
        "cases": cases,
    }


def main():
    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    out_dir.mkdir(parents=True, exist_ok=True)
    print(GENERATOR)
    write(out_dir, "optim_steps.json", optim_oracle())
    write(out_dir, "batch_norm_running.json", batch_norm_oracle())
    write(out_dir, "triplet_semihard.json", triplet_oracle())
    write(out_dir, "duplicates.json", duplicates_oracle())
    write(out_dir, "miners.json", miners_oracle())


if __name__ == "__main__":
    main()
