"""The one table of pose conditions keeps every name users see, in the network's order."""

from __future__ import annotations

import pytest

from realisdance_cli.conditions import BY_NAME, BY_STAGE, CONDITIONS, POSE_NAMES, STAGES
from realisdance_cli.errors import UserError
from realisdance_cli.extraction import ExtractOptions, parse_stages
from realisdance_cli.rendering import parse_videos
from realisdance_cli.track import STREAMS


def test_the_table_keeps_the_released_names() -> None:
    """Stage names (`extract --only`), stream files (`<stream>.npz` in tracks users keep), video
    files (`render-poses`) and condition names (`animate --NAME`, manifest keys) as released."""
    assert [(c.name, c.stage, c.stream, c.video) for c in CONDITIONS] == [
        ("dwpose", "dwpose", "dwpose", "dwpose.mp4"),
        ("hamer", "hamer", "mano", "hamer.mp4"),
        ("smpl", "smplerx", "smplx", "smpl.mp4"),
    ]
    assert all(condition.stream in STREAMS for condition in CONDITIONS)
    assert BY_STAGE["smplerx"] is BY_NAME["smpl"]


def test_one_order_everywhere_the_networks() -> None:
    """The pose guider's input order (the original's dwpose, hamer, smpl), the stages a full
    extraction runs and the videos render-poses writes all follow the table: DWPose first, as the
    others read its boxes."""
    assert POSE_NAMES == ("dwpose", "hamer", "smpl")
    assert tuple(ExtractOptions().stages) == STAGES == tuple(parse_stages(None))
    assert parse_stages("smplerx, DWPose") == ["dwpose", "smplerx"]
    assert parse_videos("smpl,hamer,dwpose") == list(POSE_NAMES)


@pytest.mark.parametrize(("parse", "text"), [(parse_stages, "smpl"), (parse_videos, "smplx")])
def test_another_spelling_is_refused_with_the_right_ones(parse, text: str) -> None:  # type: ignore[no-untyped-def]
    """Each option takes its own spelling, and its error lists the ones it takes."""
    with pytest.raises(UserError) as caught:
        parse(text)
    right = STAGES if parse is parse_stages else POSE_NAMES
    assert ", ".join(right) in str(caught.value)


@pytest.mark.parametrize("parse", [parse_stages, parse_videos])
def test_naming_none_is_refused_not_taken_for_all(parse) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UserError, match="got none"):
        parse(" , ")
