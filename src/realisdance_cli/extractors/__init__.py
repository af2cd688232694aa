"""Pose extractors: DWPose (ONNX Runtime), HaMeR and SMPLer-X (PyTorch)."""
