"""Writes two tiny checkpoints in the original WGOL code's layouts, for the strict-key loading
tests of `src/systems/wgol/weights.rs`:

* `wgol_vgg16_tiny.pth`: torchvision's VGG-16 layout (`features.<i>`, `classifier.<i>`), as
  `vgg16-397923af.pth`, at 1/16 of the width.
* `wgol_spa_tiny.pth.tar`: a training checkpoint of the original's `vgg_sst` network in mode
  `spa` (Sequentials `conv1_2`, `conv3`, `conv4`, `conv5` cut from torchvision's `features` at
  10, 17 and 24; the `cls` head), saved as its `train_sst.py` saves it: a dict with
  `state_dict` holding DataParallel's `module.`-prefixed keys, at 1/16 of the width, 3 classes.

`wgol_checkpoints.json` holds the sum of every tensor by its name in the file.
Run: python tests/oracles/make_wgol_checkpoints.py (PyTorch 2.9.0, seed 0).
"""
import json
import pathlib

import torch
from torch import nn

torch.manual_seed(0)
OUT = pathlib.Path(__file__).parent
CFG = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M']
DIV = 16


def features():
    layers, c = [], 3
    for v in CFG:
        if v == 'M':
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, v // DIV, 3, padding=1), nn.ReLU(True)]
            c = v // DIV
    return layers


# torchvision layout
feats = nn.Sequential(*features())
HID = 4096 // 64  # the classifier, unused by WGOL, narrower still
classifier = nn.Sequential(nn.Linear(512 // DIV * 49, HID), nn.ReLU(True), nn.Dropout(),
                           nn.Linear(HID, HID), nn.ReLU(True), nn.Dropout(),
                           nn.Linear(HID, 10))
tv = {}
for k, v in feats.state_dict().items():
    tv['features.' + k] = v
for k, v in classifier.state_dict().items():
    tv['classifier.' + k] = v
torch.save(tv, OUT / 'wgol_vgg16_tiny.pth')


# the original's vgg_sst in mode spa
class Spa(nn.Module):
    def __init__(self, layers, classes):
        super().__init__()
        self.conv1_2 = nn.Sequential(*layers[:10])
        self.conv3 = nn.Sequential(*layers[10:17])
        self.conv4 = nn.Sequential(*layers[17:24])
        self.conv5 = nn.Sequential(*layers[24:-1])
        w = 1024 // DIV
        self.cls = nn.Sequential(nn.Conv2d(512 // DIV, w, 3, padding=1), nn.ReLU(True),
                                 nn.Conv2d(w, w, 3, padding=1), nn.ReLU(True),
                                 nn.Conv2d(w, classes, 1))


spa = Spa(features(), 3)
state = {'module.' + k: v for k, v in spa.state_dict().items()}
torch.save({'epoch': 20, 'arch': 'vgg_sst', 'global_counter': 0, 'state_dict': state},
           OUT / 'wgol_spa_tiny.pth.tar')

sums = {
    'vgg16': {k: float(v.double().sum()) for k, v in tv.items()},
    'spa': {k: float(v.double().sum()) for k, v in state.items()},
}
(OUT / 'wgol_checkpoints.json').write_text(json.dumps(sums, indent=1, sort_keys=True) + '\n')
