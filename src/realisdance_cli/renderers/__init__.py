"""Pose pictures: the DWPose skeleton and the headless pyrender mesh renders."""
