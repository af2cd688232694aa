"""Pure geometry the estimators share, smplx style (functions with shapes in their docstrings):

- `rotations`: 6-D representations (each convention named for how it lays out its numbers),
  rotation matrices and axis-angles (PyTorch);
- `cameras`: weak-perspective crop cameras, their translations in the full frame, projection;
- `crops`: boxes to crop transforms and the affine warps that cut the crops (NumPy, OpenCV).

The modules are apart so that DWPose, which needs only crops, never imports PyTorch.
"""
