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
    (out / "meta.json").write_text(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
