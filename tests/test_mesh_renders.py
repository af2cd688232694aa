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
for key in golden.files:
    if "." in key:
        continue
    want = golden[key]
    height, width = want.shape[:2]
    if key.startswith("hands_"):
        renderer = HandRenderer(height, width, golden["hands.faces"])
        got = renderer.render(golden[key + ".vertices"], golden[key + ".cam_t"], golden[key + ".is_right"],
                              float(golden[key + ".focal"]))
    else:
        renderer = SmplCsRenderer(height, width, golden["smplcs.faces"], colours)
        got = renderer.render(golden[key + ".vertices"], golden[key + ".focal"], golden[key + ".princpt"])
    renderer.close()
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


def test_osmesa_reproduces_the_original_pictures() -> None:
    report = render_report("osmesa")
    assert {key.split("_")[0] for key in report} == {"hands", "smplcs"}
    for key, result in report.items():
        assert result["shape_ok"], key
        assert result["differing"] <= 0.001, (key, result)  # at most 0.1 % of pixels
        assert result["max_diff"] <= 2, (key, result)  # by at most 2 levels


def test_egl_matches_within_the_multisampling_tolerance() -> None:
    """EGL is pyrender's 4x multisampled framebuffer: edges are anti-aliased, so silhouettes may
    differ along a one-pixel rim and nowhere else. On small silhouettes that rim alone costs IoU
    (the 576x768 hands: 2,273 pixels), so the IoU bound applies where the silhouette is large
    enough for it to measure shape."""
    report = render_report("egl")
    for key, result in report.items():
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
