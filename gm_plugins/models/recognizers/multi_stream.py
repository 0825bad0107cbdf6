"""The stream recognizer: an RGB stream, an optical-flow stream or both, fused and classified.

With both streams it is the paper's two-stream network (feature maps fused by a fusion module);
with one it is a one-stream baseline (TSN on RGB, C3D, CNN + LSTM, a flow-only ablation).
"""

from __future__ import annotations

import copy
import difflib
import inspect
from collections.abc import Mapping

import torch
from mmaction.models.recognizers.base import BaseRecognizer
from mmaction.registry import MODELS
from mmaction.utils import OptSampleList
from mmengine.model import BaseModel
from torch import nn

from ..data_preprocessors import MODALITY_CHANNELS
from ..fusion import BaseFusion, PoolFusion

#: How a stream's (N, T, C, H, W) input reaches its backbone:
#: ``stack2d``: time stacked into channels, (N, T*C, H, W) (x0, y0, x1, y1, ... for flow);
#: ``segments2d``: every time step separately, (N*T, C, H, W), features restacked along time
#: (TSN/TSM style); ``clip3d``: a clip (N, C, T, H, W) for 3D backbones.
STREAM_LAYOUTS = ("stack2d", "segments2d", "clip3d")
_STEP_NAMES = {"rgb": ("T", "RGB frames"), "flow": ("L", "flow fields")}


def check_registered(cfg: Mapping, role: str) -> None:
    """Raise a clear error when ``cfg['type']`` is not a registered model, suggesting names."""
    if not isinstance(cfg, Mapping) or "type" not in cfg:
        raise TypeError(f"{role} must be a config dict with a 'type' key, got {cfg!r}")
    type_name = cfg["type"]
    if not isinstance(type_name, str) or MODELS.get(type_name) is not None:
        return
    short_name = type_name.rpartition(".")[2]
    close = difflib.get_close_matches(short_name, sorted(MODELS.module_dict), n=3, cutoff=0.6)
    if close:
        alternatives = close[0] if len(close) == 1 else f"{', '.join(close[:-1])} or {close[-1]}"
        hint = f"did you mean {alternatives}?"
    else:
        hint = "is the module that registers it listed in custom_imports?"
    raise ValueError(
        f"{role} type '{type_name}' is not registered in {MODELS.scope}::{MODELS.name}; {hint}"
    )


def first_conv(module: nn.Module) -> nn.modules.conv._ConvNd | None:
    """The first convolution of ``module`` in definition order (a backbone's stem), if any."""
    for submodule in module.modules():
        if isinstance(submodule, nn.modules.conv._ConvNd):
            return submodule
    return None


def accepts_argument(module: nn.Module, name: str) -> bool:
    """Whether the class of ``module`` takes the constructor argument ``name``."""
    return name in inspect.signature(type(module).__init__).parameters


def arrange_stream_input(x: torch.Tensor, layout: str) -> torch.Tensor:
    """Lay a stream's (N, T, C, H, W) input out for its backbone (see ``STREAM_LAYOUTS``)."""
    batch, steps, channels, height, width = x.shape
    if layout == "stack2d":
        return x.reshape(batch, steps * channels, height, width)
    if layout == "segments2d":
        return x.reshape(batch * steps, channels, height, width)
    return x.permute(0, 2, 1, 3, 4).contiguous()


def arrange_stream_feature(
    feature: torch.Tensor | tuple, layout: str, batch: int, steps: int
) -> torch.Tensor:
    """Bring a backbone's output to (N, C, H, W) or (N, C, T, H, W).

    Backbones with several ``out_indices`` return a tuple; the deepest map is fused.
    ``segments2d`` features (N*T, C, H, W) are restacked to (N, C, T, H, W).
    """
    if isinstance(feature, (tuple, list)):
        feature = feature[-1]
    if layout == "segments2d" and feature.dim() == 4:
        _, channels, height, width = feature.shape
        feature = feature.view(batch, steps, channels, height, width).permute(0, 2, 1, 3, 4)
    return feature


@MODELS.register_module()
class MultiStreamRecognizer(BaseRecognizer):
    """Spatial (RGB) and/or temporal (optical flow) streams, a fusion module and a head.

    Inputs, as :class:`TwoStreamDataPreprocessor` gives them: ``dict(rgb=(N, T, 3, H, W),
    flow=(N, L, 2, H, W))``, or only the key of the one stream a baseline has. Each stream's
    backbone gives a feature map, the fusion module turns the maps into one (N, C) feature and
    the head classifies it. Configs may name it ``TwoStreamRecognizer`` too (same class).

    Args:
        rgb_backbone (dict, optional): Any registered 2D or 3D backbone for the RGB frames;
            None omits the spatial stream.
        flow_backbone (dict, optional): Backbone for the flow fields; None omits the
            temporal stream. At least one stream is required.
        fusion (dict, optional): Fusion module config (``ConcatConvFusion``, ``SumFusion``,
            ``LateFusion``, ``PoolFusion``). Defaults to ``PoolFusion`` with one stream;
            required with two.
        cls_head (dict): Head config, e.g. ``FusionClsHead``.
        rgb_input (str): Layout of the RGB input, one of ``STREAM_LAYOUTS``: ``'stack2d'``
            (T frames as 3*T channels of a 2D backbone), ``'segments2d'`` (each frame through
            a 2D backbone, e.g. ``ResNetTSM`` with ``num_segments=T``) or ``'clip3d'``
            ((3, T, H, W) clips for a 3D backbone). Defaults to ``'stack2d'``.
        flow_input (str): The same for the flow: ``'stack2d'`` gives a 2D backbone 2*L
            channels (x0, y0, x1, y1, ...), ``'clip3d'`` gives a 3D backbone (2, L, H, W).
            Defaults to ``'stack2d'``.
        train_cfg (dict, optional): Kept for mmaction compatibility. Defaults to None.
        test_cfg (dict, optional): Kept for mmaction compatibility. Defaults to None.
        data_preprocessor (dict, optional): Defaults to ``TwoStreamDataPreprocessor``.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(
        self,
        rgb_backbone: dict | None = None,
        flow_backbone: dict | None = None,
        fusion: dict | None = None,
        cls_head: dict | None = None,
        rgb_input: str = "stack2d",
        flow_input: str = "stack2d",
        train_cfg: dict | None = None,
        test_cfg: dict | None = None,
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type="TwoStreamDataPreprocessor")
        if isinstance(data_preprocessor, Mapping):
            check_registered(data_preprocessor, "data_preprocessor")
            data_preprocessor = MODELS.build(copy.deepcopy(data_preprocessor))
        # BaseRecognizer.__init__ builds a single ``backbone``; the shared parts are in BaseModel.
        BaseModel.__init__(self, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone_from = "mmaction2"
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg

        self.stream_layouts: dict[str, str] = {}
        for stream, backbone_cfg, layout in (
            ("rgb", rgb_backbone, rgb_input),
            ("flow", flow_backbone, flow_input),
        ):
            if backbone_cfg is None:
                continue
            if layout not in STREAM_LAYOUTS:
                raise ValueError(
                    f"{stream}_input must be one of {STREAM_LAYOUTS}, got {layout!r}: 'stack2d' "
                    "or 'segments2d' for 2D backbones, 'clip3d' for 3D backbones"
                )
            check_registered(backbone_cfg, f"{stream}_backbone")
            backbone = MODELS.build(copy.deepcopy(backbone_cfg))
            self._check_backbone_dimensionality(stream, backbone, layout)
            self.add_module(f"{stream}_backbone", backbone)
            self.stream_layouts[stream] = layout
        if not self.stream_layouts:
            raise ValueError("MultiStreamRecognizer needs rgb_backbone, flow_backbone or both")

        self.fusion = self._build_fusion(fusion)
        if cls_head is None:
            raise ValueError(
                "MultiStreamRecognizer needs a cls_head, e.g. dict(type='FusionClsHead')"
            )
        check_registered(cls_head, "cls_head")
        self.cls_head = MODELS.build(copy.deepcopy(cls_head))
        self._check_head_fits_fusion()

    # -- building ---------------------------------------------------------------------------

    @property
    def streams(self) -> tuple[str, ...]:
        """The streams this recognizer has, in ``('rgb', 'flow')`` order."""
        return tuple(self.stream_layouts)

    def backbone_of(self, stream: str) -> nn.Module:
        """The backbone of ``stream`` (``'rgb'`` or ``'flow'``)."""
        return getattr(self, f"{stream}_backbone")

    @staticmethod
    def _check_backbone_dimensionality(stream: str, backbone: nn.Module, layout: str) -> None:
        stem = first_conv(backbone)
        if stem is None:
            return
        is_3d = isinstance(stem, nn.Conv3d)
        if layout == "clip3d" and not is_3d:
            raise ValueError(
                f"{stream}_backbone {type(backbone).__name__} is a 2D network, but "
                f"{stream}_input='clip3d' feeds it (N, C, T, H, W) clips: set "
                f"{stream}_input='stack2d' or 'segments2d', or use a 3D backbone"
            )
        if layout != "clip3d" and is_3d:
            raise ValueError(
                f"{stream}_backbone {type(backbone).__name__} is a 3D network, but "
                f"{stream}_input='{layout}' feeds it 2D images: set {stream}_input='clip3d'"
            )

    def _build_fusion(self, fusion: dict | None) -> BaseFusion:
        if fusion is None:
            if len(self.streams) > 1:
                raise ValueError(
                    "two streams need a fusion module, e.g. fusion=dict(type='ConcatConvFusion', "
                    "in_channels=dict(rgb=2048, flow=2048), out_channels=2048)"
                )
            return PoolFusion()
        check_registered(fusion, "fusion")
        module = MODELS.build(copy.deepcopy(fusion))
        configured = getattr(module, "streams", None)
        if configured is not None and set(configured) != set(self.streams):
            raise ValueError(
                f"fusion.in_channels names streams {list(configured)} but the recognizer has "
                f"streams {list(self.streams)}: give fusion.in_channels one entry per backbone"
            )
        return module

    def _check_head_fits_fusion(self) -> None:
        fusion_gives_scores = getattr(self.fusion, "produces_class_scores", False)
        head_classifies = getattr(self.cls_head, "with_fc", True)
        fusion_name = type(self.fusion).__name__
        if fusion_gives_scores and head_classifies:
            raise ValueError(
                f"{fusion_name} already outputs class scores: set cls_head.with_fc=False"
            )
        if not fusion_gives_scores and not head_classifies:
            raise ValueError(
                f"{fusion_name} outputs features, not class scores: set cls_head.with_fc=True"
            )
        fused_width = getattr(self.fusion, "out_channels", None)
        head_width = getattr(self.cls_head, "in_channels", None)
        if fused_width is not None and head_width is not None and fused_width != head_width:
            raise ValueError(
                f"{fusion_name} gives {fused_width}-channel features but cls_head.in_channels="
                f"{head_width}: set cls_head.in_channels={fused_width}"
            )

    # -- forward ----------------------------------------------------------------------------

    def _check_stream_input(self, stream: str, x: torch.Tensor) -> None:
        """Compare the channels the backbone's stem takes with what the clip gives."""
        layout = self.stream_layouts[stream]
        backbone = self.backbone_of(stream)
        steps, channels = x.shape[1], x.shape[2]
        step_symbol, step_name = _STEP_NAMES[stream]
        if layout == "segments2d":
            segments = getattr(backbone, "num_segments", None)
            if isinstance(segments, int) and segments != steps:
                raise ValueError(
                    f"{stream}_backbone shifts features across num_segments={segments} "
                    f"segments but the clip has {step_symbol}={steps} {step_name}: set "
                    f"{stream}_backbone.num_segments={steps}"
                )
        stem = first_conv(backbone)
        if stem is None:
            return
        given = steps * channels if layout == "stack2d" else channels
        if stem.in_channels == given:
            return
        if layout == "stack2d":
            source = f"the clip has {step_symbol}={steps} {step_name} ({given} channels)"
        else:
            source = f"{stream}_input='{layout}' gives it {given} channels per {step_name[:-1]}"
        if accepts_argument(backbone, "in_channels"):
            fix = f"set {stream}_backbone.in_channels={given}"
        else:
            fix = (
                f"{type(backbone).__name__} takes no in_channels argument, so use a backbone "
                f"that does (e.g. ResNet, ResNet3d, X3D) for this stream"
            )
        raise ValueError(
            f"{stream}_backbone expects {stem.in_channels} input channels but {source}: {fix}"
        )

    def extract_feat(
        self,
        inputs: Mapping[str, torch.Tensor],
        stage: str = "fusion",
        data_samples: OptSampleList = None,
        test_mode: bool = False,
    ) -> tuple[torch.Tensor | dict[str, torch.Tensor], dict]:
        """Run the streams and, unless ``stage='backbone'``, the fusion (and head).

        Args:
            inputs (dict[str, Tensor]): ``rgb`` (N, T, 3, H, W) and/or ``flow`` (N, L, 2, H, W).
            stage (str): ``'backbone'`` returns ``{stream: feature map}``, ``'fusion'`` the
                fused (N, C) feature, ``'head'`` the class scores (N, num_classes).
            data_samples (list[ActionDataSample], optional): Unused; kept for the API.
            test_mode (bool): Unused; kept for the API.

        Returns:
            tuple: The features of ``stage`` and a dict of keyword arguments for the head.
        """
        if stage not in ("backbone", "fusion", "head"):
            raise ValueError(f"stage must be 'backbone', 'fusion' or 'head', got {stage!r}")
        if not isinstance(inputs, Mapping):
            raise TypeError(
                "MultiStreamRecognizer expects inputs=dict(rgb=..., flow=...) from "
                f"TwoStreamDataPreprocessor, got {type(inputs).__name__}"
            )
        feats = {}
        for stream, layout in self.stream_layouts.items():
            x = inputs.get(stream)
            if x is None:
                raise KeyError(
                    f"the recognizer has a {stream} stream but the batch has no '{stream}' "
                    "input: make the pipeline pack it, or omit the stream's backbone"
                )
            if x.dim() != 5 or x.shape[2] != MODALITY_CHANNELS[stream]:
                raise ValueError(
                    f"'{stream}' input must be (N, T, {MODALITY_CHANNELS[stream]}, H, W), got "
                    f"{tuple(x.shape)}"
                )
            self._check_stream_input(stream, x)
            feature = self.backbone_of(stream)(arrange_stream_input(x, layout))
            feats[stream] = arrange_stream_feature(feature, layout, x.shape[0], x.shape[1])
        if stage == "backbone":
            return feats, {}
        fused = self.fusion(feats)
        if stage == "fusion":
            return fused, {}
        return self.cls_head(fused), {}


# The name configs used before the recognizer also ran one-stream baselines: the same class.
MODELS.register_module(name="TwoStreamRecognizer", module=MultiStreamRecognizer)
