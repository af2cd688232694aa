"""`rdance eval`: how close generated videos are to the truth, how well they follow the pose."""

# The metrics `rdance eval` computes, in table order (here, light, for the command line's help).
METRICS = ("ssim", "psnr", "lpips", "fid", "fid-vid", "fvd", "pose", "hands3d", "identity", "smoothness")
SET_METRICS = ("fid", "fid-vid", "fvd")  # computed over all frames or clips of a method at once
POSE_METRICS = ("pose", "hands3d", "smoothness")  # need the videos' pose tracks
