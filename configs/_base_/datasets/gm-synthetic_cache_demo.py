# The synthetic default dataset (tools/data/make_synthetic_dataset.py), preprocessed into a cache by
# tools/data/preprocess_videos.py, split by infant: fold 0 tests, fold 1 validates, the rest train.
# Windows are in seconds on the cache's 6 fps timeline (1 s: 6 flow fields, as in the paper, for
# any camera frame rate). Training windows start every 0.5 s (overlapping, twice the windows of
# the 1 s test stride) because 24 training infants give few windows; one loader worker each, as the
# demo machine has 2 cores.
dataset_type = "GMDataset"
data_root = "data/gm_synthetic"
cache_root = "data/gm_synthetic/cache_demo"
# The chain the cache was made with: tools/deployment/export_bundle.py ships it with the
# classifier, so a bundle classifies a new video exactly as the cache was made.
preprocess_config = (
    "configs/preprocess/preprocess_unet-seg_res18-pose_farneback-k30-s3.75-64_demo.py"
)
ann_file = "subjects.csv"
folds = dict(num_folds=4, fold_seed=2021, test_fold=0, val_fold=1)
train_window = dict(start_stride=0.5, span=1.0, num_windows=None, unit="seconds")
test_window = dict(start_stride=1.0, span=1.0, num_windows=None, unit="seconds")

# Named steps, so that a config changes one field (a one-stream model loads only its stream:
# load = dict(_base_.load, streams=("rgb",)); the packer packs whatever was loaded).
load = dict(type="LoadCachedWindow", rgb_frames=1)
pack = dict(type="PackStreamInputs")
train_pipeline = [dict(load, jitter=2), pack]
test_pipeline = [load, pack]

_dataset = dict(
    type=dataset_type, ann_file=ann_file, data_root=data_root, cache_root=cache_root, **folds
)
_loader = dict(num_workers=1, persistent_workers=True)
train_dataloader = dict(
    batch_size=16,
    sampler=dict(type="DefaultSampler", shuffle=True),
    dataset=dict(_dataset, window=train_window, split="train", pipeline=train_pipeline),
    **_loader,
)
val_dataloader = dict(
    batch_size=32,
    sampler=dict(type="DefaultSampler", shuffle=False),
    dataset=dict(_dataset, window=test_window, split="val", pipeline=test_pipeline, test_mode=True),
    **_loader,
)
test_dataloader = dict(
    batch_size=32,
    sampler=dict(type="DefaultSampler", shuffle=False),
    dataset=dict(
        _dataset, window=test_window, split="test", pipeline=test_pipeline, test_mode=True
    ),
    **_loader,
)
val_evaluator = dict(type="SubjectMetric", aggregation="mean")
test_evaluator = dict(type="SubjectMetric", aggregation="mean")
