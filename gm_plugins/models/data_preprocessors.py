"""Batching, normalisation and flip augmentation of the RGB and optical-flow stream inputs."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from mmaction.registry import MODELS
from mmengine.model import BaseDataPreprocessor

#: Channels per time step of each modality: RGB frames and (x, y) flow fields.
MODALITY_CHANNELS = {"rgb": 3, "flow": 2}
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def flip_horizontally(
    rgb: torch.Tensor | None, flow: torch.Tensor | None, flip_mask: torch.Tensor
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Mirror the selected samples of a batch left-right, keeping flow consistent with RGB.

    Mirroring reverses horizontal motion, so the x-flow changes sign; the y-flow does not.

    Args:
        rgb (Tensor, optional): (N, T, 3, H, W) frames.
        flow (Tensor, optional): (N, L, 2, H, W) flow fields, channel 0 = x, 1 = y,
            not yet shifted by a mean (the sign change assumes a zero-centred x-flow).
        flip_mask (Tensor): (N,) bool, which samples to mirror.

    Returns:
        tuple: ``(rgb, flow)``, new tensors of the same shapes (None stays None).
    """
    select = flip_mask.view(-1, 1, 1, 1, 1)
    if rgb is not None:
        rgb = torch.where(select, rgb.flip(-1), rgb)
    if flow is not None:
        x_sign = torch.tensor([-1.0, 1.0], dtype=flow.dtype, device=flow.device)
        mirrored = flow.flip(-1) * x_sign.view(1, 1, 2, 1, 1)
        flow = torch.where(select, mirrored, flow)
    return rgb, flow


def stack_modality(samples: Sequence[torch.Tensor] | torch.Tensor, modality: str) -> torch.Tensor:
    """Stack per-sample (T, C, H, W) tensors of one modality into (N, T, C, H, W)."""
    channels = MODALITY_CHANNELS[modality]
    expected = "(T, 3, H, W)" if modality == "rgb" else "(L, 2, H, W)"
    if isinstance(samples, torch.Tensor):
        if samples.dim() != 5 or samples.shape[2] != channels:
            raise ValueError(
                f"a batched '{modality}' input must have shape (N, {expected[1:]}, "
                f"got {tuple(samples.shape)}"
            )
        return samples
    if len(samples) == 0:
        raise ValueError(f"the batch has an empty '{modality}' list")
    shapes = {tuple(sample.shape) for sample in samples}
    for shape in shapes:
        if len(shape) != 4 or shape[1] != channels:
            raise ValueError(
                f"each '{modality}' input must have shape {expected}, got {shape}; the dataset's "
                "packing transform must put time first and channels second"
            )
    if len(shapes) > 1:
        raise ValueError(
            f"'{modality}' inputs of one batch differ in shape: {sorted(shapes)}; resize or crop "
            "every window to the same size and length in the pipeline"
        )
    return torch.stack(list(samples))


@MODELS.register_module()
class TwoStreamDataPreprocessor(BaseDataPreprocessor):
    """Stack, normalise and (in training) randomly mirror two-stream batches.

    Input ``data['inputs']`` is ``dict(rgb=[(T, 3, H, W) uint8, ...], flow=[(L, 2, H, W)
    float32, ...])`` as ``pseudo_collate`` makes it (either key may be absent). Output
    ``inputs`` is ``dict(rgb=(N, T, 3, H, W), flow=(N, L, 2, H, W))``, float32, normalised per
    modality. The flip is applied to raw values, before normalisation, so negating the x-flow
    stays exact whatever the flow mean is.

    Args:
        rgb_mean (Sequence[float]): Per-channel RGB mean (0-255 scale). Defaults to ImageNet's.
        rgb_std (Sequence[float]): Per-channel RGB std. Defaults to ImageNet's.
        flow_mean (Sequence[float]): Mean of the (x, y) flow channels. Defaults to (0, 0).
        flow_std (Sequence[float]): Std of the (x, y) flow channels. Defaults to (1, 1).
        flip_prob (float): Probability of mirroring each training sample. Defaults to 0.5.
    """

    def __init__(
        self,
        rgb_mean: Sequence[float] = IMAGENET_MEAN,
        rgb_std: Sequence[float] = IMAGENET_STD,
        flow_mean: Sequence[float] = (0.0, 0.0),
        flow_std: Sequence[float] = (1.0, 1.0),
        flip_prob: float = 0.5,
    ) -> None:
        super().__init__()
        if not 0.0 <= flip_prob <= 1.0:
            raise ValueError(f"flip_prob must be in [0, 1], got {flip_prob}")
        self.flip_prob = float(flip_prob)
        for modality, mean, std in (("rgb", rgb_mean, rgb_std), ("flow", flow_mean, flow_std)):
            channels = MODALITY_CHANNELS[modality]
            if len(mean) != channels or len(std) != channels:
                raise ValueError(
                    f"{modality}_mean and {modality}_std need {channels} values each, got "
                    f"{list(mean)} and {list(std)}"
                )
            if any(value <= 0 for value in std):
                raise ValueError(f"{modality}_std must be positive, got {list(std)}")
            shape = (1, 1, channels, 1, 1)
            self.register_buffer(
                f"{modality}_mean", torch.tensor(mean, dtype=torch.float32).view(shape), False
            )
            self.register_buffer(
                f"{modality}_std", torch.tensor(std, dtype=torch.float32).view(shape), False
            )

    def forward(self, data: dict, training: bool = False) -> dict:
        """Batch ``data``; mirror a random subset of the samples when ``training``.

        Returns:
            dict: ``dict(inputs=dict(rgb=..., flow=...), data_samples=...)``.
        """
        data = self.cast_data(data)
        inputs = data["inputs"]
        if not isinstance(inputs, dict):
            raise TypeError(
                "TwoStreamDataPreprocessor expects inputs=dict(rgb=..., flow=...), got "
                f"{type(inputs).__name__}; pack samples with the two-stream packing transform"
            )
        unknown = set(inputs) - set(MODALITY_CHANNELS)
        if unknown:
            raise KeyError(f"unknown input modalities {sorted(unknown)}; expected 'rgb', 'flow'")
        batch = {
            modality: stack_modality(inputs[modality], modality).float()
            for modality in MODALITY_CHANNELS
            if modality in inputs
        }
        if not batch:
            raise ValueError("the batch has neither an 'rgb' nor a 'flow' input")
        batch_sizes = {modality: tensor.shape[0] for modality, tensor in batch.items()}
        if len(set(batch_sizes.values())) > 1:
            raise ValueError(f"the modalities hold different numbers of samples: {batch_sizes}")

        if training and self.flip_prob > 0:
            batch_size = next(iter(batch.values())).shape[0]
            device = next(iter(batch.values())).device
            flip_mask = torch.rand(batch_size, device=device) < self.flip_prob
            batch["rgb"], batch["flow"] = flip_horizontally(
                batch.get("rgb"), batch.get("flow"), flip_mask
            )
            batch = {modality: tensor for modality, tensor in batch.items() if tensor is not None}

        normalised = {
            modality: (tensor - getattr(self, f"{modality}_mean"))
            / getattr(self, f"{modality}_std")
            for modality, tensor in batch.items()
        }
        return dict(inputs=normalised, data_samples=data.get("data_samples"))
