"""The three pose conditions the RealisDance network reads, in one table.

Each condition is made by one `rdance extract` stage, kept as one pose-track stream, drawn by
`rdance render-poses` as one video, and fed to the network in one slot. The spellings differ
(the SMPL-X condition is extracted by the `smplerx` stage into the `smplx` stream and drawn as
`smpl.mp4`), so every module looks them up here instead of spelling them again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from realisdance_cli.errors import UserError


@dataclass(frozen=True)
class Condition:
    name: str  # the network's name: render-poses --only, animate --NAME, the manifest key
    stage: str  # the `rdance extract` stage that makes it (`--only`)
    stream: str  # the pose-track stream that stage writes and render-poses reads
    items: str  # what the stream holds per frame, for people ("people", "hands")
    label: str  # the model's name, as messages say it
    nothing: str  # what a frame holds when the stream found no item ("nobody", "no hand")

    @property
    def video(self) -> str:
        """The pose video's file name (render-poses writes it, animate and training read it)."""
        return f"{self.name}.mp4"

    @property
    def unguided(self) -> str:
        """What a pose video of this condition black in every frame means for an animation (said
        by render-poses when it writes one and by animate when it reads one)."""
        return f"animate's result follows no {self.label} pose from it"


# In the network's order (the pose guider's input order, the original's `dwpose, hamer, smpl`),
# which is also the order in which the stages run (DWPose first: the others read its boxes) and
# the videos are written.
CONDITIONS = (
    Condition("dwpose", stage="dwpose", stream="dwpose", items="people", label="DWPose", nothing="nobody"),
    Condition("hamer", stage="hamer", stream="mano", items="hands", label="MANO", nothing="no hand"),
    Condition("smpl", stage="smplerx", stream="smplx", items="people", label="SMPL-X", nothing="nobody"),
)
POSE_NAMES = tuple(condition.name for condition in CONDITIONS)
STAGES = tuple(condition.stage for condition in CONDITIONS)
BY_NAME = {condition.name: condition for condition in CONDITIONS}
BY_STAGE = {condition.stage: condition for condition in CONDITIONS}
BY_STREAM = {condition.stream: condition for condition in CONDITIONS}

MIN_PERSON_BOX = (50, 150)  # (width, height) px: RealisDance gives SMPLer-X no smaller person box
# Why a stream keeps an item with `valid` false: found by DWPose, but set aside by its stage.
SET_ASIDE = {
    "smplx": f"a person too small for SMPL-X (box under {MIN_PERSON_BOX[0]}x{MIN_PERSON_BOX[1]} px)",
    "mano": "an empty hand box",
}


# The three naming schemes of a condition, as its fields and as messages say them.
_SCHEMES = {"stage": "extraction stage", "stream": "track stream", "name": "pose video"}
_SHORT = {"stage": "stage", "stream": "stream", "name": "video"}


def elsewhere(name: str, scheme: str) -> str | None:
    """For a name of another scheme than `scheme` ("stage", "stream" or "name"), which of
    `scheme`'s names holds the same condition: "'hamer' is the extraction stage; its stream is
    'mano'" (None: no condition's name). Said, never silently taken: a name stays one thing."""
    for condition in CONDITIONS:
        for other, said in _SCHEMES.items():
            if other != scheme and getattr(condition, other) == name:
                return f"{name!r} is the {said}; its {_SHORT[scheme]} is {getattr(condition, scheme)!r}"
    return None


def chosen(
    value: str | Iterable[str] | None,
    known: Sequence[str],
    what: str,
    flag: str = "--only",
    hint: Callable[[str], str | None] = lambda name: None,
) -> list[str] | None:
    """`--only smpl,hamer` (from Python also "smpl" or ["smpl", "hamer"]) -> those of `known`, in
    its order (None: not given, all); one sentence naming `flag` for a name that is not one (with
    what `hint` says of it), or for none at all."""
    if value is None:
        return None
    if isinstance(value, str):
        parts = value.split(",")
    elif isinstance(value, Iterable):
        parts = [str(part) for part in value]
    else:
        parts = [repr(value)]  # no name: refused as none of them
    wanted = [part.strip().lower() for part in parts if part.strip()]
    unknown = [name for name in wanted if name not in known]
    if unknown or not wanted:
        given = ", ".join(f"{name} ({said})" if (said := hint(name)) else name for name in unknown)
        raise UserError(f"{flag} takes {what}, comma-separated: {', '.join(known)}; got {given or 'none'}.")
    return [name for name in known if name in wanted]
