"""A C3D feature extractor (Tran et al., ICCV 2015) that serves clips of any size.

MMAction2's ``C3D`` ends in fully connected layers sized for 16x112x112 clips. This backbone
keeps only the convolutional part and returns the last feature map, so the recognizer's fusion
module pools it and ``FusionClsHead`` classifies, like every other stream.
"""

from __future__ import annotations

import torch
from mmaction.registry import MODELS
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import nn

#: Convolutions per block and their widths in units of ``base_channels``: conv1a | conv2a |
#: conv3a, conv3b | conv4a, conv4b | conv5a, conv5b (64, 128, 256, 256, 512 x 4 in the paper).
C3D_BLOCKS = (1, 1, 2, 2, 2)
C3D_WIDTHS = (1, 2, 4, 4, 8, 8, 8, 8)


@MODELS.register_module()
class C3DFeatures(BaseModule):
    """The eight 3x3x3 convolutions of C3D in five blocks, without its fully connected layers.

    Blocks 1 to 4 end in a max pool: 1x2x2 after block 1 (time is kept for the early layers,
    as in the paper), 2x2x2 after blocks 2 to 4. Pools round up (``ceil_mode``), so odd sizes
    keep their last row and short clips work: one time step stays one, 6 steps become 3, 2, 1.
    The paper's pool5 and fc6-fc8 are left out: the recognizer's fusion module pools.

    Args:
        in_channels (int): Channels of the clip (3 for RGB, 2 for flow). Defaults to 3.
        base_channels (int): Width of conv1a; the others are 2, 4 and 8 times it (64 in the
            paper, giving 512 output channels). Defaults to 64.
        norm_cfg (dict, optional): Normalisation after each conv, e.g. ``dict(type='BN3d')``,
            which helps training from scratch; the paper has none. Defaults to None.
        act_cfg (dict): Activation after each conv. Defaults to ReLU.
        init_cfg (dict | list[dict], optional): Initialisation config; by default the convs
            are Kaiming-initialised (``ConvModule``'s own default). Defaults to None.

    Shapes:
        x: (N, in_channels, T, H, W) -> (N, 8 * base_channels, T', H / 16, W / 16) with
        T' = ceil(T / 8) (H, W rounded up at each pool).
    """

    def __init__(
        self,
        in_channels: int = 3,
        base_channels: int = 64,
        norm_cfg: dict | None = None,
        act_cfg: dict | None = None,
        init_cfg: dict | list[dict] | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if in_channels < 1 or base_channels < 1:
            raise ValueError(
                f"in_channels and base_channels must be >= 1, got {in_channels}, {base_channels}"
            )
        self.in_channels = int(in_channels)
        self.base_channels = int(base_channels)
        act_cfg = dict(type="ReLU") if act_cfg is None else act_cfg
        widths = [self.base_channels * factor for factor in C3D_WIDTHS]
        self.out_channels = widths[-1]

        self.blocks = nn.ModuleList()
        width_iter = iter(widths)
        channels = self.in_channels
        for num_convs in C3D_BLOCKS:
            convs = []
            for _ in range(num_convs):
                width = next(width_iter)
                convs.append(
                    ConvModule(
                        channels,
                        width,
                        kernel_size=3,
                        padding=1,
                        conv_cfg=dict(type="Conv3d"),
                        norm_cfg=norm_cfg,
                        act_cfg=act_cfg,
                    )
                )
                channels = width
            self.blocks.append(nn.Sequential(*convs))
        pool_sizes = [(1, 2, 2)] + [(2, 2, 2)] * (len(C3D_BLOCKS) - 2)
        self.pools = nn.ModuleList(
            nn.MaxPool3d(kernel_size=size, stride=size, ceil_mode=True) for size in pool_sizes
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, T, H, W) clip -> (N, 8 * base_channels, T', H', W') feature map."""
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"C3DFeatures expects (N, {self.in_channels}, T, H, W) clips, got {tuple(x.shape)}"
            )
        for block, pool in zip(self.blocks[:-1], self.pools, strict=True):
            x = pool(block(x))
        return self.blocks[-1](x)
