"""HaMeR (hand mesh recovery), inference only: hand crops -> MANO parameters and crop cameras.

A re-implementation of geopavlakos/hamer's `HAMER` forward pass (ViT backbone, MANO transformer
decoder head), so the released `hamer.ckpt` runs without detectron2, Lightning or yacs:
`config` (sizes from the checkpoint and `model_config.yaml`), `network` (the modules),
and `loading` (the checkpoint, read safely); what HaMeR's MANO wrapper makes of the outputs is
`bodies.hand_joints`. The crops and the track records are the hand estimator's
(`extractors/hand_estimator.py`).
"""
