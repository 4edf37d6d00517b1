"""The input convention, put into the graph that is quantized and compiled.

The authors feed their networks ``Normalize(ImageNet)(pixels / 255)`` computed outside the network. The IMX500
feeds the network's input tensor with ``pixels / 256`` (dnnParams.xml: an unsigned 8-bit input with scale 1/256, see
shared/notes/toolchain.md) and no normalisation. :class:`SensorInput` puts the authors' normalisation *and* the
256/255 pixel-scale correction in front of a network as one per-channel multiply-add (an IMX500-convertible op), so
``SensorInput(net)(pixels / 256) == net(Normalize(pixels / 255))``. Its constants are not parameters and are not
saved: ``state_dict()`` of the wrapped network stays the authors'.
"""

from __future__ import annotations

import torch
from torch import nn

from imx500_sam.preprocessor import IMAGENET_MEAN, IMAGENET_STD

SENSOR_PIXEL_DIVISOR = 256.0  # the IMX500 input tensor is uint8 / 256
TRAINING_PIXEL_DIVISOR = 255.0  # the authors' (torchvision ToTensor) pixels / 255


class SensorInput(nn.Module):
    """``net`` behind the ImageNet normalisation: takes RGB = pixels / ``pixel_divisor`` (default: the sensor's)."""

    def __init__(
        self,
        net: nn.Module,
        pixel_divisor: float = SENSOR_PIXEL_DIVISOR,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        self.net = net
        self.pixel_divisor = float(pixel_divisor)
        gain = self.pixel_divisor / TRAINING_PIXEL_DIVISOR
        m = torch.tensor(mean).view(1, 3, 1, 1)
        s = torch.tensor(std).view(1, 3, 1, 1)
        self.register_buffer("scale", gain / s, persistent=False)
        self.register_buffer("shift", -m / s, persistent=False)

    @property
    def config(self):
        """The wrapped network's configuration."""
        return self.net.config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * self.scale + self.shift)
