"""Device choice and the per-device memory layout of convolutional encoders."""

from __future__ import annotations

import pytest
import torch

from recsys.device import check_device, conv_memory_format, default_batch_size
from recsys.errors import ConfigError


def test_convolutions_run_channels_last_on_the_cpu_only():
    assert conv_memory_format("cpu") is torch.channels_last
    assert conv_memory_format("cuda") is torch.contiguous_format  # not measured there: torch's default
    assert conv_memory_format("cuda:1") is torch.contiguous_format


def test_a_device_this_machine_cannot_use_is_a_config_error():
    assert check_device("cpu") == "cpu"
    with pytest.raises(ConfigError, match="not a device"):
        check_device("bogus")


@pytest.mark.parametrize(("device", "size"), [("cpu", 32), ("cuda", 256), ("cuda:3", 256), ("mps", 32)])
def test_default_batch_size_per_device_kind(device, size):
    assert default_batch_size(device) == size
