"""SMPLer-X (whole-body SMPL-X regression), inference only: a person crop -> SMPL-X parameters.

A re-implementation of SMPLer-X's test-mode forward pass (`main/SMPLer_X.py`, `common/nets/`), as
RealisDance vendors it, so mmcv, mmdet, the vendored mmpose and torchgeometry are not needed:
`config` (sizes from the checkpoint, constants of `config_smpler_x_h32.py`), `network` (the
modules, named as in the released `smpler_x_h32.pth.tar`) and `loading` (the checkpoint, read
safely). The crops and the track records are the body estimator's (`extractors/body_estimator.py`).
"""
