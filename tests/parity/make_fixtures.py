"""Writes the PyTorch side of the backbone parity tests.

For every backbone: build the torchvision / timm network with a fixed seed (random init, and
BatchNorm running statistics randomised so that they matter), save its state dict as .pth,
run a fixed input through it in eval mode and save the input and the outputs as .npy, plus
the parameter count. The Rust tests in crates/metron-backbones/tests/ load the same files.

    eval "$(../shared/tools/torch-venv.sh)"      # torch 2.9.0, torchvision 0.24.0, timm
    python tests/parity/make_fixtures.py OUT_DIR

Inputs are 2 x 3 x 64 x 64: every layer type runs, and debug-build tests stay fast.
"""

import json
import sys
from pathlib import Path

import numpy as np
import timm
import torch
import torchvision


def randomise_bn(model):
    """Random affine parameters, and running statistics measured on a calibration batch.

    Measured rather than random statistics keep activations O(1) through 50 layers, so that
    the 1e-4 absolute bar is a bar on the arithmetic and not on f32's resolution of values in
    the thousands; they are still far from the 0/1 defaults, so a layer that ignored them
    would fail.
    """
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration pass
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 3, 64, 64, generator=g))


def layer3_stride_1(model):
    """CGD's change to torchvision's ResNet: layer3 keeps the resolution (14 x 14 maps at 224)."""
    block = model.layer3[0]
    block.conv2.stride = (1, 1) if hasattr(block, "conv3") else block.conv2.stride
    if not hasattr(block, "conv3"):
        block.conv1.stride = (1, 1)
    block.downsample[0].stride = (1, 1)
    return model


def resnet_features(model, x):
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    x = model.layer4(model.layer3(model.layer2(model.layer1(x))))
    return x


BUILDERS = {
    "resnet18": lambda: torchvision.models.resnet18(num_classes=10),
    "resnet34": lambda: torchvision.models.resnet34(num_classes=10),
    "resnet50": lambda: torchvision.models.resnet50(num_classes=10),
    "resnext50_32x4d": lambda: torchvision.models.resnext50_32x4d(num_classes=10),
    "resnet50_layer3s1": lambda: layer3_stride_1(torchvision.models.resnet50(num_classes=10)),
}


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    np.save(out / "input_2x3x64x64.npy", x.numpy())
    meta = {}
    for name, build in BUILDERS.items():
        torch.manual_seed(0)
        model = build()
        randomise_bn(model)
        model.eval()
        torch.save(model.state_dict(), out / f"{name}.pth")
        params = sum(p.numel() for p in model.parameters())
        outputs = {}
        # The reference is the float64 run; PyTorch's own float32 error against it is recorded
        # so the Rust tests can hold metron's float32 run to the same standard.
        for dtype in (torch.float32, torch.float64):
            m = model.to(dtype)
            with torch.no_grad():
                feats = resnet_features(m, x.to(dtype))
                logits = m.fc(torch.flatten(m.avgpool(feats), 1))
            outputs[dtype] = (feats, logits)
        model.float()
        (f32, l32), (f64, l64) = outputs[torch.float32], outputs[torch.float64]
        np.save(out / f"{name}_features.npy", f64.numpy())
        np.save(out / f"{name}_logits.npy", l64.numpy())
        meta[name] = {
            "params": params,
            "features_shape": list(f64.shape),
            "torch_f32_error_features": (f32.double() - f64).abs().max().item(),
            "torch_f32_error_logits": (l32.double() - l64).abs().max().item(),
        }
        print(name, meta[name], file=sys.stderr)
    meta.update(other_backbones(out, x))
    # The same ResNet-18 weights as .safetensors, for the other loader.
    from safetensors.torch import save_file

    state = torch.load(out / "resnet18.pth")
    save_file({k: v.contiguous() for k, v in state.items()}, str(out / "resnet18.safetensors"))
    (out / "meta.json").write_text(json.dumps(meta, indent=1))


class SaigBlock(torch.nn.Module):
    """SAIG's block: x + Attn(LN(x)), no MLP (timm's Attention, qkv bias)."""

    def __init__(self, dim, heads):
        super().__init__()
        from timm.models.vision_transformer import Attention

        self.norm1 = torch.nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads=heads, qkv_bias=True)

    def forward(self, x):
        return x + self.attn(self.norm1(x))


class SaigConvEmbed(torch.nn.Module):
    """The original's `ConvEmbed`: one `nn.Sequential` stem, so its state-dict keys are
    `patch_embed.conv_stem.{index}.*` with convolutions at 0, 3, ..., 15, BatchNorms at 1, 4, ...,
    16 and the 1x1 projection at 18 (ReLUs hold no parameters but take indices)."""

    def __init__(self, dim):
        super().__init__()
        layers = []
        cin = 3
        for cout, stride in [(64, 2), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)]:
            layers += [
                torch.nn.Conv2d(cin, cout, 3, stride, 1),
                torch.nn.BatchNorm2d(cout),
                torch.nn.ReLU(),
            ]
            cin = cout
        layers.append(torch.nn.Conv2d(cin, dim, 1))
        self.conv_stem = torch.nn.Sequential(*layers)

    def forward(self, x):
        return self.conv_stem(x).flatten(2).transpose(1, 2)


class SaigReference(torch.nn.Module):
    """SAIG-S/D in the module layout of the original (yanghongji2007/SAIG, timm's
    VisionTransformer with ConvEmbed): its checkpoints' key names, the ImageNet classifier
    `head` included, which the backbone does not use."""

    def __init__(self, depth, tokens, dim=384, heads=12, num_classes=1000):
        super().__init__()
        self.patch_embed = SaigConvEmbed(dim)
        self.pos_embed = torch.nn.Parameter(torch.zeros(1, tokens, dim))
        self.blocks = torch.nn.ModuleList(SaigBlock(dim, heads) for _ in range(depth))
        self.norm = torch.nn.LayerNorm(dim, eps=1e-6)
        self.head = torch.nn.Linear(dim, num_classes)

    def forward_features(self, x):
        x = self.patch_embed(x) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def forward(self, x):
        return self.head(self.forward_features(x))


def saig_resize_pos_embed(pos, grid):
    """The original's load-time `resize_pos_embed`: the stored tokens read as a square grid,
    resized with plain bicubic (no antialias) to `grid`, no CLS token."""
    n, dim = pos.shape[1], pos.shape[2]
    side = int(n**0.5)
    planes = pos[0].reshape(1, side, side, dim).permute(0, 3, 1, 2)
    planes = torch.nn.functional.interpolate(planes, size=grid, mode="bicubic", align_corners=False)
    return planes.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], dim)


def reference(out, name, model, run, x, keep=lambda key: True, counted=None):
    """Saves `name`'s state dict (the keys `keep` selects) and its float64 outputs; returns its
    meta entry, whose parameter count covers the parameters `counted` selects (default:
    those saved)."""
    counted = counted or keep
    state = {k: v for k, v in model.state_dict().items() if keep(k)}
    torch.save(state, out / f"{name}.pth")
    params = sum(v.numel() for k, v in model.named_parameters() if counted(k))
    outs = {}
    for dtype in (torch.float32, torch.float64):
        m = model.to(dtype)
        with torch.no_grad():
            outs[dtype] = run(m, x.to(dtype))
    model.float()
    entry = {"params": params}
    for key in outs[torch.float64]:
        ref = outs[torch.float64][key]
        np.save(out / f"{name}_{key}.npy", ref.numpy())
        entry[f"torch_f32_error_{key}"] = (outs[torch.float32][key].double() - ref).abs().max().item()
    print(name, entry, file=sys.stderr)
    return entry


def other_backbones(out, x):
    meta = {}
    torch.manual_seed(0)
    vgg = torchvision.models.vgg16(num_classes=10).eval()

    def run_vgg(m, x):
        # WGOL's conv5 output is features[:30] (pool5 dropped).
        return {"features": m.features(x), "f5": m.features[:30](x), "f4": m.features[:24](x)}

    # The convolutional trunk only (what WGOL uses): the 102M-parameter classifier would make
    # a 537 MB fixture for three plain Linear layers.
    meta["vgg16"] = reference(out, "vgg16", vgg, run_vgg, x, keep=lambda k: k.startswith("features."))
    torch.manual_seed(0)
    vit = timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=0, img_size=64).eval()
    # timm starts pos_embed / cls_token near zero; make them matter.
    with torch.no_grad():
        vit.pos_embed.normal_(0, 0.5)
        vit.cls_token.normal_(0, 0.5)

    def run_vit(m, x):
        tokens = m.forward_features(x)
        return {"tokens": tokens}

    meta["vit_small_patch16_64"] = reference(out, "vit_small_patch16_64", vit, run_vit, x)
    # The same weights at another input size: timm re-grids the position embedding
    # bicubically (dynamic_img_size), as metron's tokens() does.
    dyn = timm.create_model(
        "vit_small_patch16_224", pretrained=False, num_classes=0, img_size=64, dynamic_img_size=True
    ).eval()
    dyn.load_state_dict(vit.state_dict())
    g = torch.Generator().manual_seed(3)
    x2 = torch.randn(2, 3, 96, 80, generator=g)
    np.save(out / "input_2x3x96x80.npy", x2.numpy())
    dyn_meta = {}
    for dtype in (torch.float32, torch.float64):
        m = dyn.to(dtype)
        with torch.no_grad():
            dyn_meta[dtype] = m.forward_features(x2.to(dtype))
    np.save(out / "vit_small_patch16_64_at_96x80_tokens.npy", dyn_meta[torch.float64].numpy())
    meta["vit_small_patch16_64_at_96x80"] = {
        "torch_f32_error_tokens": (dyn_meta[torch.float32].double() - dyn_meta[torch.float64]).abs().max().item()
    }
    torch.manual_seed(0)
    saig = SaigReference(depth=11, tokens=16)
    randomise_bn(saig.patch_embed)
    saig.eval()
    with torch.no_grad():
        saig.pos_embed.normal_(0, 0.5)
    # The checkpoint carries the classifier as the original's do; the backbone's parameter
    # count leaves it out.
    meta["saig_s_64"] = reference(
        out,
        "saig_s_64",
        saig,
        lambda m, x: {"tokens": m.forward_features(x)},
        x,
        counted=lambda k: not k.startswith("head."),
    )
    # The same weights nested as the original's pretrained checkpoints are (its train.py reads
    # `torch.load(path)["state_dict"]`), for the SAIG resize test below.
    torch.save(
        {"state_dict": saig.state_dict(), "epoch": 0, "arch": "SAIG_Shallow"},
        out / "saig_s_64_nested.pth",
    )
    # Those weights used at 32 x 96 (a 2 x 6 grid), as the original's train.py does for
    # another image size: pos_embed resized at load time, in the checkpoint's dtype. (2 x 6
    # rather than the 1 x 4 aspect of ground images at this scale: 2 x 8 would keep the 16
    # tokens of the 4 x 4 grid, and timm's own filter resizes only when the count changes.)
    g = torch.Generator().manual_seed(4)
    x3 = torch.randn(2, 3, 32, 96, generator=g)
    np.save(out / "input_2x3x32x96.npy", x3.numpy())
    wide = SaigReference(depth=11, tokens=12).eval()
    wide_out = {}
    for dtype in (torch.float32, torch.float64):
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in saig.state_dict().items()}
        state["pos_embed"] = saig_resize_pos_embed(state["pos_embed"], (2, 6))
        wide.to(dtype).load_state_dict(state)
        with torch.no_grad():
            wide_out[dtype] = wide.forward_features(x3.to(dtype))
    np.save(out / "saig_s_64_at_32x96_tokens.npy", wide_out[torch.float64].numpy())
    meta["saig_s_64_at_32x96"] = {
        "torch_f32_error_tokens": (wide_out[torch.float32].double() - wide_out[torch.float64]).abs().max().item()
    }
    # Bicubic position-embedding resize, as timm does for another input size.
    g = torch.Generator().manual_seed(2)
    grid = torch.randn(1, 8, 4, 4, generator=g, dtype=torch.float64)
    np.save(out / "bicubic_in_8x4x4.npy", grid[0].numpy())
    up = torch.nn.functional.interpolate(grid, size=(6, 5), mode="bicubic", align_corners=False)
    np.save(out / "bicubic_out_8x6x5.npy", up[0].numpy())
    down = torch.nn.functional.interpolate(grid, size=(3, 2), mode="bicubic", align_corners=False)
    np.save(out / "bicubic_out_8x3x2.npy", down[0].numpy())
    # DINO's interpolate_pos_encoding of the same grid: a scale factor of (n + 0.1) / 4 per
    # axis instead of a size, which moves the samples.
    for h, w in [(6, 5), (3, 2)]:
        dino = torch.nn.functional.interpolate(
            grid, scale_factor=((h + 0.1) / 4, (w + 0.1) / 4), mode="bicubic", align_corners=False
        )
        assert dino.shape[-2:] == (h, w), dino.shape
        np.save(out / f"dino_bicubic_out_8x{h}x{w}.npy", dino[0].numpy())
    return meta


if __name__ == "__main__":
    main()
