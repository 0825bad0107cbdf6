"""gm_plugins' two-stream recognizer against a plain-PyTorch version of the paper's network.

The reference (:class:`ReferenceTwoStream`) is what the paper describes, written the way its
published code does it: two torchvision ResNet-50s (RGB frame, 12 stacked flow channels), their
2048x7x7 maps concatenated, a 1x1 conv 4096 -> 2048, global average pooling, dropout and a
linear classifier, trained by a bare loop (zero_grad, forward, cross-entropy, backward, AdamW
step). gm_plugins' side runs exactly what ``tools/train.py`` runs: the model built from the
config, its data preprocessor (stacking, uint8 -> float, normalisation, random flips) and the
mmengine optimiser wrapper built from the config's ``optim_wrapper``, through ``train_step`` and
``test_step``.

Each side lives in a child process of its own (so its peak memory is its own); the parent asks
them in turn for one timed repeat at a time, so a change of machine load hits both sides alike.
gm_plugins' side sets the memory allocator as ``tools/train.py`` does
(:func:`gm_plugins.utils.allocator.keep_freed_memory`); the reference runs with glibc's own
settings, as the paper's code does, and with ``Settings.reference_kept_memory`` also as a third
side, ``reference+kept``, given the same allocator setting.
:func:`check_same_function` copies the reference's weights into gm_plugins' model and compares
the logits, which shows that the two time the same computation.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from gm_plugins.benchmarks.inputs import random_windows
from gm_plugins.benchmarks.timing import items_per_second

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


class ReferenceTwoStream(nn.Module):
    """The paper's classifier in plain PyTorch.

    Args:
        flow_channels (int): Stacked flow channels (2 L). Defaults to 12.
        num_classes (int): Classes. Defaults to 3.

    Shapes:
        rgb (N, 3, H, W) and flow (N, flow_channels, H, W), normalised -> logits (N, num_classes).
    """

    def __init__(self, flow_channels: int = 12, num_classes: int = 3) -> None:
        super().__init__()
        from torchvision.models import resnet50

        def trunk(in_channels: int) -> nn.Sequential:
            net = resnet50(weights=None)
            if in_channels != 3:
                net.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
            return nn.Sequential(*list(net.children())[:-2])  # drop avgpool and fc

        self.rgb = trunk(3)
        self.flow = trunk(flow_channels)
        self.fuse = nn.Conv2d(4096, 2048, kernel_size=1)
        self.dropout = nn.Dropout(0.5)
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, rgb: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        fused = self.fuse(torch.cat([self.rgb(rgb), self.flow(flow)], dim=1))
        return self.fc(self.dropout(fused.mean(dim=(2, 3))))


@dataclass
class Settings:
    """What both sides run: the config of gm_plugins' side and the shared input sizes."""

    config: str
    size: int = 224
    frames: int = 1
    flow_fields: int = 6
    threads: int = 2
    iters: int = 2
    channels_last: bool = False
    fast_inference: bool = False
    reference_kept_memory: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def sides(self) -> tuple[str, ...]:
        """The timed sides: gm_plugins, the reference and maybe ``reference+kept``."""
        kept = (KEPT_REFERENCE,) if self.reference_kept_memory else ()
        return ("gm_plugins", "reference", *kept)


#: The reference given gm_plugins' allocator setting (``Settings.reference_kept_memory``).
KEPT_REFERENCE = "reference+kept"


def random_uint8_batch(
    batch_size: int, frames: int, flow_fields: int, size: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB (N, T, 3, S, S) uint8 and flow (N, L, 2, S, S) float32 windows of
    :func:`~gm_plugins.benchmarks.inputs.random_windows`, stacked; the same for a given seed."""
    shapes = dict(rgb=(frames, 3, size, size), flow=(flow_fields, 2, size, size))
    inputs = random_windows(shapes, batch_size, seed=seed)["inputs"]
    return torch.stack(inputs["rgb"]), torch.stack(inputs["flow"])


def packed_batch(rgb: torch.Tensor, flow: torch.Tensor) -> dict:
    """The collated format the dataset and ``pseudo_collate`` give ``train_step``."""
    from mmaction.structures import ActionDataSample

    return dict(
        inputs=dict(rgb=list(rgb), flow=list(flow)),
        data_samples=[ActionDataSample().set_gt_label(i % 3) for i in range(len(rgb))],
    )


def reference_inputs(rgb: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalise as the paper's loader does: (N, 1, 3, H, W) uint8 -> (N, 3, H, W), flow
    (N, L, 2, H, W) -> (N, 2L, H, W) in the order x0, y0, x1, y1, ..."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (rgb[:, rgb.shape[1] // 2].float() - mean) / std, flow.flatten(1, 2)


def build_gm_model(config: str) -> tuple[nn.Module, object]:
    """gm_plugins' model and optimiser wrapper, built from ``config`` as the runner builds them."""
    from mmengine.optim import build_optim_wrapper

    from gm_plugins.compat import library_scope
    from gm_plugins.models.loading import build_recognizer
    from gm_plugins.utils.config import load_config

    cfg = load_config(config, scopes=("mmaction", None), required=("model",))
    model = build_recognizer(cfg)
    with library_scope("mmaction"):
        optim_cfg = cfg.get("optim_wrapper", dict(optimizer=dict(type="AdamW", lr=1e-5)))
        optim_wrapper = build_optim_wrapper(model, optim_cfg)
    return model, optim_wrapper


def optimizer_settings(config: str) -> dict:
    """lr, betas, weight decay and amsgrad of the config's AdamW (torch's defaults if unset)."""
    from gm_plugins.utils.config import load_config

    cfg = load_config(config, scopes=("mmaction", None), required=("model",))
    optimizer = dict(cfg.get("optim_wrapper", {}).get("optimizer", {}) or {})
    kind = optimizer.pop("type", "AdamW")
    if kind != "AdamW":
        raise ValueError(f"{config}: the comparison runs AdamW on both sides, not {kind}")
    return {key: tuple(v) if isinstance(v, list) else v for key, v in optimizer.items()}


def reference_optimizer(model: nn.Module, settings: dict) -> torch.optim.Optimizer:
    """AdamW with gm_plugins' hyper-parameters (:func:`optimizer_settings`)."""
    return torch.optim.AdamW(model.parameters(), **settings)


def copy_reference_weights(reference: ReferenceTwoStream, model: nn.Module) -> None:
    """Load the reference's parameters and buffers into gm_plugins' two-stream ResNet-50.

    Both list their tensors in the same order (stem, the 16 bottlenecks with conv/bn in turn,
    fusion conv, classifier), only the names differ; every shape is checked.
    """
    pairs = [
        (model.backbone_of("rgb"), reference.rgb),
        (model.backbone_of("flow"), reference.flow),
        (model.fusion.fuse_conv, reference.fuse),
        (model.cls_head.fc_cls, reference.fc),
    ]
    for target, source in pairs:
        target_state, source_state = target.state_dict(), source.state_dict()
        if len(target_state) != len(source_state):
            raise ValueError(
                f"{type(target).__name__} holds {len(target_state)} tensors, the reference's "
                f"{type(source).__name__} {len(source_state)}: not the same architecture"
            )
        renamed = {}
        for (name, tensor), (source_name, value) in zip(
            target_state.items(), source_state.items(), strict=True
        ):
            if tensor.shape != value.shape:
                raise ValueError(f"{name} {tuple(tensor.shape)} != {source_name} {value.shape}")
            renamed[name] = value
        target.load_state_dict(renamed)


def check_same_function(config: str, size: int = 64, batch_size: int = 2) -> float:
    """Max |logit difference| of gm_plugins' model carrying the reference's weights (eval mode).

    Runs gm_plugins' whole inference path (data preprocessor, backbones, fusion, head) against
    the reference on the same uint8 windows.
    """
    torch.manual_seed(0)
    reference = ReferenceTwoStream().eval()
    model, _ = build_gm_model(config)
    model.eval()
    copy_reference_weights(reference, model)
    rgb, flow = random_uint8_batch(batch_size, 1, 6, size)
    with torch.no_grad():
        data = model.data_preprocessor(packed_batch(rgb, flow), False)
        ours, _ = model.extract_feat(data["inputs"], stage="head")
        theirs = reference(*reference_inputs(rgb, flow))
    return float((ours - theirs).abs().max())


# --- timing, one child process per side ------------------------------------------------------


def _steps(side: str, settings: Settings, batch_size: int, training: bool) -> Callable[[], None]:
    """A closure running one step of ``side`` (``'gm_plugins'`` or ``'reference'``)."""
    rgb, flow = random_uint8_batch(batch_size, settings.frames, settings.flow_fields, settings.size)
    memory_format = torch.channels_last if settings.channels_last else torch.contiguous_format
    if side == "gm_plugins":
        model, optim_wrapper = _state["gm"]
        model.train(training)
        data = packed_batch(rgb, flow)
        if training:
            return lambda: model.train_step(data, optim_wrapper)
        if settings.fast_inference:
            model = fast_copy(model, data)
        return lambda: model.test_step(data)
    reference, optimizer = _state["reference"]
    reference.train(training)
    labels = torch.arange(batch_size) % 3
    loss_fn = nn.CrossEntropyLoss()

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        inputs = [x.contiguous(memory_format=memory_format) for x in reference_inputs(rgb, flow)]
        loss_fn(reference(*inputs), labels).backward()
        optimizer.step()

    def test_step() -> None:
        inputs = [x.contiguous(memory_format=memory_format) for x in reference_inputs(rgb, flow)]
        reference(*inputs).softmax(dim=1)

    return train_step if training else test_step


_state: dict = {}


def fast_copy(model: nn.Module, data: dict) -> nn.Module:
    """The eval-mode model with BatchNorm folded and NHWC convolutions, checked on ``data``."""
    from gm_plugins.models.inference_speed import optimize_for_inference

    with torch.no_grad():
        inputs = model.data_preprocessor(data, False)["inputs"]
    optimized, record = optimize_for_inference(model.eval(), inputs)
    if not record["applied"]:
        raise RuntimeError(f"the optimised model is not the same function: {record['reason']}")
    return optimized


def _side_worker(side: str, settings: Settings, connection) -> None:
    """Child process: build ``side`` once, then time steps on request until told to stop."""
    from gm_plugins.utils.allocator import keep_freed_memory

    allocator = (
        keep_freed_memory()
        if side in ("gm_plugins", KEPT_REFERENCE)
        else dict(applied=False, reason="glibc's own malloc settings")
    )
    torch.set_num_threads(settings.threads)
    torch.manual_seed(0)
    import gm_plugins  # noqa: F401  (compat and registration)
    from gm_plugins.models.inference_speed import channels_last_convolutions

    if side == "gm_plugins":
        model, optim_wrapper = build_gm_model(settings.config)
        if settings.channels_last:
            channels_last_convolutions(model)
        _state["gm"] = (model, optim_wrapper)
    else:
        side = "reference"
        reference = ReferenceTwoStream(flow_channels=2 * settings.flow_fields)
        if settings.channels_last:
            channels_last_convolutions(reference)
        optimizer = reference_optimizer(reference, optimizer_settings(settings.config))
        _state["reference"] = (reference, optimizer)
    connection.send(("ready", torch.get_num_threads(), allocator))
    steps: dict = {}
    while True:
        request = connection.recv()
        if request is None:
            break
        kind, batch_size, warmup = request
        key = (kind, batch_size)
        if key not in steps:
            steps[key] = _steps(side, settings, batch_size, kind == "train")
        step = steps[key]
        with torch.set_grad_enabled(kind == "train"):
            seconds = 1 / items_per_second(step, 1, settings.iters, warmup)
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        connection.send((seconds, peak_mib))
    connection.close()


@dataclass
class Measurement:
    """Seconds per step of every repeat, and the side's peak resident memory so far."""

    seconds: list[float] = field(default_factory=list)
    peak_mib: float = 0.0

    def rate(self, batch_size: int) -> float:
        """Samples (or windows) per second from the median step time."""
        return batch_size / statistics.median(self.seconds)


def compare(
    settings: Settings,
    batch_sizes: tuple[int, ...] = (4, 16),
    repeats: int = 3,
    warmup: int = 1,
    kinds: tuple[str, ...] = ("train", "infer"),
    log: Callable[[str], None] = print,
) -> dict[tuple[str, str, int], Measurement]:
    """Time both sides, repeat by repeat in turn. Returns ``{(side, kind, batch): Measurement}``."""
    context = mp.get_context("spawn")
    sides = settings.sides
    workers = {}
    for side in sides:
        parent, child = context.Pipe()
        process = context.Process(target=_side_worker, args=(side, settings, child), daemon=True)
        process.start()
        workers[side] = (process, parent)
    results: dict[tuple[str, str, int], Measurement] = {}
    try:
        for side, (_, connection) in workers.items():
            _, threads, allocator = connection.recv()
            log(f"{side}: ready, {threads} torch threads; {allocator['reason']}")
        for kind in kinds:
            for batch_size in batch_sizes:
                for repeat in range(repeats):
                    for side in sides if repeat % 2 == 0 else sides[::-1]:
                        connection = workers[side][1]
                        connection.send((kind, batch_size, warmup if repeat == 0 else 0))
                        seconds, peak = connection.recv()
                        entry = results.setdefault((side, kind, batch_size), Measurement())
                        entry.seconds.append(seconds)
                        entry.peak_mib = max(entry.peak_mib, peak)
                log(
                    f"{kind} batch {batch_size}: "
                    + ", ".join(
                        f"{side} {results[(side, kind, batch_size)].rate(batch_size):.2f}/s"
                        for side in sides
                    )
                )
    finally:
        for process, connection in workers.values():
            if process.is_alive():
                connection.send(None)
            process.join(timeout=60)
            if process.is_alive():
                process.kill()
    return results
