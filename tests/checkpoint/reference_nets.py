"""Small stand-ins for the networks of the original RIDE and classifier-balancing code.

Written for the importer tests from the reference code's definitions: the same module
names (so ``state_dict`` keys are the originals'), parameter layouts (RIDE's NormedLinear
stores ``(D, C)``) and test-time forward passes (RIDE: mean of the experts' ``s``-scaled
logits; expert assignment: early exit at ``sigmoid > 0.5`` with the router reading
``[top-K mean logits, hidden]``). Widths are parameters so the tests stay tiny; the reference
hard-codes 16/64-channel stems. Pooling is global averaging, which is what the reference's
``AvgPool2d(7)`` does on its 224-pixel inputs.
"""

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def randomize_bn(module: nn.Module, seed: int = 0) -> None:
    """Non-trivial BatchNorm statistics and affine parameters, so eval mode is tested."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.num_batches_tracked.fill_(7)


class Wrapper(nn.Module):
    """RIDE's ``model.model.Model``: the network lives under ``backbone``."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone


def ride_state_dict(net: nn.Module):
    """Keys as RIDE's trainer saves them: ``DataParallel(Model(net))`` -> ``module.backbone.*``."""
    return nn.DataParallel(Wrapper(net)).state_dict()


class NormedLinear(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features).uniform_(-1, 1))

    def forward(self, x):
        return F.normalize(x, dim=1).mm(F.normalize(self.weight, dim=0))


class _PadA(nn.Module):
    """Option-A shortcut: subsample by 2, zero-pad the channels evenly on both sides."""

    def __init__(self, pad: int):
        super().__init__()
        self.pad = pad

    def forward(self, x):
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad), "constant", 0)


class CifarBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, option: str = "A"):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = (
                _PadA((cout - cin) // 2)
                if option == "A"
                else nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
                )
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    def __init__(self, cin, planes, stride=1, downsample=None, groups=1, base_width=64):
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


def bottleneck_stage(cin, planes, blocks, stride, groups, base_width):
    down = None
    if stride != 1 or cin != planes * 4:
        down = nn.Sequential(
            nn.Conv2d(cin, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4)
        )
    layers = [Bottleneck(cin, planes, stride, down, groups, base_width)]
    layers += [
        Bottleneck(planes * 4, planes, 1, None, groups, base_width) for _ in range(blocks - 1)
    ]
    return nn.Sequential(*layers)


class _Experts(nn.Module):
    """Per-expert part, classifiers and (optionally) expert assignment of RIDE networks."""

    def _init_heads(self, num_experts, dim, num_classes, use_norm, s, top_k):
        self.num_experts = num_experts
        self.linears = nn.ModuleList(
            NormedLinear(dim, num_classes) if use_norm else nn.Linear(dim, num_classes)
            for _ in range(num_experts)
        )
        self.s = s if use_norm else 1
        self.top_k = top_k
        if top_k:
            self.expert_help_pred_hidden_fcs = nn.ModuleList(
                nn.Linear(dim, 16) for _ in range(num_experts - 1)
            )
            self.expert_help_pred_fc = nn.Linear(16 + top_k, 1)

    def expert(self, shared, e):
        """(s-scaled logits, feature map before pooling) of expert e."""
        fmap = shared
        for stage in self.expert_stages(e):
            fmap = stage(fmap)
        pooled = F.adaptive_avg_pool2d(fmap, 1).flatten(1)
        return self.linears[e](pooled) * self.s, fmap

    def pred_help(self, fmap, mean_logits, i):
        f = F.adaptive_avg_pool2d(fmap, 1).flatten(1)
        f = F.relu(self.expert_help_pred_hidden_fcs[i](f / f.norm(dim=1, keepdim=True)))
        top = torch.topk(mean_logits, k=self.top_k, dim=1).values
        return self.expert_help_pred_fc(torch.cat((top, f), dim=1))

    def forward(self, x):
        """Eval-mode output: mean logits; with routers ``(logits, experts used (N, 1))``."""
        shared = self.trunk(x)
        if not self.top_k:
            return torch.stack(
                [self.expert(shared, e)[0] for e in range(self.num_experts)], 1
            ).mean(1)
        nxt = torch.ones(x.shape[0], dtype=torch.bool)
        used = torch.ones(x.shape[0], 1, dtype=torch.long)
        output, fmap = self.expert(shared, 0)
        for i in range(1, self.num_experts):
            pred = self.pred_help(fmap, output[nxt] / i, i - 1).view(-1)
            nxt[nxt.clone()] = torch.sigmoid(pred) > 0.5
            if not nxt.any():
                break
            logits, fmap = self.expert(shared[nxt], i)
            output[nxt] += logits
            used[nxt] += 1
        return output / used, used


class RefResNetS(_Experts):
    """RIDE's ``ResNet_s`` (CIFAR ResNet-32) with E experts; ``top_k`` adds the EA routers."""

    def __init__(
        self,
        num_experts=3,
        num_classes=10,
        widths=(4, 6, 12),
        use_norm=True,
        s=30.0,
        top_k=0,
        option="A",
        blocks=5,
    ):
        super().__init__()
        stem, w2, w3 = widths
        self.conv1 = nn.Conv2d(3, stem, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.layer1 = self._stage(stem, stem, blocks, 1, option)
        self.layer2s = nn.ModuleList(
            self._stage(stem, w2, blocks, 2, option) for _ in range(num_experts)
        )
        self.layer3s = nn.ModuleList(
            self._stage(w2, w3, blocks, 2, option) for _ in range(num_experts)
        )
        self._init_heads(num_experts, w3, num_classes, use_norm, s, top_k)

    @staticmethod
    def _stage(cin, cout, blocks, stride, option):
        return nn.Sequential(
            *[
                CifarBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1, option)
                for i in range(blocks)
            ]
        )

    def trunk(self, x):
        return self.layer1(F.relu(self.bn1(self.conv1(x))))

    def expert_stages(self, e):
        return [self.layer2s[e], self.layer3s[e]]


class RefRIDEResNeXt(_Experts):
    """RIDE's ``ResNext``/``ResNet`` (bottlenecks; layer3s/layer4s per expert)."""

    def __init__(
        self,
        num_experts=2,
        num_classes=10,
        stem=8,
        planes=(8, 16, 24, 48),
        groups=2,
        base_width=16,
        use_norm=True,
        s=30.0,
        top_k=0,
        blocks: Sequence[int] = (3, 4, 6, 3),
    ):
        super().__init__()
        self.conv1 = nn.Conv2d(3, stem, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = bottleneck_stage(stem, planes[0], blocks[0], 1, groups, base_width)
        self.layer2 = bottleneck_stage(planes[0] * 4, planes[1], blocks[1], 2, groups, base_width)
        self.layer3s = nn.ModuleList(
            bottleneck_stage(planes[1] * 4, planes[2], blocks[2], 2, groups, base_width)
            for _ in range(num_experts)
        )
        self.layer4s = nn.ModuleList(
            bottleneck_stage(planes[2] * 4, planes[3], blocks[3], 2, groups, base_width)
            for _ in range(num_experts)
        )
        self._init_heads(num_experts, planes[3] * 4, num_classes, use_norm, s, top_k)

    def trunk(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        return self.layer2(self.layer1(x))

    def expert_stages(self, e):
        return [self.layer3s[e], self.layer4s[e]]


class RefFeatureResNeXt(nn.Module):
    """classifier-balancing's ``ResNext`` feature model (returns ``(features, None)``)."""

    def __init__(
        self, stem=8, planes=(8, 16, 32, 64), groups=2, base_width=16, blocks=(3, 4, 6, 3)
    ):
        super().__init__()
        self.conv1 = nn.Conv2d(3, stem, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = stem
        for i, (p, b) in enumerate(zip(planes, blocks)):
            self.add_module(
                f"layer{i + 1}", bottleneck_stage(cin, p, b, 1 if i == 0 else 2, groups, base_width)
            )
            cin = p * 4

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return F.adaptive_avg_pool2d(x, 1).flatten(1), None


class RefDotProduct(nn.Module):
    """``DotProductClassifier``; with ``lws`` the ``TauNormClassifier`` (fc(x) * scales)."""

    def __init__(self, num_classes=10, feat_dim=256, lws=False):
        super().__init__()
        self.fc = nn.Linear(feat_dim, num_classes)
        if lws:
            self.scales = nn.Parameter(torch.rand(num_classes) + 0.5)

    def forward(self, x):
        x = self.fc(x)
        return (x * self.scales if hasattr(self, "scales") else x), None
