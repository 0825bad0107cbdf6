# Ablation "without background removal and without alignment": no network at all, the whole frame
# fitted into a 64x64 square and Farneback flow, i.e. what a two-stream model sees without the
# paper's preprocessing.
default_scope = "mmaction"
custom_imports = dict(imports=["gm_plugins"], allow_failed_imports=False)

preprocess_pipeline = [
    dict(type="DecodeFrames", target_fps=6.0),
    dict(type="LetterboxFrames", out_size=64),
    dict(type="OpticalFlow", algorithm="farneback", bound=20.0 * 64 / 224),
]  # fmt: skip
