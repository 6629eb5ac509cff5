"""Batch norms folded into convolutions: same outputs, and only where a norm alone reads a convolution."""

from __future__ import annotations

import torch
from timm.layers import BatchNormAct2d

from recsys.encoders.folding import fold_batch_norms


class _Net(torch.nn.Module):
    """conv -> norm (folded); conv -> timm norm+act (folded, activation kept); a conv whose output also
    feeds a skip connection, and a norm after a pooling (both left alone)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8)
        self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = BatchNormAct2d(8, act_layer=torch.nn.ReLU6)
        self.conv3, self.bn3 = torch.nn.Conv2d(8, 8, 1), torch.nn.BatchNorm2d(8)
        self.bn4 = torch.nn.BatchNorm2d(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn2(self.conv2(self.bn1(self.conv1(x))))
        y = self.conv3(x)
        x = self.bn3(y) + y  # conv3's output has two readers: not foldable
        return self.bn4(torch.nn.functional.avg_pool2d(x, 2))


def _with_statistics(net: torch.nn.Module) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(0)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=gen))
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen))
    return net.eval()


def test_foldable_norms_are_folded_and_the_outputs_stay():
    net = _with_statistics(_Net())
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = net(x)
        assert fold_batch_norms(net) == 2
        after = net(x)
    assert isinstance(net.bn1, torch.nn.Identity)
    assert isinstance(net.bn2, torch.nn.Sequential) and isinstance(net.bn2[1], torch.nn.ReLU6)  # activation kept
    assert isinstance(net.bn3, torch.nn.BatchNorm2d) and isinstance(net.bn4, torch.nn.BatchNorm2d)
    assert net.conv2.bias is not None  # the norm's shift moved into the convolution
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)
    assert fold_batch_norms(net) == 0  # nothing left to fold
