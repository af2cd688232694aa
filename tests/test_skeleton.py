"""The skeleton picture equals the original `draw_pose` bit for bit (golden images)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import FIXTURES, GOLDEN, need

from realisdance_cli.original import load_dwpose_pkl
from realisdance_cli.renderers.skeleton import HAND_EDGE_COLOURS, draw_pose

KEY = re.compile(r"frame(?P<frame>\d+)_(?P<h>\d+)x(?P<w>\d+)_face(?P<face>[01])")


def golden_cases() -> list[str]:
    path = GOLDEN / "draw" / "draw_golden.npz"
    if not path.exists():
        return []
    with np.load(path) as data:
        return sorted(data.files)


@pytest.mark.parametrize(
    "key", golden_cases() or [pytest.param("absent", marks=pytest.mark.skip("no golden"))]
)
def test_skeleton_equals_the_original_picture(key: str) -> None:
    with np.load(need(GOLDEN / "draw" / "draw_golden.npz")) as data:
        want = data[key]
    poses = load_dwpose_pkl(need(FIXTURES / "dwpose_1.pkl"))
    match = KEY.fullmatch(key)
    assert match, key
    height, width = int(match["h"]), int(match["w"])
    got = draw_pose(poses[int(match["frame"])], height, width, face=match["face"] == "1")
    assert got.dtype == np.uint8 and got.shape == want.shape == (height, width, 3)
    assert np.array_equal(got, want), f"{np.count_nonzero((got != want).any(-1))} pixels differ"


def test_golden_covers_both_sizes_and_face_modes() -> None:
    cases = [KEY.fullmatch(key) for key in golden_cases()]
    if not cases:
        pytest.skip("no golden drawings")
    assert {m["face"] for m in cases if m} == {"0", "1"}
    assert len({(m["h"], m["w"]) for m in cases if m}) >= 2


def test_hidden_points_are_not_drawn() -> None:
    pose = {
        "bodies": {"candidate": np.full((18, 2), 0.5), "subset": -np.ones((1, 18))},
        "hands": -np.ones((2, 21, 2)),
        "faces": -np.ones((1, 68, 2)),
    }
    assert not draw_pose(pose, 64, 48, face=True).any()


def test_hand_edges_go_round_the_colour_wheel() -> None:
    assert HAND_EDGE_COLOURS[0] == (255.0, 0.0, 0.0)
    assert len(set(HAND_EDGE_COLOURS)) == 20
