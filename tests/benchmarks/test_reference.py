"""gm_plugins' paper-size recognizer against the plain-PyTorch reference of the paper's network."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import torch

from gm_plugins.benchmarks import reference as rb
from tests.runner_configs import REPO_ROOT

PAPER = str(REPO_ROOT / "configs/gm/two-stream_r50-concat-fusion_12x30f_gm3.py")
DEMO = str(REPO_ROOT / "configs/gm/two-stream_r18-3stage-concat-fusion_demo_gm-synthetic.py")


@pytest.mark.slow
def test_gm_model_with_the_reference_weights_computes_the_reference_logits():
    # Data preprocessor, both ResNet-50s, fusion and head: the same function, not just similar.
    assert rb.check_same_function(PAPER, size=32, batch_size=2) < 1e-4


@pytest.mark.slow
def test_reference_logits_differ_without_the_weight_copy():
    torch.manual_seed(0)
    reference = rb.ReferenceTwoStream().eval()
    model, _ = rb.build_gm_model(PAPER)
    model.eval()
    rgb, flow = rb.random_uint8_batch(2, 1, 6, 32)
    with torch.no_grad():
        inputs = model.data_preprocessor(rb.packed_batch(rgb, flow), False)["inputs"]
        ours, _ = model.extract_feat(inputs, stage="head")
        theirs = reference(*rb.reference_inputs(rgb, flow))
    assert (ours - theirs).abs().max() > 1e-2


def test_weight_copy_refuses_another_architecture():
    model, _ = rb.build_gm_model(DEMO)  # three-stage ResNet-18 streams
    with pytest.raises(ValueError, match="not the same architecture"):
        rb.copy_reference_weights(rb.ReferenceTwoStream(), model)


def test_reference_inputs_stack_flow_as_x0_y0_x1_y1():
    rgb, flow = rb.random_uint8_batch(2, 1, 3, 8)
    rgb_in, flow_in = rb.reference_inputs(rgb, flow)
    assert rgb_in.shape == (2, 3, 8, 8) and flow_in.shape == (2, 6, 8, 8)
    assert torch.equal(flow_in[:, 2], flow[:, 1, 0]) and torch.equal(flow_in[:, 3], flow[:, 1, 1])
    expected_red = (rgb[:, 0, 0].float() - rb.IMAGENET_MEAN[0]) / rb.IMAGENET_STD[0]
    torch.testing.assert_close(rgb_in[:, 0], expected_red)


def test_optimizer_settings_come_from_the_config():
    assert rb.optimizer_settings(PAPER) == dict(
        lr=1e-5, betas=(0.9, 0.999), weight_decay=1e-4, amsgrad=True
    )


@pytest.mark.slow
def test_compare_reference_prints_both_sides_and_their_ratio():
    result = subprocess.run(
        [sys.executable, "tools/benchmarks/benchmark_recognizer.py", "--compare-reference",
        "--size", "64",
         "--batch-sizes", "2", "--repeats", "2", "--iters", "1", "--warmup", "0", "--threads", "1",
         "--reference-kept-memory"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    lines = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.strip()}
    difference = re.search(r"reference's weights ([0-9.e+-]+)", result.stdout)
    assert difference and float(difference.group(1)) < 1e-4
    # gm_plugins sets malloc as tools/train.py does; the reference runs with glibc's settings,
    # and once more with gm_plugins' (the third column).
    assert lines["gm_plugins:"][-1] != lines["reference:"][-1]
    assert " ".join(lines["reference:"]).endswith("glibc's own malloc settings")
    assert " ".join(lines["reference+kept:"])[-40:] == " ".join(lines["gm_plugins:"])[-40:]
    for kind in ("train", "infer"):
        _, batch, ours, theirs, ratio, peak_ours, _, peak_theirs, kept, kept_ratio, _ = lines[kind]
        assert float(kept) > 0
        assert float(kept_ratio) == pytest.approx(float(ours) / float(kept), rel=0.05, abs=0.02)
        assert batch == "2" and float(ours) > 0 and float(theirs) > 0
        ours, theirs = float(ours), float(theirs)
        rounding = ours / theirs * (0.005 / ours + 0.005 / theirs) + 0.005  # 2 decimals printed
        assert float(ratio) == pytest.approx(ours / theirs, abs=rounding)
        assert float(peak_ours) > 100 and float(peak_theirs) > 100  # MiB of a process with torch
