"""The model zoo in the repository: every entry is present, matches its hash, loads into its
config, and still reaches its recorded figures on freshly generated held-out infants."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from mmengine.config import Config

from gm_plugins.deploy.bundle import BundleError, load_bundle
from gm_plugins.experiments.shipped import CHAINS, EVALUATION_PIPELINE
from gm_plugins.experiments.zoo_evaluation import (
    evaluate_bundle,
    evaluate_chain,
    generate_evaluation_infants,
    read_zoo_record,
)
from gm_plugins.preprocess.model_runners import clear_model_cache, load_model
from gm_plugins.utils.zoo import (
    ZooError,
    published_prefix,
    sha256_of,
    zoo_model_of_weights,
    zoo_models,
    zoo_table,
)
from tests.runner_configs import REPO_ROOT

MODELS = zoo_models(REPO_ROOT)
LIBRARY = {"Background Removal": "mmseg", "Pose Alignment": "mmpose"}
#: Recorded infants re-checked here (the first of each class in the record).
INFANTS_CHECKED = 3
#: A few infants are noisier than the 24 of the record: metrics may fall this far below it.
FEW_INFANTS_TOLERANCE = 0.1
#: Window probabilities may move this much between processors' arithmetic.
PROBABILITY_TOLERANCE = 0.02


def task(model) -> str:
    return model.results[0]["Task"]


def test_the_zoo_has_the_demo_and_evaluation_grade_models_and_stays_small():
    for chain in (CHAINS["cache_demo"], EVALUATION_PIPELINE):
        chain_tasks = {task(m) for m in MODELS if m.metadata.get("Chain") == chain}
        assert {"Background Removal", "Pose Alignment"} <= chain_tasks, chain
    assert [task(model) for model in MODELS].count("GM Classification") >= 1
    total = sum((REPO_ROOT / model.weights).stat().st_size for model in MODELS)
    assert total < 64 * 2**20


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.name)
def test_each_entry_exists_and_matches_its_hash(model):
    weights = REPO_ROOT / model.weights
    assert weights.is_file(), f"{model.weights} is missing"
    assert sha256_of(weights) == model.sha256
    assert model.sha256.startswith(published_prefix(weights))
    assert (REPO_ROOT / model.config).is_file()
    assert model.results and all(result.get("Metrics") for result in model.results)


@pytest.mark.parametrize(
    "model", [m for m in MODELS if task(m) in LIBRARY], ids=lambda model: model.name
)
def test_each_preprocessing_model_loads_strictly_into_its_config(model):
    clear_model_cache()
    network = load_model(LIBRARY[task(model)], REPO_ROOT / model.config, REPO_ROOT / model.weights)
    assert not network.training
    clear_model_cache()


def test_the_demo_chain_loads_the_zoo_models():
    chain = Config.fromfile(REPO_ROOT / CHAINS["cache_demo"])
    for checkpoint in (chain.seg_checkpoint, chain.pose_checkpoint):
        model = zoo_model_of_weights(checkpoint, REPO_ROOT)
        assert model.metadata["Chain"] == CHAINS["cache_demo"]


def test_a_changed_zoo_checkpoint_or_bundle_is_refused(tmp_path):
    clear_model_cache()
    seg = next(m for m in MODELS if task(m) == "Background Removal")
    copy = tmp_path / Path(seg.weights).name
    data = bytearray((REPO_ROOT / seg.weights).read_bytes())
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(bytes(data))
    with pytest.raises(ZooError, match="changed or damaged"):
        load_model("mmseg", REPO_ROOT / seg.config, copy)
    bundle = next(m for m in MODELS if task(m) == "GM Classification")
    changed = tmp_path / Path(bundle.weights).name
    shutil.copyfile(REPO_ROOT / bundle.weights, changed)
    with changed.open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(BundleError, match="changed or damaged"):
        load_bundle(changed)


def test_the_readme_and_docs_show_the_zoo_as_the_metafiles_record_it():
    for page, prefix in (("README.md", ""), ("docs/en/model_zoo.md", "../../")):
        table = zoo_table(REPO_ROOT, link_prefix=prefix)
        assert table in (REPO_ROOT / page).read_text(), f"{page}: run tools/misc/zoo_table.py"


def recorded_infants(model, count: int) -> list[dict]:
    """The first infant of each class in the model's stored evaluation (refused if stale)."""
    stored = read_zoo_record(model, REPO_ROOT)["test_infants"]
    classes = stored["classes"]
    infants, labels = [], set()
    for index, subject_id in enumerate(stored["ids"]):
        label = classes[stored["labels"][index]]
        if label not in labels and len(infants) < count:
            probabilities = dict(zip(classes, stored["probabilities"][index], strict=True))
            infants.append(dict(subject_id=subject_id, label=label,
                                decision=stored["decisions"][index],
                                probabilities=probabilities))  # fmt: skip
            labels.add(label)
    return infants


@pytest.fixture(scope="module")
def fresh_infants(tmp_path_factory) -> Path:
    bundle = next(m for m in MODELS if task(m) == "GM Classification")
    ids = [infant["subject_id"] for infant in recorded_infants(bundle, INFANTS_CHECKED)]
    return generate_evaluation_infants(tmp_path_factory.mktemp("zoo_eval"), ids)


def test_the_zoo_chain_still_reaches_its_recorded_figures_on_fresh_infants(fresh_infants):
    seg = next(m for m in MODELS if task(m) == "Background Removal")
    pose = next(m for m in MODELS if task(m) == "Pose Alignment" and m.metadata["Chain"] ==
                seg.metadata["Chain"])  # fmt: skip
    figures = evaluate_chain(REPO_ROOT / seg.metadata["Chain"], fresh_infants)
    assert figures["videos"] == INFANTS_CHECKED and not figures["failed"]
    assert figures["iou"] >= seg.metric("Mask IoU") - FEW_INFANTS_TOLERANCE
    assert figures["pck"] >= pose.metric("PCK@0.05") - FEW_INFANTS_TOLERANCE


def test_the_zoo_bundle_decides_recorded_infants_as_recorded(fresh_infants):
    bundle = next(m for m in MODELS if task(m) == "GM Classification")
    recorded = {i["subject_id"]: i for i in recorded_infants(bundle, INFANTS_CHECKED)}
    figures = evaluate_bundle(REPO_ROOT / bundle.weights, fresh_infants)
    assert len(figures["infants"]) == INFANTS_CHECKED
    for infant in figures["infants"]:
        before = recorded[infant["subject_id"]]
        assert infant["decision"] == before["decision"], infant["subject_id"]
        for name, probability in before["probabilities"].items():
            assert infant["probabilities"][name] == pytest.approx(
                probability, abs=PROBABILITY_TOLERANCE
            )
