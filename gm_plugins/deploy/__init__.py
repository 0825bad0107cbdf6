"""Shipping a trained model: bundles (:mod:`.bundle`) and ONNX exports (:mod:`.onnx_export`)."""
