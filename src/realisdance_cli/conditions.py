"""The three pose conditions the RealisDance network reads, in one table.

Each condition is made by one `rdance extract` stage, kept as one pose-track stream, drawn by
`rdance render-poses` as one video, and fed to the network in one slot. The spellings differ
(the SMPL-X condition is extracted by the `smplerx` stage into the `smplx` stream and drawn as
`smpl.mp4`), so every module looks them up here instead of spelling them again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from realisdance_cli.errors import UserError


@dataclass(frozen=True)
class Condition:
    name: str  # the network's name: render-poses --only, animate --NAME, the manifest key
    stage: str  # the `rdance extract` stage that makes it (`--only`)
    stream: str  # the pose-track stream that stage writes and render-poses reads
    items: str  # what the stream holds per frame, for people ("people", "hands")

    @property
    def video(self) -> str:
        """The pose video's file name (render-poses writes it, animate and training read it)."""
        return f"{self.name}.mp4"


# In the network's order (the pose guider's input order, the original's `dwpose, hamer, smpl`),
# which is also the order in which the stages run (DWPose first: the others read its boxes) and
# the videos are written.
CONDITIONS = (
    Condition("dwpose", stage="dwpose", stream="dwpose", items="people"),
    Condition("hamer", stage="hamer", stream="mano", items="hands"),
    Condition("smpl", stage="smplerx", stream="smplx", items="people"),
)
POSE_NAMES = tuple(condition.name for condition in CONDITIONS)
STAGES = tuple(condition.stage for condition in CONDITIONS)
BY_NAME = {condition.name: condition for condition in CONDITIONS}
BY_STAGE = {condition.stage: condition for condition in CONDITIONS}
BY_STREAM = {condition.stream: condition for condition in CONDITIONS}


def chosen(text: str | None, known: Sequence[str], what: str) -> list[str] | None:
    """`--only smpl,hamer` -> those of `known`, in its order (None: not given, all); one sentence
    for a name that is not one, or for none at all."""
    if text is None:
        return None
    wanted = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [name for name in wanted if name not in known]
    if unknown or not wanted:
        given = f"got {', '.join(unknown)}" if unknown else "got none"
        raise UserError(f"--only takes {what}, comma-separated: {', '.join(known)}; {given}.")
    return [name for name in known if name in wanted]
