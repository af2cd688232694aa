"""`rdance eval`: how close generated videos are to the truth, how well they follow the pose."""

# The metrics `rdance eval` computes, in table order (here, light, for the command line's help).
METRICS = (
    "ssim", "psnr", "l1", "lpips", "fid", "fid-vid", "fvd", "pose", "hands3d", "identity", "smoothness",
)  # fmt: skip
# The metrics computed over all frames or clips of a method at once: the record entry holding
# their features, what one sample is, and the features' dimension (the Frechet distance needs
# more samples than that to be unbiased).
SET_METRICS = {
    "fid": ("inception", "frames", 2048),
    "fid-vid": ("resnet3d", "clips", 2048),
    "fvd": ("i3d", "clips", 400),
}
POSE_METRICS = ("pose", "hands3d", "smoothness")  # need the videos' pose tracks
