"""Pose extractors: DWPose (ONNX Runtime; `dwpose/`: detector + pose model composed by a
solution, as rtmlib), HaMeR and SMPLer-X (PyTorch; `hamer/`, `smplerx/`: config, network,
loading), and the estimators that turn the networks' outputs into track records
(`estimator.py`, `hand_estimator.py`, `body_estimator.py`)."""
