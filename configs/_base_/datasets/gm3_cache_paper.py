# A GM dataset of your own (subjects.csv + videos: docs/en/user_guides/own_data.md), preprocessed at
# the paper's settings
# (configs/preprocess/preprocess_any-seg_any-pose_farneback-k30-s3.75-224_paper.py).
# Windows as in the paper's reference code (12 windows starting every 150 frames, each spanning
# 30 frames at every 5th frame of 30 fps), in seconds on the cache's 6 fps timeline: 12 windows
# starting every 5 s, each 1 s long (6 flow fields), whatever the camera's frame rate (25, 30,
# 50, 60 fps ...). Stratified 5-fold split by infant:
# fold 0 tests, fold 1 validates (early stopping), the rest train.
dataset_type = "GMDataset"
data_root = "data/gm3"
cache_root = "data/gm3/cache"
# The chain the cache was made with (tools/deployment/export_bundle.py ships it with the
# classifier).
preprocess_config = (
    "configs/preprocess/preprocess_any-seg_any-pose_farneback-k30-s3.75-224_paper.py"
)
ann_file = "subjects.csv"
folds = dict(num_folds=5, fold_seed=2021, test_fold=0, val_fold=1)
window = dict(start_stride=5.0, span=1.0, num_windows=12, unit="seconds")

# Named steps, so that a config changes one field (a one-stream model loads only its stream:
# load = dict(_base_.load, streams=("rgb",)); the packer packs whatever was loaded).
load = dict(type="LoadCachedWindow", rgb_frames=1)
pack = dict(type="PackStreamInputs")
train_pipeline = [load, pack]
test_pipeline = train_pipeline

_dataset = dict(
    type=dataset_type,
    ann_file=ann_file,
    data_root=data_root,
    cache_root=cache_root,
    window=window,
    **folds,
)
train_dataloader = dict(
    batch_size=64,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type="DefaultSampler", shuffle=True),
    dataset=dict(_dataset, split="train", pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=64,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type="DefaultSampler", shuffle=False),
    dataset=dict(_dataset, split="val", pipeline=test_pipeline, test_mode=True),
)
test_dataloader = dict(
    batch_size=64,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type="DefaultSampler", shuffle=False),
    dataset=dict(_dataset, split="test", pipeline=test_pipeline, test_mode=True),
)
val_evaluator = dict(type="SubjectMetric", aggregation="mean")
test_evaluator = dict(type="SubjectMetric", aggregation="mean")
