# The confounding experiment's data: trains and validates on data/gm_confound (recording
# environments tied to the classes), tests on all 48 infants of data/gm_synthetic (environment
# independent of class, other infants); see configs/confounding/. Same windows and folds as the
# demo dataset; a variant reads the caches of another chain by changing cache_name.
_base_ = ["./gm-synthetic_cache_demo.py"]

train_root, test_root = "data/gm_confound", "data/gm_synthetic"
cache_name = "cache_demo"
train_dataloader = dict(dataset=dict(data_root=train_root, cache_root=f"{train_root}/{cache_name}"))
val_dataloader = dict(dataset=dict(data_root=train_root, cache_root=f"{train_root}/{cache_name}"))
test_dataloader = dict(
    dataset=dict(data_root=test_root, cache_root=f"{test_root}/{cache_name}", split="all")
)
