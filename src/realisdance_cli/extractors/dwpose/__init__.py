"""DWPose as rtmlib lays it out: a person detector (`yolox.YOLOX`) and a whole-body pose model
(`rtmpose.RTMPose`), each with preprocess, inference and postprocess, composed by a solution
(`solution.DWPose`) that turns frames into the track's DWPose records.

Every step follows the original annotator (SPEC section 1) down to the array dtypes, so the
keypoints equal the original's. Unlike the original, which runs one crop per call, the crops of
many frames go through the pose model together when its graph allows a batch axis, and a frame
without a person stays empty instead of being estimated on the whole picture.
"""
