"""The Python peers of metron's comparison benchmarks: one measurement per process.

The Rust orchestrator times metron and then spawns this script once per measurement to time
the same work in the reference implementation people would otherwise use: faiss-cpu for exact
kNN, pytorch-metric-learning (or plain PyTorch) for the batch losses, torchvision / timm (or a
plain PyTorch module) for the backbones, and torchvision's DataLoader for JPEG decoding and
augmentation. It reads the last line of stdout as JSON; everything else goes to stderr.

Command line
------------
    python benches/compare/peer.py --job JOB --peer PEER [--threads T] [--reps R] [--warmup W]
                                   [job parameters]

    --threads T   torch.set_num_threads(T), faiss.omp_set_num_threads(T) and, for the data job,
                  DataLoader num_workers = T (default: os.cpu_count())
    --reps R      timed repetitions (default 3), after --warmup W untimed ones (default 1)
    --min-seconds S   and warm up, then time, for at least S seconds each (default 0)

Jobs (the timed region of one repetition after the colon):

    knn       --peer faiss --data EMB.npy [--k 10] [--metric cosine|l2]
              float32 [N, d] rows (cosine: faiss.normalize_L2 before timing). Timed: build
              IndexFlatIP (cosine) or IndexFlatL2 (squared L2), add, search k + 1, drop each
              row's own hit -> [N, k] ids.
    loss      --peer pml|torch --loss batch_hard_triplet|multi_similarity|ntxent|smooth_ap
              [--n 384] [--dim 512] [--per-class 4]
              torch.manual_seed(0) randn(n, dim) with unit rows, labels arange(n) // per_class.
              Timed: x = base.clone().requires_grad_(); f(x).backward().
    backbone  --peer torch --model resnet50|resnext50|vgg16|vit_s16|vit_b16|saig_s
              --mode train|infer [--batch 16] [--height 224] [--width 224] [--no-fused-attn]
              [--device cpu|cuda|cuda:N]
              torch.manual_seed(0) randn(B, 3, H, W), randomly initialised feature extractor:
              the ResNe(X)t trunk through layer4, vgg16's features through pool5 (built
              without the unused classifier), timm ViT forward_features (all tokens), or
              the SAIG-S tokens [B, H/16 * W/16, 384]. --no-fused-attn: explicit softmax
              attention instead of F.scaled_dot_product_attention (ViT and SAIG-S).
              Timed, train: zero_grad; features(x).mean().backward().
              Timed, infer: with no_grad: features(x).sum().item().
    data      --peer torchvision --images DIR [--batch 64]
              Sorted DIR/*.jpg through a DataLoader (PIL decode, RandomResizedCrop(224),
              RandomHorizontalFlip, ToTensor, ImageNet Normalize), --threads workers,
              persistent across epochs. Timed: one full epoch.

Output: the last stdout line is one JSON object
    {"job", "peer", "variant", "times_s": [one per timed rep], "base_rss_mb" (VmRSS after
     the warm-up), "peak_rss_mb" (VmHWM at the end), "after_rss_mb" (VmRSS
     after the last rep and gc.collect()), "kernel" (the BLAS, CPU dispatch, attention or
     JPEG decoder path),
     "versions": {"python", and each of torch, torchvision, timm, faiss,
     pytorch_metric_learning, numpy that the job imported}}
with MB = 2^20 bytes. A bad argument or missing input exits with status 2 and a message on
stderr. Each job imports only what it needs, so one job's libraries do not inflate another's
RSS or start-up.

By hand, in the venv that shared/tools/torch-venv.sh makes (faiss-cpu,
pytorch-metric-learning and threadpoolctl installed on top of it):

    eval "$(bash ../shared/tools/torch-venv.sh)"      # from the repository root
    python benches/compare/peer.py --job loss --peer pml --loss ntxent --threads 2
    python benches/compare/peer.py --job backbone --peer torch --model resnet50 --mode infer \\
        --batch 1 --reps 1 --warmup 0
    OPENBLAS_CORETYPE=SkylakeX python benches/compare/peer.py --job knn --peer faiss \\
        --data /tmp/emb.npy --k 10 --metric cosine
"""

import argparse
import gc
import json
import os
import pathlib
import platform
import sys
import time

JOB_PEERS = {
    "knn": ("faiss",),
    "loss": ("pml", "torch"),
    "backbone": ("torch",),
    "data": ("torchvision",),
}
LOSSES = ("batch_hard_triplet", "multi_similarity", "ntxent", "smooth_ap")
MODELS = ("resnet50", "resnext50", "vgg16", "vit_s16", "vit_b16", "saig_s")
TIMM_NAMES = {"vit_s16": "vit_small_patch16_224", "vit_b16": "vit_base_patch16_224"}

# The constants metron's losses are benchmarked with; both peers use the same ones.
TRIPLET_MARGIN = 0.05
MS_ALPHA, MS_BETA, MS_BASE = 2.0, 50.0, 0.5
NTXENT_TEMPERATURE = 0.07
SMOOTH_AP_TAU = 0.01


# ---------------------------------------------------------------------------------------------
# Measurement


def proc_status_mb(field):
    """A memory field of /proc/self/status (reported in kB) in MB of 2^20 bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return None


def measure(step, warmup, reps, min_seconds=0.0):
    """Runs `step` untimed, then timed: the timed seconds and the RSS around them.

    Warm-up runs at least `warmup` repetitions and, with `min_seconds`, until that much time
    has passed (none at all when `warmup` is 0); the timed part likewise at least `reps`
    repetitions and until `min_seconds` of them (both capped at 1000), so millisecond jobs
    reach their steady state as second-long ones do. metron's side (`metron-bench job`)
    follows the same rule.

    after_rss is read here, while the job still holds its model or data, so it shows what the
    repetitions left behind rather than what is left once everything is freed.
    """
    start, done = time.perf_counter(), 0
    # A job run without warm-up (a whole kNN search) gets none.
    while done < warmup or (warmup > 0 and time.perf_counter() - start < min_seconds
                            and done < 1000):
        step()
        done += 1
    # After the warm-up, as metron's side: what the first steps grew is part of the base.
    base_rss = proc_status_mb("VmRSS")
    times = []
    while len(times) < reps or (sum(times) < min_seconds and len(times) < 1000):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    gc.collect()
    return {"times_s": times, "base_rss_mb": base_rss, "after_rss_mb": proc_status_mb("VmRSS")}


def versions():
    """Python plus the version of each library the job actually imported."""
    out = {"python": platform.python_version()}
    for name in ("torch", "torchvision", "timm", "faiss", "pytorch_metric_learning", "numpy"):
        module = sys.modules.get(name)
        if module is not None:
            out[name] = getattr(module, "__version__", "unknown")
    return out


def short(version):
    """A version without its local tag (2.9.0+cu128 -> 2.9.0), for the human-readable variant."""
    return version.split("+")[0]


def torch_cpu_kernel():
    """ATen's dispatch level (e.g. AVX512): which vectorised CPU kernels torch runs."""
    import torch

    cap = torch.backends.cpu.get_cpu_capability()
    dnn = "oneDNN" if torch.backends.mkldnn.is_available() else "no oneDNN"
    return f"ATen {cap}, {dnn}"


# ---------------------------------------------------------------------------------------------
# knn: faiss exact search


def faiss_blas_kernel():
    """The OpenBLAS that faiss-cpu bundles (its sgemm does the search) and the kernels it chose.

    numpy ships an OpenBLAS of its own, so pick faiss's by path.
    """
    try:
        import threadpoolctl
    except ImportError:
        return "unknown (threadpoolctl missing)"
    for lib in threadpoolctl.threadpool_info():
        if lib.get("internal_api") == "openblas" and "faiss" in lib.get("filepath", ""):
            return f"OpenBLAS {lib.get('version')} {lib.get('architecture')}"
    return "not OpenBLAS"


def job_knn(args, ap):
    if args.data is None:
        ap.error("--job knn needs --data EMB.npy")
    if not os.path.isfile(args.data):
        ap.error(f"no such file: {args.data}")
    import faiss
    import numpy as np

    # faiss-cpu's OpenBLAS uses OpenMP, so this one call bounds both the search and the sgemm.
    faiss.omp_set_num_threads(args.threads)
    x = np.ascontiguousarray(np.load(args.data), dtype=np.float32)
    if x.ndim != 2:
        ap.error(f"{args.data}: expected a 2-D [N, d] array, got shape {x.shape}")
    n, d = x.shape
    if not 0 < args.k < n:
        ap.error(f"--k must be in 1..{n - 1} for {n} rows")
    if args.metric == "cosine":
        # metron is handed unit vectors too, so normalising is not part of the timed work.
        faiss.normalize_L2(x)
        index_type = faiss.IndexFlatIP
    else:
        index_type = faiss.IndexFlatL2  # squared L2, as metron reports it
    k = args.k
    rows = np.arange(n)[:, None]
    first_k = np.arange(k + 1) < k

    def step():
        index = index_type(d)
        index.add(x)
        _, idx = index.search(x, k + 1)
        # A row's own hit is not always column 0 (exact duplicates tie), so drop it wherever
        # it is, and the last column where it is missing.
        own = idx == rows
        keep = np.where(own.any(axis=1, keepdims=True), ~own, first_k)
        return idx[keep].reshape(n, k)

    measured = measure(step, args.warmup, args.reps, args.min_seconds)
    return {
        "variant": f"faiss {faiss.__version__} {index_type.__name__}",
        **measured,
        "kernel": faiss_blas_kernel(),
    }


# ---------------------------------------------------------------------------------------------
# loss: pytorch-metric-learning and plain PyTorch
#
# The plain versions take the rows as given: the benchmark feeds unit rows, so x x^T is the
# cosine similarity, without paying for a normalisation in the graph (PML normalises inside).


def torch_batch_hard_triplet(x, labels, margin=TRIPLET_MARGIN):
    """Batch-hard triplet loss on Euclidean distances, mean over anchors."""
    import torch

    dist = torch.cdist(x, x)
    same = labels[:, None] == labels[None, :]
    pos = same & ~torch.eye(len(x), dtype=torch.bool)
    hardest_pos = dist.masked_fill(~pos, float("-inf")).amax(dim=1)
    hardest_neg = dist.masked_fill(same, float("inf")).amin(dim=1)
    return torch.relu(hardest_pos - hardest_neg + margin).mean()


def masked_logsumexp_plus_one(logits, mask):
    """log(1 + sum_{mask} exp(logits)) per row, stable: a zero logit stands for the 1."""
    import torch

    logits = logits.masked_fill(~mask, float("-inf"))
    zero = logits.new_zeros(len(logits), 1)
    return torch.logsumexp(torch.cat([logits, zero], dim=1), dim=1)


def torch_multi_similarity(x, labels, alpha=MS_ALPHA, beta=MS_BETA, base=MS_BASE):
    """Multi-similarity loss over all pairs (no mining, as PML without a miner)."""
    import torch

    sim = x @ x.t()
    same = labels[:, None] == labels[None, :]
    pos = same & ~torch.eye(len(x), dtype=torch.bool)
    pos_term = masked_logsumexp_plus_one(-alpha * (sim - base), pos) / alpha
    neg_term = masked_logsumexp_plus_one(beta * (sim - base), ~same) / beta
    return (pos_term + neg_term).mean()


def torch_ntxent(x, labels, temperature=NTXENT_TEMPERATURE):
    """NT-Xent: every positive pair (a, p) against all negatives of a, mean over pairs."""
    import torch

    logits = (x @ x.t()) / temperature
    same = labels[:, None] == labels[None, :]
    pos = same & ~torch.eye(len(x), dtype=torch.bool)
    neg_lse = torch.logsumexp(logits.masked_fill(same, float("-inf")), dim=1)
    anchor, positive = pos.nonzero(as_tuple=True)
    s_ap = logits[anchor, positive]
    return (torch.logaddexp(s_ap, neg_lse[anchor]) - s_ap).mean()


def original_smooth_ap(x, num_id, tau=SMOOTH_AP_TAU):
    """The original Smooth-AP forward (Brown et al., 2020), which metron implements.

    Needs class-contiguous batches of num_id classes with equally many samples each; the
    query is counted among its own positives, as in the authors' code.
    """
    import torch

    def sigmoid(t):
        # The authors' temperature sigmoid, clamped so exp cannot overflow.
        return 1.0 / (1.0 + torch.exp(torch.clamp(-t / tau, -50, 50)))

    b = x.shape[0]
    g = b // num_id
    sim = x @ x.t()
    # rank_all[q, i]: 1 + soft count of items ranked above item i for query q.
    not_self = 1.0 - torch.eye(b)
    rank_all = (sigmoid(sim.unsqueeze(1) - sim.unsqueeze(2)) * not_self).sum(-1) + 1
    # The same rank restricted to the query's class, one block per class.
    xs = x.view(num_id, g, -1)
    sim_pos = torch.bmm(xs, xs.transpose(1, 2))
    not_self_pos = 1.0 - torch.eye(g)
    rank_pos = (sigmoid(sim_pos.unsqueeze(2) - sim_pos.unsqueeze(3)) * not_self_pos).sum(-1) + 1
    ap = 0.0
    for c in range(num_id):
        block = rank_all[c * g:(c + 1) * g, c * g:(c + 1) * g]
        ap = ap + (rank_pos[c] / block).sum() / g / b
    return 1 - ap


def loss_fn(args):
    """(variant, f(x)) for --loss and --peer; labels are bound in."""
    import torch

    labels = torch.arange(args.n) // args.per_class
    if args.peer == "torch":
        plain = {
            "batch_hard_triplet": lambda x: torch_batch_hard_triplet(x, labels),
            "multi_similarity": lambda x: torch_multi_similarity(x, labels),
            "ntxent": lambda x: torch_ntxent(x, labels),
            "smooth_ap": lambda x: original_smooth_ap(x, args.n // args.per_class),
        }[args.loss]
        name = " (original Smooth-AP code)" if args.loss == "smooth_ap" else ""
        return f"plain PyTorch {short(torch.__version__)}{name}", plain

    import pytorch_metric_learning
    from pytorch_metric_learning import losses, miners

    prefix = f"pytorch-metric-learning {pytorch_metric_learning.__version__}"
    if args.loss == "batch_hard_triplet":
        miner = miners.BatchHardMiner()
        triplet = losses.TripletMarginLoss(margin=TRIPLET_MARGIN)
        return (f"{prefix} TripletMarginLoss + BatchHardMiner",
                lambda x: triplet(x, labels, miner(x, labels)))
    loss = {
        # Its defaults are MS_ALPHA, MS_BETA and MS_BASE.
        "multi_similarity": losses.MultiSimilarityLoss,
        "ntxent": lambda: losses.NTXentLoss(temperature=NTXENT_TEMPERATURE),
        "smooth_ap": lambda: losses.SmoothAPLoss(temperature=SMOOTH_AP_TAU),
    }[args.loss]()
    return f"{prefix} {type(loss).__name__}", lambda x: loss(x, labels)


def job_loss(args, ap):
    if args.loss is None:
        ap.error(f"--job loss needs --loss {{{','.join(LOSSES)}}}")
    if args.n < 2 or args.dim < 1 or args.per_class < 2:
        ap.error("--n >= 2, --dim >= 1 and --per-class >= 2 (every anchor needs a positive)")
    if args.loss == "smooth_ap" and args.n % args.per_class:
        ap.error("smooth_ap needs --n divisible by --per-class (equal, contiguous classes)")
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    base = torch.nn.functional.normalize(torch.randn(args.n, args.dim), dim=1)
    variant, f = loss_fn(args)

    def step():
        x = base.clone().requires_grad_(True)
        f(x).backward()

    measured = measure(step, args.warmup, args.reps, args.min_seconds)
    return {
        "variant": variant,
        **measured,
        "kernel": torch_cpu_kernel(),
    }


# ---------------------------------------------------------------------------------------------
# backbone: torchvision, timm and a plain SAIG-S


def saig_s(height, width, fused):
    """metron's SAIG-S: a strided conv stem to 1/16 and 11 attention-only transformer blocks."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    dim, heads, depth = 384, 12, 11

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = heads
            self.scale = (dim // heads) ** -0.5
            self.qkv = nn.Linear(dim, 3 * dim)
            self.proj = nn.Linear(dim, dim)

        def forward(self, x):
            b, n, c = x.shape
            q, k, v = (self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads)
                       .permute(2, 0, 3, 1, 4).unbind(0))
            if fused:
                x = F.scaled_dot_product_attention(q, k, v)
            else:
                x = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1) @ v
            return self.proj(x.transpose(1, 2).reshape(b, n, c))

    class Block(nn.Module):
        # No MLP: SAIG's blocks are attention only.
        def __init__(self):
            super().__init__()
            self.norm = nn.LayerNorm(dim, eps=1e-6)
            self.attn = Attention()

        def forward(self, x):
            return x + self.attn(self.norm(x))

    class SaigS(nn.Module):
        def __init__(self):
            super().__init__()
            layers, c_in = [], 3
            for c_out, stride in zip((64, 128, 128, 256, 256, 512), (2, 2, 1, 2, 1, 2)):
                layers += [nn.Conv2d(c_in, c_out, 3, stride, 1), nn.BatchNorm2d(c_out),
                           nn.ReLU(inplace=True)]
                c_in = c_out
            self.stem = nn.Sequential(*layers)
            self.proj = nn.Conv2d(512, dim, 1)
            # Each stride-2 conv (k 3, pad 1) maps s to ceil(s / 2).
            h, w = height, width
            for _ in range(4):
                h, w = (h + 1) // 2, (w + 1) // 2
            self.pos_embed = nn.Parameter(torch.randn(1, h * w, dim) * 0.02)
            self.blocks = nn.Sequential(*(Block() for _ in range(depth)))
            self.norm = nn.LayerNorm(dim, eps=1e-6)

        def forward(self, x):
            x = self.proj(self.stem(x)).flatten(2).transpose(1, 2) + self.pos_embed
            return self.norm(self.blocks(x))

    return SaigS()


def vgg16_features():
    """torchvision's vgg16().features (conv1_1 .. pool5), built and initialised as vgg16() does.

    vgg16() would also build the 120M-parameter classifier the benchmark never runs: about
    500 MB that would count in the peak RSS against a feature extractor that has none.
    """
    from torch import nn
    from torchvision.models import vgg

    features = vgg.make_layers(vgg.cfgs["D"], batch_norm=False)
    for m in features.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.constant_(m.bias, 0)
    return features


def backbone(args):
    """(variant, model, features, attention) for --model; attention is None for CNNs."""
    import torch

    eager = f"PyTorch {short(torch.__version__)} eager"
    if args.model in TIMM_NAMES:
        # timm reads TIMM_FUSED_ATTN once, when it is imported.
        if args.no_fused_attn:
            os.environ["TIMM_FUSED_ATTN"] = "0"
        import timm
        from timm.layers import use_fused_attn

        name = TIMM_NAMES[args.model]
        model = timm.create_model(name, pretrained=False, num_classes=0,
                                  img_size=(args.height, args.width))
        fused = use_fused_attn()
        return (f"timm {short(timm.__version__)} {name} ({eager})", model, model.forward_features,
                fused)
    if args.model == "saig_s":
        fused = not args.no_fused_attn
        model = saig_s(args.height, args.width, fused)
        return f"plain PyTorch SAIG-S ({eager})", model, model, fused

    import torchvision

    tv = f"torchvision {short(torchvision.__version__)}"
    if args.model == "vgg16":
        model = vgg16_features()
        return f"{tv} vgg16 features ({eager})", model, model, None
    ctor = {"resnet50": torchvision.models.resnet50,
            "resnext50": torchvision.models.resnext50_32x4d}[args.model]
    model = ctor()

    def trunk(x):
        # The trunk up to layer4, without the global pooling and classifier.
        x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        return model.layer4(model.layer3(model.layer2(model.layer1(x))))

    return f"{tv} {ctor.__name__} trunk ({eager})", model, trunk, None


def job_backbone(args, ap):
    if args.model is None or args.mode is None:
        ap.error(f"--job backbone needs --model {{{','.join(MODELS)}}} and --mode {{train,infer}}")
    if min(args.height, args.width) < 1:
        ap.error("--height and --width must be positive")
    if args.model in TIMM_NAMES and (args.height % 16 or args.width % 16):
        ap.error("ViT needs --height and --width divisible by the patch size 16")
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    variant, model, features, fused = backbone(args)
    device = torch.device(args.device)
    model = model.to(device)
    x = torch.randn(args.batch, 3, args.height, args.width).to(device)
    if device.type == "cuda":
        # Kernels run asynchronously: a repetition ends when the device is done.
        def sync():
            torch.cuda.synchronize(device)
    else:
        def sync():
            pass

    if args.mode == "train":
        model.train()

        def step():
            model.zero_grad(set_to_none=True)
            features(x).mean().backward()
            sync()
    else:
        model.eval()

        def step():
            with torch.no_grad():
                features(x).sum().item()

    measured = measure(step, args.warmup, args.reps, args.min_seconds)
    kernel = torch_cpu_kernel()
    if fused is not None:
        kernel += ("; attention: fused F.scaled_dot_product_attention" if fused
                   else "; attention: explicit softmax(q k^T) v")
    return {
        "variant": variant + ("" if fused is None else
                              (", fused attention" if fused else ", unfused attention")),
        **measured,
        "kernel": kernel,
    }


# ---------------------------------------------------------------------------------------------
# data: torchvision DataLoader


def jpeg_decoder():
    """PIL and the libjpeg(-turbo) it decodes with: the data job's hot path."""
    import PIL
    from PIL import features

    turbo = features.version("libjpeg_turbo")
    lib = f"libjpeg-turbo {turbo}" if turbo else f"libjpeg {features.version('jpg')}"
    return f"PIL {PIL.__version__}, {lib}"


def job_data(args, ap):
    if args.images is None:
        ap.error("--job data needs --images DIR")
    files = sorted(pathlib.Path(args.images).glob("*.jpg"))
    if not files:
        ap.error(f"no *.jpg in {args.images}")
    import torch
    import torchvision
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms

    torch.set_num_threads(args.threads)
    tf = transforms.Compose([
        transforms.RandomResizedCrop(224),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])

    class Jpegs(Dataset):
        def __len__(self):
            return len(files)

        def __getitem__(self, i):
            # A label too, so collation does what a training loader's would.
            return tf(Image.open(files[i]).convert("RGB")), i

    workers = args.threads
    loader = DataLoader(Jpegs(), batch_size=args.batch, num_workers=workers,
                        persistent_workers=workers > 0)

    def step():
        for images, _ in loader:
            pass

    measured = measure(step, args.warmup, args.reps, args.min_seconds)
    # Persistent workers would otherwise be shut down at exit, after the JSON line.
    if loader._iterator is not None:
        loader._iterator._shutdown_workers()
    return {
        "variant": f"torchvision {short(torchvision.__version__)} DataLoader, "
                   f"{workers} worker{'s' if workers != 1 else ''}",
        **measured,
        "kernel": jpeg_decoder(),
    }


# ---------------------------------------------------------------------------------------------


def parse_args():
    ap = argparse.ArgumentParser(
        description="Times one reference (Python) peer of a metron benchmark; "
                    "the last stdout line is JSON.")
    ap.add_argument("--job", required=True, choices=sorted(JOB_PEERS))
    ap.add_argument("--peer", required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--min-seconds", type=float, default=0.0,
                    help="warm up and time for at least this long (beyond --warmup / --reps)")
    knn = ap.add_argument_group("knn")
    knn.add_argument("--data", help="float32 [N, d] .npy")
    knn.add_argument("--k", type=int, default=10)
    knn.add_argument("--metric", choices=("cosine", "l2"), default="cosine")
    loss = ap.add_argument_group("loss")
    loss.add_argument("--loss", choices=LOSSES)
    loss.add_argument("--n", type=int, default=384)
    loss.add_argument("--dim", type=int, default=512)
    loss.add_argument("--per-class", type=int, default=4)
    bb = ap.add_argument_group("backbone")
    bb.add_argument("--model", choices=MODELS)
    bb.add_argument("--mode", choices=("train", "infer"))
    bb.add_argument("--batch", type=int, help="backbone: default 16; data: default 64")
    bb.add_argument("--height", type=int, default=224)
    bb.add_argument("--width", type=int, default=224)
    bb.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    bb.add_argument("--no-fused-attn", action="store_true",
                    help="explicit softmax attention instead of F.scaled_dot_product_attention")
    data = ap.add_argument_group("data")
    data.add_argument("--images", help="directory of *.jpg")
    args = ap.parse_args()
    if args.peer not in JOB_PEERS[args.job]:
        ap.error(f"--job {args.job} takes --peer {'|'.join(JOB_PEERS[args.job])}")
    if args.threads < 1 or args.reps < 1 or args.warmup < 0:
        ap.error("--threads >= 1, --reps >= 1, --warmup >= 0")
    if args.batch is None:
        args.batch = 64 if args.job == "data" else 16
    if args.batch < 1:
        ap.error("--batch must be positive")
    return ap, args


def main():
    ap, args = parse_args()
    run = {"knn": job_knn, "loss": job_loss, "backbone": job_backbone, "data": job_data}
    result = run[args.job](args, ap)
    out = {
        "job": args.job,
        "peer": args.peer,
        "variant": result["variant"],
        "times_s": result["times_s"],
        "base_rss_mb": result["base_rss_mb"],
        "peak_rss_mb": proc_status_mb("VmHWM"),
        "after_rss_mb": result["after_rss_mb"],
        "kernel": result["kernel"],
        "versions": versions(),
    }
    sys.stdout.flush()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
