"""The stream recognizer: an RGB stream, an optical-flow stream or both, fused and classified.

With both streams it is the paper's two-stream network (feature maps fused by a fusion module);
with one it is a one-stream baseline (TSN on RGB, C3D, CNN + LSTM, a flow-only ablation).

Given the shape of one window's input (``input_shapes``), the recognizer fits the parts to each
other at build time, so swapping a backbone is one line of config: each backbone's first
convolution is fitted to the channels its stream gives, a dry forward pass finds the channels of
each stream's feature map, and the fusion's and the head's ``in_channels`` are filled in (or, when
given, checked).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from mmaction.models.recognizers.base import BaseRecognizer
from mmaction.registry import MODELS
from mmaction.utils import OptSampleList
from mmengine.logging import print_log
from mmengine.model import BaseModel
from torch import nn

from ..backbones.library_backbones import (
    library_backbone_class,
    loads_weights_in_init,
    replace_first_conv,
)
from ..data_preprocessors import MODALITY_CHANNELS
from ..fusion import BaseFusion, canonical_stream_order
from .streams import (
    AUTO_LAYOUT,
    STREAM_LAYOUTS,
    accepts_argument,
    arrange_stream_feature,
    arrange_stream_input,
    backbone_name,
    build_backbone,
    check_registered,
    config_class,
    describe_map,
    describe_output,
    first_conv,
    resolve_layout,
)

_STEP_NAMES = {"rgb": ("T", "RGB frames"), "flow": ("L", "flow fields")}
#: Batch size of the build-time dry forward pass (2: safe for any normalisation layer).
_DRY_RUN_BATCH = 2


@MODELS.register_module()
class MultiStreamRecognizer(BaseRecognizer):
    """Spatial (RGB) and/or temporal (optical flow) streams, a fusion module and a head.

    Inputs, as :class:`TwoStreamDataPreprocessor` gives them: ``dict(rgb=(N, T, 3, H, W),
    flow=(N, L, 2, H, W))``, or only the key of the one stream a baseline has. Each stream's
    backbone gives a feature map, the fusion module turns the maps into one (N, C) feature and
    the head classifies it.

    Backbones: any registered 2D or 3D backbone (MMAction2's ``ResNet``, ``ResNetTSM``,
    ``MobileNetV2``, ``X3D``, ``ResNet3dSlowOnly`` ...), a torchvision model
    (``dict(type='torchvision.resnet18')``) or a timm model (``dict(type='timm.<name>')``);
    the library models are built without their classifier and give their last feature map.

    Fitting the parts (at build time):

    - **Stems.** When a backbone's first convolution takes other channels than its stream
      gives (3T stacked frames or 2L stacked flow fields for ``stack2d``, 3 or 2 for the
      other layouts) and the config does not set ``in_channels``: a backbone that takes an
      ``in_channels`` argument (ResNet, X3D, ResNet3d ...) is built with the right value;
      any other (MobileNetV2, torchvision and timm models), and any backbone that loads
      pretrained weights, gets its first convolution replaced by one with the right input
      channels whose filters are the mean of the original filters over their input
      channels (TSN's cross-modality initialisation). A backbone that loads pretrained
      weights in ``init_weights()`` is initialised first, so the averaged filters are the
      pretrained ones, and the recognizer's ``init_weights()`` leaves it alone afterwards.
      An ``in_channels`` the config sets is checked instead (``in_channels=None`` means: fit
      it). ``stack2d`` streams need ``input_shapes`` for this.
    - **Channels.** With ``input_shapes``, each backbone runs once on zeros of that shape
      (batch of 2, eval mode, no gradients; training mode is restored). The maps' channels
      fill ``fusion.in_channels`` and the fusion's width fills ``cls_head.in_channels``
      where the config leaves them out (or None); values the config gives are checked
      against the maps. A ``num_segments`` of a TSM-like backbone is taken from T (or L)
      the same way. What was inferred is logged once (mmengine ``print_log``).

    Args:
        rgb_backbone (dict, optional): Backbone for the RGB frames; None omits the spatial
            stream.
        flow_backbone (dict, optional): Backbone for the flow fields; None omits the
            temporal stream. At least one stream is required.
        fusion (dict, optional): Fusion module config (``ConcatConvFusion``, ``SumFusion``,
            ``LateFusion``, ``PoolFusion``, ``LSTMFusion``). Defaults to ``PoolFusion`` with
            one stream; required with two.
        cls_head (dict): Head config, e.g. ``FusionClsHead``.
        rgb_input (str): Layout of the RGB input, one of ``STREAM_LAYOUTS`` or ``'auto'``:
            ``'stack2d'`` (T frames as 3*T channels of a 2D backbone), ``'segments2d'`` (each
            frame through a 2D backbone, e.g. ``ResNetTSM``), ``'clip3d'`` ((3, T, H, W)
            clips for a 3D backbone), or ``'auto'``: ``clip3d`` for 3D backbones,
            ``segments2d`` for TSM-like backbones (a ``num_segments`` attribute), else
            ``stack2d``. Defaults to ``'stack2d'``.
        flow_input (str): The same for the flow: ``'stack2d'`` gives a 2D backbone 2*L
            channels (x0, y0, x1, y1, ...), ``'clip3d'`` gives a 3D backbone (2, L, H, W).
            Defaults to ``'stack2d'``.
        input_shapes (dict, optional): The shape of one window's input per stream, without
            the batch axis: ``dict(rgb=(T, 3, H, W), flow=(L, 2, H, W))``, e.g.
            ``dict(rgb=(1, 3, 64, 64), flow=(6, 2, 64, 64))`` for the demo. Enables the
            build-time fitting above; entries of streams the model does not have are ignored.
            The model still runs on other sizes afterwards. Defaults to None: channels must
            be given in the config.
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
        input_shapes: Mapping[str, tuple[int, ...]] | None = None,
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
        if cls_head is None:
            raise ValueError(
                "MultiStreamRecognizer needs a cls_head, e.g. dict(type='FusionClsHead')"
            )
        backbones = {"rgb": (rgb_backbone, rgb_input), "flow": (flow_backbone, flow_input)}
        configured = [stream for stream, (cfg, _) in backbones.items() if cfg is not None]
        if not configured:
            raise ValueError("MultiStreamRecognizer needs rgb_backbone, flow_backbone or both")
        self.input_shapes = self._check_input_shapes(input_shapes, configured)

        self.stream_layouts: dict[str, str] = {}
        for stream in configured:
            backbone_cfg, layout = backbones[stream]
            self._build_stream(stream, backbone_cfg, layout)

        feature_maps = self._dry_run_backbones()
        self.fusion = self._build_fusion(fusion, feature_maps, cls_head)
        fused = self._dry_run_fusion(feature_maps)
        head_cfg = self._head_config(cls_head, fused)
        self.cls_head = MODELS.build(head_cfg)
        self._check_head_fits_fusion(fused)
        if feature_maps:
            self._log_fitted_sizes(feature_maps, fusion, cls_head)

    # -- building ---------------------------------------------------------------------------

    @property
    def streams(self) -> tuple[str, ...]:
        """The streams this recognizer has, in ``('rgb', 'flow')`` order."""
        return tuple(self.stream_layouts)

    def backbone_of(self, stream: str) -> nn.Module:
        """The backbone of ``stream`` (``'rgb'`` or ``'flow'``)."""
        return getattr(self, f"{stream}_backbone")

    @staticmethod
    def _check_input_shapes(
        input_shapes: Mapping | None, streams: list[str]
    ) -> dict[str, tuple[int, int, int, int]]:
        if input_shapes is None:
            return {}
        example = "input_shapes=dict(rgb=(T, 3, H, W), flow=(L, 2, H, W))"
        if not isinstance(input_shapes, Mapping):
            raise TypeError(f"input_shapes must be a dict like {example}, got {input_shapes!r}")
        unknown = sorted(set(input_shapes) - set(MODALITY_CHANNELS))
        if unknown:
            raise ValueError(f"input_shapes names unknown streams {unknown}: use {example}")
        shapes = {}
        for stream in streams:
            step_symbol, _ = _STEP_NAMES[stream]
            expected = f"({step_symbol}, {MODALITY_CHANNELS[stream]}, H, W)"
            if stream not in input_shapes:
                raise ValueError(
                    f"input_shapes has no '{stream}' entry but the model has a {stream} stream: "
                    f"add {stream}={expected}, the shape of one window's {stream} input"
                )
            shape = tuple(int(size) for size in input_shapes[stream])
            if len(shape) != 4 or shape[1] != MODALITY_CHANNELS[stream] or min(shape) < 1:
                raise ValueError(
                    f"input_shapes.{stream} must be {expected}, got {tuple(input_shapes[stream])}"
                )
            shapes[stream] = shape
        return shapes

    def _build_stream(self, stream: str, backbone_cfg: Mapping, layout: str) -> None:
        if layout not in (*STREAM_LAYOUTS, AUTO_LAYOUT):
            raise ValueError(
                f"{stream}_input must be one of {(*STREAM_LAYOUTS, AUTO_LAYOUT)}, got "
                f"{layout!r}: 'stack2d' or 'segments2d' for 2D backbones, 'clip3d' for 3D "
                "backbones, 'auto' to choose from the backbone"
            )
        role = f"{stream}_backbone"
        if not isinstance(backbone_cfg, Mapping) or "type" not in backbone_cfg:
            raise TypeError(f"{role} must be a config dict with a 'type' key, got {backbone_cfg!r}")
        if library_backbone_class(backbone_cfg) is None:
            check_registered(backbone_cfg, role)
        cfg = dict(copy.deepcopy(backbone_cfg))
        if "in_channels" in cfg and cfg["in_channels"] is None:
            del cfg["in_channels"]  # None asks for the stem to be fitted to the input
        self._take_num_segments(stream, cfg, layout)
        rng_state = torch.random.get_rng_state()
        backbone = build_backbone(cfg)
        layout = resolve_layout(backbone, layout)
        self._check_backbone_dimensionality(stream, backbone, layout)
        needed = self._stem_channels_needed(stream, layout)
        stem = first_conv(backbone)
        if needed is not None and stem is not None and stem.in_channels != needed:
            source = self._describe_input(stream, layout, needed)
            if cfg.get("in_channels") is not None:
                raise ValueError(
                    f"{stream}_backbone.in_channels={cfg['in_channels']} but {source}: set "
                    f"{stream}_backbone.in_channels={needed}, or leave it out to fit the stem to "
                    "the input"
                )
            if accepts_argument(backbone, "in_channels") and not loads_weights_in_init(backbone):
                # Build it again as if configured so: the same modules, and (the random state
                # restored) the same initial weights as a config that sets in_channels.
                torch.random.set_rng_state(rng_state)
                backbone = build_backbone(dict(cfg, in_channels=needed))
                print_log(
                    f"{stream}_backbone {backbone_name(backbone)}: in_channels={needed}, as "
                    f"{source}",
                    logger="current",
                )
            if first_conv(backbone).in_channels != needed:
                self._replace_stem(stream, backbone, needed, source)
        self.add_module(role, backbone)
        self.stream_layouts[stream] = layout

    def _take_num_segments(self, stream: str, cfg: dict, layout: str) -> None:
        """Set a TSM-like backbone's ``num_segments`` from ``input_shapes`` (or check it)."""
        shape = self.input_shapes.get(stream)
        if shape is None or layout not in ("segments2d", AUTO_LAYOUT):
            return
        if not accepts_argument(config_class(cfg), "num_segments"):
            return
        steps = shape[0]
        given = cfg.get("num_segments")
        if given is None:
            cfg["num_segments"] = steps
        elif given != steps:
            step_symbol, step_name = _STEP_NAMES[stream]
            raise ValueError(
                f"{stream}_backbone shifts features across num_segments={given} segments but "
                f"input_shapes.{stream} has {step_symbol}={steps} {step_name}: set "
                f"{stream}_backbone.num_segments={steps}, or leave it out to take it from "
                "input_shapes"
            )

    def _stem_channels_needed(self, stream: str, layout: str) -> int | None:
        """Channels the stream gives its backbone per image or clip; None if still unknown."""
        channels = MODALITY_CHANNELS[stream]
        if layout != "stack2d":
            return channels
        shape = self.input_shapes.get(stream)
        return None if shape is None else shape[0] * channels

    def _describe_input(self, stream: str, layout: str, channels: int) -> str:
        step_symbol, step_name = _STEP_NAMES[stream]
        if layout == "stack2d":
            steps = channels // MODALITY_CHANNELS[stream]
            return (
                f"input_shapes.{stream} has {step_symbol}={steps} {step_name}, stacked as "
                f"{channels} channels ({stream}_input='stack2d')"
            )
        return f"{stream}_input='{layout}' gives it {channels} channels per {step_name[:-1]}"

    @staticmethod
    def _replace_stem(stream: str, backbone: nn.Module, needed: int, source: str) -> None:
        """Give the backbone's first convolution ``needed`` input channels (see class doc)."""
        pretrained = loads_weights_in_init(backbone)
        if pretrained:
            # Load the RGB weights now and keep the recognizer's init_weights() from loading
            # them again over the averaged stem (mmengine skips modules whose is_init is set).
            backbone.init_weights()
            backbone.is_init = True
        name, former = replace_first_conv(backbone, needed)
        weights = "pretrained" if pretrained else "initial"
        print_log(
            f"{stream}_backbone {backbone_name(backbone)}: its first convolution ({name}) now "
            f"takes {needed} input channels instead of {former}, as {source}; its filters are "
            f"the mean of its {weights} filters over their {former} input channels",
            logger="current",
        )

    @staticmethod
    def _check_backbone_dimensionality(stream: str, backbone: nn.Module, layout: str) -> None:
        stem = first_conv(backbone)
        if stem is None:
            return
        is_3d = isinstance(stem, nn.Conv3d)
        if layout == "clip3d" and not is_3d:
            raise ValueError(
                f"{stream}_backbone {backbone_name(backbone)} is a 2D network, but "
                f"{stream}_input='clip3d' feeds it (N, C, T, H, W) clips: set "
                f"{stream}_input='stack2d' or 'segments2d', or use a 3D backbone"
            )
        if layout != "clip3d" and is_3d:
            raise ValueError(
                f"{stream}_backbone {backbone_name(backbone)} is a 3D network, but "
                f"{stream}_input='{layout}' feeds it 2D images: set {stream}_input='clip3d'"
            )

    def _dry_run_backbones(self) -> dict[str, torch.Tensor]:
        """Each backbone's feature map for zeros of ``input_shapes`` ({} without them)."""
        if not self.input_shapes:
            return {}
        feature_maps = {}
        for stream, layout in self.stream_layouts.items():
            backbone = self.backbone_of(stream)
            shape = self.input_shapes[stream]
            where = f"input_shapes.{stream}={shape} ({stream}_input='{layout}')"
            name = backbone_name(backbone)
            was_training = backbone.training
            backbone.eval()
            try:
                with torch.no_grad():
                    x = arrange_stream_input(torch.zeros(_DRY_RUN_BATCH, *shape), layout)
                    feature = arrange_stream_feature(backbone(x), layout, _DRY_RUN_BATCH, shape[0])
            except Exception as error:
                raise ValueError(
                    f"{stream}_backbone {name} failed on a dry run at {where}: {error}"
                ) from error
            finally:
                backbone.train(was_training)
            if not isinstance(feature, torch.Tensor) or feature.dim() not in (4, 5):
                raise ValueError(
                    f"{stream}_backbone {name} gives {describe_output(feature)} at {where}, not "
                    "a feature map (N, C, H, W) or (N, C, T, H, W): use a backbone without its "
                    "classifier or class token (MMAction2's C3D ends in fully connected layers: "
                    "use C3DFeatures; MViT: set output_cls_token=False)"
                )
            feature_maps[stream] = feature
        return feature_maps

    def _build_fusion(
        self, fusion: Mapping | None, feature_maps: dict[str, torch.Tensor], cls_head: Mapping
    ) -> BaseFusion:
        if fusion is None:
            if len(self.streams) > 1:
                raise ValueError(
                    "two streams need a fusion module, e.g. fusion=dict(type='ConcatConvFusion') "
                    "(its in_channels are inferred when the recognizer has input_shapes)"
                )
            fusion = dict(type="PoolFusion")
        check_registered(fusion, "fusion")
        cfg = dict(copy.deepcopy(fusion))
        fusion_class = config_class(cfg)
        if feature_maps:
            widths = {stream: int(fmap.shape[1]) for stream, fmap in feature_maps.items()}
            given = cfg.get("in_channels")
            if given is None and accepts_argument(fusion_class, "in_channels"):
                cfg["in_channels"] = {stream: widths[stream] for stream in self.streams}
            elif isinstance(given, Mapping):
                self._check_fusion_channels(given, widths)
        # A fusion that classifies (LateFusion) takes the head's number of classes.
        head_classes = cls_head.get("num_classes")
        takes_classes = accepts_argument(fusion_class, "num_classes")
        if cfg.get("num_classes") is None and head_classes is not None and takes_classes:
            cfg["num_classes"] = head_classes
        module = MODELS.build(cfg)
        configured = getattr(module, "streams", None)
        if configured is not None and set(configured) != set(self.streams):
            raise ValueError(
                f"fusion.in_channels names streams {list(configured)} but the recognizer has "
                f"streams {list(self.streams)}: give fusion.in_channels one entry per backbone"
            )
        return module

    def _check_fusion_channels(self, given: Mapping, widths: Mapping[str, int]) -> None:
        for stream in canonical_stream_order(given):
            if stream not in widths or int(given[stream]) == widths[stream]:
                continue
            name = backbone_name(self.backbone_of(stream))
            raise ValueError(
                f"fusion.in_channels.{stream}={given[stream]} but the {stream} backbone ({name}) "
                f"gives {widths[stream]}-channel maps at input_shapes.{stream}="
                f"{self.input_shapes[stream]}: set fusion.in_channels.{stream}={widths[stream]}, "
                "or leave fusion.in_channels out to infer it"
            )

    def _dry_run_fusion(self, feature_maps: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """The fused feature of the dry-run maps (None without them); checks the fusion fits."""
        if not feature_maps:
            return None
        was_training = self.fusion.training
        self.fusion.eval()
        try:
            with torch.no_grad():
                return self.fusion(feature_maps)
        except Exception as error:
            shapes = ", ".join(f"{s} {describe_map(f)}" for s, f in feature_maps.items())
            raise ValueError(
                f"fusion {type(self.fusion).__name__} failed on the backbones' maps at "
                f"input_shapes ({shapes}): {error}"
            ) from error
        finally:
            self.fusion.train(was_training)

    def _fused_width(self, fused: torch.Tensor | None) -> int | None:
        width = getattr(self.fusion, "out_channels", None)
        if width is None and fused is not None:
            width = int(fused.shape[1])
        return width

    def _head_config(self, cls_head: Mapping, fused: torch.Tensor | None) -> dict:
        check_registered(cls_head, "cls_head")
        cfg = dict(copy.deepcopy(cls_head))
        if cfg.get("in_channels") is not None or not accepts_argument(
            config_class(cfg), "in_channels"
        ):
            return cfg
        width = self._fused_width(fused)
        if width is None:
            raise ValueError(
                f"cls_head.in_channels is not given and the width of "
                f"{type(self.fusion).__name__}'s output is unknown: give the recognizer "
                "input_shapes=dict(rgb=(T, 3, H, W), flow=(L, 2, H, W)) to infer it, or set "
                "cls_head.in_channels"
            )
        cfg["in_channels"] = width
        return cfg

    def _check_head_fits_fusion(self, fused: torch.Tensor | None = None) -> None:
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
        fused_width = self._fused_width(fused)
        head_width = getattr(self.cls_head, "in_channels", None)
        if fused_width is not None and head_width is not None and fused_width != head_width:
            raise ValueError(
                f"{fusion_name} gives {fused_width}-channel features but cls_head.in_channels="
                f"{head_width}: set cls_head.in_channels={fused_width}"
            )

    def _log_fitted_sizes(
        self, feature_maps: dict[str, torch.Tensor], fusion: Mapping | None, cls_head: Mapping
    ) -> None:
        streams = "; ".join(
            f"{stream}_backbone {backbone_name(self.backbone_of(stream))} "
            f"({self.stream_layouts[stream]}) gives {describe_map(fmap)} maps at "
            f"{self.input_shapes[stream]}"
            for stream, fmap in feature_maps.items()
        )
        fusion_given = fusion is not None and fusion.get("in_channels") is not None
        fusion_channels = getattr(self.fusion, "in_channels", None)
        head_given = cls_head.get("in_channels") is not None
        head_channels = getattr(self.cls_head, "in_channels", None)
        print_log(
            f"{type(self).__name__}: {streams}; fusion.in_channels={fusion_channels} "
            f"({'given' if fusion_given else 'inferred'}), cls_head.in_channels={head_channels} "
            f"({'given' if head_given else 'inferred'})",
            logger="current",
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
                f"{backbone_name(backbone)} takes no in_channels argument, so give the "
                f"recognizer input_shapes=dict({stream}=({steps}, {channels}, H, W)) and its first "
                "convolution is fitted to the input at build time"
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
