"""Periodic validation: the network being trained animates fixed clips with the inference pipeline,
and each becomes `validation/<number>-<clip>-step<N>.mp4` (the number: its place among the clips,
from 0, so two videos of one name in different folders keep a grid each), side by side: reference |
DWPose | HaMeR | SMPL-CS | generated | ground truth. Same noise every time, so the videos of
successive steps show what training changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from realisdance_cli.animator.network import RealisDanceNet
from realisdance_cli.animator.pipeline import PoseVideos, RealisDancePipeline, zero_snr_ddim
from realisdance_cli.animator.processing import frame_pixels, video_tensor
from realisdance_cli.conditions import POSE_NAMES
from realisdance_cli.training.data import ValidationClip
from realisdance_cli.training.options import VALIDATION_GUIDANCE
from realisdance_cli.video_writer import VideoWriter


@torch.no_grad()
def validate(
    net: RealisDanceNet,
    vae: Any,
    image_encoder: Any,
    scheduler_config: dict[str, Any],
    clips: Sequence[ValidationClip],
    folder: Path | None,
    step: int,
    ddim_steps: int = 25,
    seed: int = 0,
) -> list[Path]:
    """Animates every clip with the network as it is now (in eval mode); returns the grids written
    into `folder` (none without one: the other ranks of a sharded network only take part)."""
    was_training = net.training
    pipeline = RealisDancePipeline.from_network(
        net.eval(), vae, image_encoder, zero_snr_ddim(scheduler_config)
    )
    pipeline.set_progress_bar_config(disable=True)
    written = []
    try:
        for number, clip in enumerate(clips):
            videos = PoseVideos(*(video_tensor(clip.poses.frames[name]) for name in POSE_NAMES))
            generator = torch.Generator().manual_seed(seed)
            result = pipeline(
                clip.reference,
                videos,
                num_inference_steps=ddim_steps,
                guidance_scale=VALIDATION_GUIDANCE,
                generator=generator,
                output_type="pt",
                return_dict=False,
            )
            video = result[0][0]
            if folder is None:
                continue
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{number}-{clip.name}-step{step:07d}.mp4"
            with VideoWriter(path, clip.poses.fps or 8) as writer:
                for index, picture in enumerate(video):
                    poses = (clip.poses.frames[name][index] for name in POSE_NAMES)
                    row = [clip.reference, *poses, frame_pixels(picture), clip.truth[index]]
                    writer.write(np.hstack(row))
            written.append(path)
    finally:
        net.train(was_training)
    return written
