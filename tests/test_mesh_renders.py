"""The two mesh pictures against the original renderers' golden frames, on both GL backends.

Each backend runs in its own process (PyOpenGL fixes its platform at import), so the test starts
a child per backend that renders every golden case and reports the differences.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import FIXTURES, GOLDEN, need

RENDER_ALL = r"""
import json, os, sys
import numpy as np
from realisdance_cli.bodies import load_vertex_colours
from realisdance_cli.renderers.hands import HandRenderer
from realisdance_cli.renderers.smpl_cs import SmplCsRenderer

def covered(picture):
    # Pixels at least about half covered: brightness over half the picture's median mesh pixel
    # (multisampled edges blend with the black background in proportion to their coverage).
    brightness = picture.max(-1)
    return brightness >= 0.5 * np.median(brightness[brightness > 0])

golden = np.load(sys.argv[1])
colours = load_vertex_colours(sys.argv[2])
report = {}
cases = [key for key in golden.files if "." not in key]
for height, width in sorted({golden[key].shape[:2] for key in cases}):
    # Both kinds alive together, as render-poses uses them, and each draws another pose first:
    # the pictures compared below come from rewritten vertex buffers.
    hands = HandRenderer(height, width, golden["hands.faces"])
    body = SmplCsRenderer(height, width, golden["smplcs.faces"], colours)
    size = f"{height}x{width}"
    hand_inputs = [golden[f"hands_{size}.{name}"] for name in ("vertices", "cam_t", "is_right")]
    hand_focal = float(golden[f"hands_{size}.focal"])
    body_inputs = [golden[f"smplcs_{size}.{name}"] for name in ("vertices", "focal", "princpt")]
    hands.render(hand_inputs[0][:1] + 0.01, hand_inputs[1][:1], hand_inputs[2][:1], hand_focal)
    body.render(body_inputs[0] + 0.01, *body_inputs[1:])
    pictures = {
        f"hands_{size}": hands.render(*hand_inputs, hand_focal),
        f"smplcs_{size}": body.render(*body_inputs),
    }
    right = hand_inputs[2].astype(bool)
    alone = hands.render(hand_inputs[0][right], hand_inputs[1][right], hand_inputs[2][right], hand_focal)
    report[f"left_hand_gone_{size}"] = bool(not (alone[:, :, 1] > alone[:, :, 0]).any())
    body.close()
    hands.close()
    for key, got in pictures.items():
        want = golden[key]
        diff = np.abs(got.astype(int) - want).max(-1)
        drawn, expected = got.max(-1) > 0, want.max(-1) > 0
        def grown(mask):  # the mask dilated by one pixel
            out = mask.copy()
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    out |= np.roll(np.roll(mask, dy, 0), dx, 1)
            return out
        report[key] = {
            "silhouette": int(expected.sum()),
            "beyond_one_pixel": int((drawn & ~grown(expected)).sum() + (expected & ~grown(drawn)).sum()),
            "shape_ok": got.shape == want.shape and got.dtype == want.dtype,
            "differing": float((diff > 0).mean()),
            "max_diff": int(diff.max()),
            "mean_diff": float(np.abs(got.astype(int) - want).mean()),
            "iou": float((covered(got) & covered(want)).sum() / max(1, (covered(got) | covered(want)).sum())),
        }
print(json.dumps(report))
"""


def render_report(backend: str) -> dict:
    golden = need(GOLDEN / "render" / "render_golden.npz")
    colours = need(FIXTURES / "smplx_color.pt")
    done = subprocess.run(
        [sys.executable, "-c", RENDER_ALL, str(golden), str(colours)],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "PYOPENGL_PLATFORM": backend},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _pictures(report: dict) -> dict:
    """The golden comparisons; also checks that a hand drawn in one frame is gone in the next."""
    gone = {key: value for key, value in report.items() if key.startswith("left_hand_gone")}
    assert len(gone) == 2 and all(gone.values()), gone
    return {key: value for key, value in report.items() if key not in gone}


def test_osmesa_reproduces_the_original_pictures() -> None:
    report = render_report("osmesa")
    assert {key.split("_")[0] for key in report} == {"hands", "smplcs", "left"}
    for key, result in _pictures(report).items():
        assert result["shape_ok"], key
        assert result["differing"] <= 0.001, (key, result)  # at most 0.1 % of pixels
        assert result["max_diff"] <= 2, (key, result)  # by at most 2 levels


def test_egl_matches_within_the_multisampling_tolerance() -> None:
    """EGL is pyrender's 4x multisampled framebuffer: edges are anti-aliased, so silhouettes may
    differ along a one-pixel rim and nowhere else. On small silhouettes that rim alone costs IoU
    (the 576x768 hands: 2,273 pixels), so the IoU bound applies where the silhouette is large
    enough for it to measure shape."""
    report = render_report("egl")
    for key, result in _pictures(report).items():
        assert result["shape_ok"], key
        assert result["mean_diff"] <= 2, (key, result)
        assert result["beyond_one_pixel"] == 0, (key, result)  # silhouettes within a pixel
        if result["silhouette"] >= 5000:
            assert result["iou"] >= 0.99, (key, result)


def test_vertex_colour_table_loads_safely(tmp_path) -> None:
    import pickle

    from realisdance_cli.bodies import load_vertex_colours
    from realisdance_cli.errors import UserError

    colours = load_vertex_colours(need(FIXTURES / "smplx_color.pt"))
    assert colours.shape == (10475, 3) and colours.dtype == np.uint8
    evil = tmp_path / "evil.pt"
    import torch

    class Exploit:
        def __reduce__(self) -> tuple:
            return (print, ("pwned",))

    torch.save({"x": Exploit()}, evil, pickle_protocol=pickle.DEFAULT_PROTOCOL)
    with pytest.raises(UserError, match="not a vertex colour table"):
        load_vertex_colours(evil)
