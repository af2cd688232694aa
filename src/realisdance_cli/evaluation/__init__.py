"""`rdance eval`: how close generated videos are to the truth, how well they follow the pose."""
