"""Fusion modules: turn the per-stream feature maps of the recognizer into one feature.

Every fusion module takes a mapping ``{stream name: feature map}`` (streams ``'rgb'`` and
``'flow'``; maps of shape (N, C, H, W) from 2D backbones or (N, C, T, H, W) from 3D backbones
and segment-wise 2D backbones) and returns a tensor of shape (N, out_channels) for the head.
``PoolFusion``, ``ConcatConvFusion``, ``SumFusion`` and ``LateFusion`` average the time axis
away first, so 2D and 3D streams can be fused with each other. ``ConcatConvFusion`` and
``SumFusion`` combine maps position by position; maps of different heights or widths (backbones of
different total strides) are brought to one size first (``spatial_align``: pool the larger down,
or resize the smaller up). ``LSTMFusion`` keeps the time axis: it reads the per-step features of
``segments2d`` or ``clip3d`` streams in order (the CNN + LSTM baseline).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from mmaction.registry import MODELS
from mmcv.cnn import build_activation_layer
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.model.weight_init import normal_init
from torch import nn


def pool_time(feature: torch.Tensor, stream: str) -> torch.Tensor:
    """Average a (N, C, T, H, W) feature map over T; (N, C, H, W) maps pass unchanged."""
    if feature.dim() == 5:
        return feature.mean(dim=2)
    if feature.dim() == 4:
        return feature
    raise ValueError(
        f"the {stream} stream gave a feature map of shape {tuple(feature.shape)}; fusion "
        "expects (N, C, H, W) or (N, C, T, H, W). Is the backbone a classification network "
        "that already pools its output?"
    )


def global_average_pool(feature_map: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C)."""
    return feature_map.mean(dim=(2, 3))


#: How ``ConcatConvFusion`` and ``SumFusion`` bring maps of different sizes to one size:
#: ``'pool'`` averages the larger maps down to the smallest height and width (adaptive average
#: pooling), ``'upsample'`` resizes the smaller maps up to the largest (bilinear); ``None``
#: refuses maps of different sizes.
SPATIAL_ALIGN_MODES = ("pool", "upsample")


def check_same_spatial_size(maps: Mapping[str, torch.Tensor], fusion_name: str) -> None:
    """Raise when the streams' feature maps differ in height or width, naming each size."""
    sizes = {stream: tuple(fmap.shape[-2:]) for stream, fmap in maps.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(
            f"{fusion_name} fuses feature maps position by position, but their spatial sizes "
            f"differ: {describe_sizes(sizes)}. Set fusion.spatial_align='pool' or 'upsample' to "
            "bring them to one size, feed both streams the same frame size and use backbones "
            "with the same total stride, or use LateFusion or PoolFusion, which pool first."
        )


def describe_sizes(sizes: Mapping[str, tuple[int, int]]) -> str:
    """``{'rgb': (2, 2), 'flow': (4, 4)}`` -> ``'rgb gives 2x2, flow gives 4x4'``."""
    return ", ".join(f"{stream} gives {h}x{w}" for stream, (h, w) in sizes.items())


def align_spatial_sizes(
    maps: Mapping[str, torch.Tensor], mode: str
) -> tuple[dict[str, torch.Tensor], tuple[int, int]]:
    """Bring (N, C_s, H_s, W_s) maps to one height and width.

    Args:
        maps (Mapping[str, Tensor]): ``{stream: (N, C_s, H_s, W_s)}``.
        mode (str): ``'pool'``: adaptive average pooling to (min H_s, min W_s);
            ``'upsample'``: bilinear resizing to (max H_s, max W_s). See ``SPATIAL_ALIGN_MODES``.

    Returns:
        tuple: ``{stream: (N, C_s, H, W)}`` (maps already of that size are passed unchanged)
        and the common size (H, W).
    """
    heights = [fmap.shape[-2] for fmap in maps.values()]
    widths = [fmap.shape[-1] for fmap in maps.values()]
    if mode == "pool":
        size = (min(heights), min(widths))
    elif mode == "upsample":
        size = (max(heights), max(widths))
    else:
        raise ValueError(f"spatial_align must be one of {SPATIAL_ALIGN_MODES}, got {mode!r}")
    aligned = {}
    for stream, fmap in maps.items():
        if tuple(fmap.shape[-2:]) == size:
            aligned[stream] = fmap
        elif mode == "pool":
            aligned[stream] = F.adaptive_avg_pool2d(fmap, size)
        else:
            aligned[stream] = F.interpolate(fmap, size=size, mode="bilinear", align_corners=False)
    return aligned, size


def canonical_stream_order(streams) -> list[str]:
    """Stream names in the order fusions concatenate them: rgb, flow, then the rest sorted."""
    streams = list(streams)
    known = [stream for stream in ("rgb", "flow") if stream in streams]
    return known + sorted(set(streams) - set(known))


class BaseFusion(BaseModule):
    """Common checks of the fusion modules.

    Args:
        in_channels (Mapping[str, int], optional): Channels of each stream's feature map,
            e.g. ``dict(rgb=2048, flow=2048)``; its keys name the streams this module fuses.
            Streams are concatenated in the canonical order (``rgb``, ``flow``, then other
            names sorted) whatever the order of the keys: a config that mmengine dumped (which
            sorts keys) builds the same model. ``None`` accepts any streams unchecked.
        init_cfg (dict, optional): Initialisation config. Defaults to None.

    Attributes:
        out_channels (int | None): Width of the fused feature given to the head.
        produces_class_scores (bool): True when the output already holds class scores,
            so the head must not add a classifier of its own.
    """

    produces_class_scores = False

    def __init__(self, in_channels: Mapping[str, int] | None, init_cfg: dict | None = None):
        super().__init__(init_cfg=init_cfg)
        if in_channels is not None:
            if not isinstance(in_channels, Mapping) or not in_channels:
                raise TypeError(
                    f"{type(self).__name__}.in_channels must map stream names to channel "
                    f"counts, e.g. dict(rgb=2048, flow=2048); got {in_channels!r}"
                )
            in_channels = {
                stream: int(in_channels[stream])
                for stream in canonical_stream_order(map(str, in_channels))
            }
        self.in_channels: dict[str, int] | None = in_channels
        self.out_channels: int | None = None

    @property
    def streams(self) -> tuple[str, ...] | None:
        """The stream names this module was configured for (None: any)."""
        return None if self.in_channels is None else tuple(self.in_channels)

    def check_streams(self, feats: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Check that ``feats`` holds the configured streams with their channel counts.

        Returns:
            dict[str, Tensor]: the maps unchanged, ordered like ``in_channels`` (as given when
            ``in_channels`` is None).
        """
        name = type(self).__name__
        if not feats:
            raise ValueError(f"{name} received no feature maps")
        if self.in_channels is None:
            return dict(feats)
        if set(feats) != set(self.in_channels):
            raise ValueError(
                f"{name} was configured for streams {list(self.in_channels)} but received "
                f"{list(feats)}: make fusion.in_channels name exactly the recognizer's streams"
            )
        for stream, width in self.in_channels.items():
            if feats[stream].shape[1] != width:
                raise ValueError(
                    f"{name} expects {width}-channel {stream} features but the {stream} "
                    f"backbone gives {feats[stream].shape[1]} channels: set "
                    f"fusion.in_channels.{stream}={feats[stream].shape[1]}"
                )
        return {stream: feats[stream] for stream in self.in_channels}

    def prepare(self, feats: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Check the streams and channels of ``feats`` and average temporal axes away.

        Returns:
            dict[str, Tensor]: (N, C, H, W) maps, ordered like ``in_channels``.
        """
        return {
            stream: pool_time(fmap, stream) for stream, fmap in self.check_streams(feats).items()
        }


class SpatialAlignment:
    """Bring the streams' maps to one spatial size before a position-wise fusion.

    Classes using it set ``self.spatial_align`` (one of ``SPATIAL_ALIGN_MODES`` or None) with
    :meth:`set_spatial_align`. Each new combination of sizes is logged once (mmengine's
    ``print_log``), so a recognizer that runs the fusion at build time logs it there.
    """

    def set_spatial_align(self, spatial_align: str | None) -> None:
        if spatial_align is not None and spatial_align not in SPATIAL_ALIGN_MODES:
            raise ValueError(
                f"{type(self).__name__}.spatial_align must be one of {SPATIAL_ALIGN_MODES} or "
                f"None, got {spatial_align!r}"
            )
        self.spatial_align = spatial_align
        self._logged_sizes: set[tuple] = set()

    def align(self, maps: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``{stream: (N, C_s, H_s, W_s)}`` -> maps of one size, as ``spatial_align`` says."""
        name = type(self).__name__
        # int(): under tracing (FLOP counters) sizes are tensors, which never compare equal
        sizes = {stream: tuple(int(v) for v in fmap.shape[-2:]) for stream, fmap in maps.items()}
        if len(set(sizes.values())) <= 1:
            return maps
        if self.spatial_align is None:
            check_same_spatial_size(maps, name)
        aligned, (height, width) = align_spatial_sizes(maps, self.spatial_align)
        key = tuple(sizes.items())
        if key not in self._logged_sizes:
            self._logged_sizes.add(key)
            how = "average-pools" if self.spatial_align == "pool" else "bilinearly resizes"
            print_log(
                f"{name}: the streams' feature maps differ in size ({describe_sizes(sizes)}); "
                f"it {how} them to {height}x{width} (spatial_align='{self.spatial_align}')",
                logger="current",
            )
        return aligned


@MODELS.register_module()
class PoolFusion(BaseFusion):
    """Global-average-pool each stream and concatenate the vectors (a single stream passes).

    Args:
        in_channels (Mapping[str, int], optional): Channels per stream; ``None`` accepts
            any streams (then ``out_channels`` is unknown until the first forward).

    Shapes:
        feats: ``{stream: (N, C_s, [T,] H, W)}`` -> (N, sum of C_s).
    """

    def __init__(self, in_channels: Mapping[str, int] | None = None, init_cfg: dict | None = None):
        super().__init__(in_channels, init_cfg=init_cfg)
        if self.in_channels is not None:
            self.out_channels = sum(self.in_channels.values())

    def forward(self, feats: Mapping[str, torch.Tensor]) -> torch.Tensor:
        maps = self.prepare(feats)
        return torch.cat([global_average_pool(fmap) for fmap in maps.values()], dim=1)


@MODELS.register_module()
class ConcatConvFusion(SpatialAlignment, BaseFusion):
    """The paper's spatiotemporal fusion: concatenate maps, 1x1 conv, global average pool.

    Args:
        in_channels (Mapping[str, int]): Channels per stream, e.g. ``dict(rgb=2048, flow=2048)``;
            concatenation follows this order.
        out_channels (int, optional): Channels after the 1x1 conv. Defaults to half the
            concatenated width (4096 -> 2048 in the paper).
        act_cfg (dict, optional): Activation after the conv. The paper uses none, which
            makes conv-then-pool a linear map of the pooled features; ``dict(type='ReLU')``
            makes the fusion non-linear. Defaults to None.
        spatial_align (str, optional): How maps of different heights or widths (backbones of
            different total strides) are brought to one size before concatenation:
            ``'pool'`` average-pools the larger maps to the smallest size, ``'upsample'``
            resizes the smaller maps up to the largest (bilinear); logged once per size
            combination. None refuses maps of different sizes. Defaults to ``'pool'``.
        init_cfg (dict, optional): Initialisation config. Defaults to None.

    With a single stream there is nothing to fuse: its map is pooled and passed through, so
    ``out_channels`` is that stream's width.

    Shapes:
        feats: ``{stream: (N, C_s, [T,] H_s, W_s)}`` -> (N, out_channels).
    """

    def __init__(
        self,
        in_channels: Mapping[str, int],
        out_channels: int | None = None,
        act_cfg: dict | None = None,
        spatial_align: str | None = "pool",
        init_cfg: dict | None = None,
    ):
        if in_channels is None:
            raise TypeError(
                "ConcatConvFusion needs in_channels, e.g. dict(rgb=2048, flow=2048); "
                "MultiStreamRecognizer infers them when it is given input_shapes"
            )
        super().__init__(in_channels, init_cfg=init_cfg)
        self.set_spatial_align(spatial_align)
        concat_width = sum(self.in_channels.values())
        if len(self.in_channels) == 1:
            self.out_channels = concat_width
            self.fuse_conv = None
            self.activation = None
            return
        self.out_channels = int(out_channels) if out_channels is not None else concat_width // 2
        self.fuse_conv = nn.Conv2d(concat_width, self.out_channels, kernel_size=1)
        self.activation = build_activation_layer(act_cfg) if act_cfg is not None else None

    def forward(self, feats: Mapping[str, torch.Tensor]) -> torch.Tensor:
        maps = self.prepare(feats)
        if self.fuse_conv is None:
            return global_average_pool(next(iter(maps.values())))
        maps = self.align(maps)
        fused = self.fuse_conv(torch.cat(list(maps.values()), dim=1))
        if self.activation is not None:
            fused = self.activation(fused)
        return global_average_pool(fused)


@MODELS.register_module()
class SumFusion(SpatialAlignment, BaseFusion):
    """Sum the streams' maps position by position (after 1x1 projections if widths differ).

    Args:
        in_channels (Mapping[str, int]): Channels per stream.
        out_channels (int, optional): Common width. Streams of another width get a 1x1 conv
            projection to it. Defaults to the streams' width, which must then be equal.
        spatial_align (str, optional): ``'pool'``, ``'upsample'`` or None, as in
            ``ConcatConvFusion``. Defaults to ``'pool'``.
        init_cfg (dict, optional): Initialisation config. Defaults to None.

    Shapes:
        feats: ``{stream: (N, C_s, [T,] H_s, W_s)}`` -> (N, out_channels).
    """

    def __init__(
        self,
        in_channels: Mapping[str, int],
        out_channels: int | None = None,
        spatial_align: str | None = "pool",
        init_cfg: dict | None = None,
    ):
        if in_channels is None:
            raise TypeError(
                "SumFusion needs in_channels, e.g. dict(rgb=2048, flow=2048); "
                "MultiStreamRecognizer infers them when it is given input_shapes"
            )
        super().__init__(in_channels, init_cfg=init_cfg)
        self.set_spatial_align(spatial_align)
        widths = set(self.in_channels.values())
        if out_channels is None:
            if len(widths) > 1:
                raise ValueError(
                    f"SumFusion got streams of different widths {self.in_channels}: set "
                    "fusion.out_channels so that each stream is projected to it"
                )
            out_channels = widths.pop()
        self.out_channels = int(out_channels)
        self.projections = nn.ModuleDict(
            {
                stream: nn.Conv2d(width, self.out_channels, kernel_size=1)
                for stream, width in self.in_channels.items()
                if width != self.out_channels
            }
        )

    def forward(self, feats: Mapping[str, torch.Tensor]) -> torch.Tensor:
        maps = self.align(self.prepare(feats))
        projected = [
            self.projections[stream](fmap) if stream in self.projections else fmap
            for stream, fmap in maps.items()
        ]
        return global_average_pool(torch.stack(projected).sum(dim=0))


@MODELS.register_module()
class LateFusion(BaseFusion):
    """Classify each stream on its own and average the class scores with weights.

    This is how two-stream TSN results are usually reported; trained end to end here, the
    weighted average of the streams' logits is the output (pair it with a head that has
    ``with_fc=False``).

    Args:
        in_channels (Mapping[str, int]): Channels per stream.
        num_classes (int): Number of classes.
        weights (Mapping[str, float], optional): Weight of each stream's scores; normalised to
            sum to 1. Defaults to equal weights.
        dropout_ratio (float): Dropout before each stream's classifier. Defaults to 0.
        init_std (float): Std of the classifiers' normal initialisation. Defaults to 0.01.
        init_cfg (dict, optional): Initialisation config. Defaults to None.

    Shapes:
        feats: ``{stream: (N, C_s, [T,] H, W)}`` -> (N, num_classes) class scores (logits).
    """

    produces_class_scores = True

    def __init__(
        self,
        in_channels: Mapping[str, int],
        num_classes: int,
        weights: Mapping[str, float] | None = None,
        dropout_ratio: float = 0.0,
        init_std: float = 0.01,
        init_cfg: dict | None = None,
    ):
        if in_channels is None:
            raise TypeError("LateFusion needs in_channels, e.g. dict(rgb=2048, flow=2048)")
        super().__init__(in_channels, init_cfg=init_cfg)
        self.num_classes = int(num_classes)
        self.out_channels = self.num_classes
        self.init_std = init_std
        weights = dict(weights) if weights is not None else dict.fromkeys(self.in_channels, 1.0)
        if set(weights) != set(self.in_channels):
            raise ValueError(
                f"LateFusion.weights names streams {list(weights)} but in_channels names "
                f"{list(self.in_channels)}: give one weight per stream"
            )
        if any(weight < 0 for weight in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError(f"LateFusion.weights must be non-negative and not all 0: {weights}")
        total = sum(weights.values())
        self.weights = {stream: weights[stream] / total for stream in self.in_channels}
        self.dropout = nn.Dropout(p=dropout_ratio) if dropout_ratio > 0 else nn.Identity()
        self.classifiers = nn.ModuleDict(
            {
                stream: nn.Linear(width, self.num_classes)
                for stream, width in self.in_channels.items()
            }
        )

    def init_weights(self) -> None:
        """Small normal weights for the per-stream classifiers, as mmaction's heads do."""
        super().init_weights()
        if self.init_cfg is None:
            for classifier in self.classifiers.values():
                normal_init(classifier, std=self.init_std)

    def stream_scores(self, feats: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each stream's class scores: ``{stream: (N, num_classes)}``."""
        maps = self.prepare(feats)
        return {
            stream: self.classifiers[stream](self.dropout(global_average_pool(fmap)))
            for stream, fmap in maps.items()
        }

    def forward(self, feats: Mapping[str, torch.Tensor]) -> torch.Tensor:
        scores = self.stream_scores(feats)
        return sum(self.weights[stream] * score for stream, score in scores.items())


@MODELS.register_module()
class LSTMFusion(BaseFusion):
    """Spatially pool each time step's feature map and run an LSTM over the steps in order.

    (N, C, T, H, W) maps -> spatial average -> (N, T, C) -> LSTM -> the last hidden state of
    the top layer (N, hidden_channels), for ``FusionClsHead``. With two streams, their features
    of the same step are concatenated (the streams must have equal T), in ``in_channels`` order.

    Args:
        in_channels (Mapping[str, int]): Channels per stream, e.g. ``dict(rgb=256)``.
        hidden_channels (int): LSTM hidden size. Defaults to 256.
        num_layers (int): Stacked LSTM layers. Defaults to 1.
        bidirectional (bool): Also run the steps backwards; the output is then the forward
            direction's last state and the backward direction's state at the first step,
            concatenated (2 * hidden_channels). Defaults to False.
        dropout (float): Dropout between stacked LSTM layers (needs ``num_layers > 1``).
            Defaults to 0.
        init_cfg (dict, optional): Initialisation config; by default PyTorch's LSTM
            initialisation. Defaults to None.

    Shapes:
        feats: ``{stream: (N, C_s, T, H, W)}`` -> (N, out_channels), where ``out_channels`` is
        ``hidden_channels`` (times 2 if ``bidirectional``).
    """

    def __init__(
        self,
        in_channels: Mapping[str, int],
        hidden_channels: int = 256,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        init_cfg: dict | None = None,
    ) -> None:
        if in_channels is None:
            raise TypeError("LSTMFusion needs in_channels, e.g. dict(rgb=256)")
        super().__init__(in_channels, init_cfg=init_cfg)
        if hidden_channels < 1 or num_layers < 1:
            raise ValueError(
                f"hidden_channels and num_layers must be >= 1, got {hidden_channels}, {num_layers}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if dropout > 0 and num_layers == 1:
            raise ValueError(
                "LSTMFusion.dropout acts between stacked LSTM layers: set num_layers > 1, or "
                "dropout=0 and use the head's dropout_ratio"
            )
        self.hidden_channels = int(hidden_channels)
        self.num_layers = int(num_layers)
        self.bidirectional = bool(bidirectional)
        self.out_channels = self.hidden_channels * (2 if self.bidirectional else 1)
        self.lstm = nn.LSTM(
            input_size=sum(self.in_channels.values()),
            hidden_size=self.hidden_channels,
            num_layers=self.num_layers,
            batch_first=True,
            dropout=float(dropout),
            bidirectional=self.bidirectional,
        )

    def sequences(self, feats: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Check the streams and turn their maps into one (N, T, sum of C_s) sequence."""
        name = type(self).__name__
        sequences = {}
        for stream, fmap in self.check_streams(feats).items():
            if fmap.dim() != 5:
                raise ValueError(
                    f"{name} needs a time axis, but the {stream} stream gave a feature map of "
                    f"shape {tuple(fmap.shape)}: set {stream}_input='segments2d' (a 2D backbone "
                    "per frame) or 'clip3d', giving (N, C, T, H, W)"
                )
            sequences[stream] = fmap.mean(dim=(3, 4)).transpose(1, 2)  # (N, T, C)
        lengths = {stream: sequence.shape[1] for stream, sequence in sequences.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(
                f"{name} concatenates the streams step by step, but their time steps differ: "
                f"{lengths}; give the streams clips of equal length"
            )
        return torch.cat(list(sequences.values()), dim=2)

    def forward(self, feats: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``{stream: (N, C_s, T, H, W)}`` -> (N, out_channels), the LSTM's last state."""
        _, (hidden, _) = self.lstm(self.sequences(feats))
        # hidden: (num_layers * directions, N, hidden); the top layer's directions come last.
        if self.bidirectional:
            return torch.cat([hidden[-2], hidden[-1]], dim=1)
        return hidden[-1]
