"""The retargeting at a glance (`rdance retarget --preview`): one PNG of three panels side by side,
the reference | the driver's frame | the retargeted pose (SMPL-CS body half-blended, skeleton on
top) over the picture it belongs to, all at the first frame the dance has a person.

A panel shows its track's source frame when it can be read, else the track's skeleton (a moved or
deleted video), so a preview never fails for want of the dance's video.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from realisdance_cli import weights
from realisdance_cli.errors import UserError
from realisdance_cli.files import AtomicFile
from realisdance_cli.original import stream_to_poses
from realisdance_cli.renderers.skeleton import draw_pose
from realisdance_cli.track import Stream, Track

PREVIEW_HEIGHT = 512  # pixels: the panels' common height at most (the output's height when smaller)


def preview_path(out: Path) -> Path:
    """`dance_on_me.rdance` -> `dance_on_me_preview.png` beside it."""
    return out.with_name(f"{out.stem}_preview.png")


def skeleton_frame(track: Track, index: int) -> np.ndarray:
    """The track's DWPose skeleton of frame `index` at its source size (black without a stream)."""
    height, width = track.source.height, track.source.width
    if not track.has("dwpose"):
        return np.zeros((height, width, 3), np.uint8)
    frame = Stream.from_frames("dwpose", [track.load("dwpose").frame(index)])
    return draw_pose(stream_to_poses(frame, height, width)[0], height, width)


def source_frame(track: Track, index: int) -> np.ndarray:
    """Frame `index` of the track's source (a picture or a video) at the track's size, or its
    skeleton when the source cannot be read."""
    from realisdance_cli.video import FrameSource, Selection

    source = track.source
    try:
        selection = Selection(start=source.start + index * source.stride, max_frames=1)
        frame = next(iter(FrameSource(source.path, selection)))
    except (UserError, StopIteration):
        return skeleton_frame(track, index)
    if frame.shape[:2] != (source.height, source.width):
        frame = cv2.resize(frame, (source.width, source.height), interpolation=cv2.INTER_AREA)
    return frame


def vertex_colours(model: Any, root: Path) -> np.ndarray:
    """The authors' SMPL-CS colour table from the weights folder, else the jet gradient
    render-poses falls back to."""
    from realisdance_cli.bodies import default_vertex_colours, load_vertex_colours

    table = weights.status(weights.get("smplx-colors"), root).path
    if table.is_file():
        colours = load_vertex_colours(table)
        if len(colours) == model.get_num_verts():
            return colours
    return default_vertex_colours(model.v_template.numpy())


def pose_over(
    track: Track, index: int, background: np.ndarray, model: Any, colours: np.ndarray
) -> np.ndarray:
    """Frame `index` of the retargeted `track` drawn over `background` (its size): the SMPL-CS
    body blended half and half, the skeleton on top."""
    from realisdance_cli.bodies import smplx_vertices
    from realisdance_cli.renderers.smpl_cs import SmplCsRenderer

    height, width = track.source.height, track.source.width
    picture = background.copy()
    people = track.load("smplx").frame(index)
    renderer = SmplCsRenderer(height, width, model.faces, colours)
    try:
        for vertices, focal, princpt in zip(
            smplx_vertices(model, people), people["focal"], people["princpt"], strict=True
        ):
            body = renderer.render(vertices, focal, princpt)
            covered = body.any(axis=-1)
            picture[covered] = picture[covered] // 2 + body[covered] // 2
    finally:
        renderer.close()
    skeleton = skeleton_frame(track, index)
    drawn = skeleton.any(axis=-1)
    picture[drawn] = skeleton[drawn]
    return picture


def panels_side_by_side(panels: list[np.ndarray], height: int) -> np.ndarray:
    """The panels scaled to `height` (each keeps its aspect) and put side by side."""
    scaled = [
        cv2.resize(p, (max(1, round(p.shape[1] * height / p.shape[0])), height), interpolation=cv2.INTER_AREA)
        for p in panels
    ]
    return np.hstack(scaled)


def write_preview(track: Track, driver: Track, reference: Track, model: Any, root: Path) -> Path:
    """`preview_path(track.path)`: reference | driver | retargeted pose, at the first frame the
    retargeted track has a person."""
    first = int(np.flatnonzero(track.load("smplx").items_per_frame())[0])
    driver_frame = source_frame(driver, first)
    reference_picture = source_frame(reference, 0)
    # The retargeted body stands in the reference's picture, or in the driver's with placement "driver".
    placement = track.state("smplx").options.get("placement")
    behind = driver_frame if placement == "driver" else reference_picture
    size = (track.source.height, track.source.width)
    if behind.shape[:2] != size:
        behind = cv2.resize(behind, size[::-1], interpolation=cv2.INTER_AREA)
    pose = pose_over(track, first, behind, model, vertex_colours(model, root))
    picture = panels_side_by_side(
        [reference_picture, driver_frame, pose], min(track.source.height, PREVIEW_HEIGHT)
    )
    path = preview_path(track.path)
    with AtomicFile(path, suffix=".png") as partial:
        if not cv2.imwrite(str(partial), picture[:, :, ::-1]):
            raise UserError(f"cannot write the preview {path}.")
    return path
