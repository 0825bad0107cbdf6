"""Runtimes the models run on besides PyTorch: ONNX Runtime (:mod:`.onnx`)."""
