"""The two mesh pictures against the original renderers' golden frames, on both GL backends.

The cases are the pictures `render_golden.npz` holds (`hands_{H}x{W}`, `smplcs_{H}x{W}`), found in
the file. Each backend runs in its own process (PyOpenGL fixes its platform at import): one child
per backend renders every golden case and reports the differences, which each case's test reads.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import FIXTURES, GOLDEN, need

RENDER_GOLDEN = GOLDEN / "render" / "render_golden.npz"

RENDER_ALL = r"""
import json, sys
import numpy as np
from realisdance_cli.bodies import load_vertex_colours
from realisdance_cli.renderers.hands import HandRenderer
from realisdance_cli.renderers.smpl_cs import SmplCsRenderer

def covered(picture):
    # Pixels at least about half covered: brightness over half the picture's median mesh pixel
    # (multisampled edges blend with the black background in proportion to their coverage).
    brightness = picture.max(-1)
    return brightness >= 0.5 * np.median(brightness[brightness > 0])

def grown(mask):  # the mask dilated by one pixel
    out = mask.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            out |= np.roll(np.roll(mask, dy, 0), dx, 1)
    return out

def compare(got, want):
    diff = np.abs(got.astype(int) - want).max(-1)
    drawn, expected = got.max(-1) > 0, want.max(-1) > 0
    return {
        "silhouette": int(expected.sum()),
        "beyond_one_pixel": int((drawn & ~grown(expected)).sum() + (expected & ~grown(drawn)).sum()),
        "shape_ok": got.shape == want.shape and got.dtype == want.dtype,
        "differing": float((diff > 0).mean()),
        "max_diff": int(diff.max()),
        "mean_diff": float(np.abs(got.astype(int) - want).mean()),
        "iou": float((covered(got) & covered(want)).sum() / max(1, (covered(got) | covered(want)).sum())),
    }

golden = np.load(sys.argv[1])
colours = load_vertex_colours(sys.argv[2])
cases = sorted(key for key in golden.files if "." not in key)
report = {}
for height, width in sorted({golden[key].shape[:2] for key in cases}):
    here = [key for key in cases if golden[key].shape[:2] == (height, width)]
    kinds = {key.split("_")[0] for key in here}
    # The kinds of this size alive together, as render-poses uses them, and each draws another
    # pose first: the pictures compared below come from rewritten vertex buffers.
    hands = HandRenderer(height, width, golden["hands.faces"]) if "hands" in kinds else None
    body = SmplCsRenderer(height, width, golden["smplcs.faces"], colours) if "smplcs" in kinds else None
    for key in here:
        kind = key.split("_")[0]
        if kind == "hands":
            vertices, cam_t, is_right = (golden[f"{key}.{p}"] for p in ("vertices", "cam_t", "is_right"))
            focal = float(golden[f"{key}.focal"])
            hands.render(vertices[:1] + 0.01, cam_t[:1], is_right[:1], focal)
            report[key] = compare(hands.render(vertices, cam_t, is_right, focal), golden[key])
            right = is_right.astype(bool)
            alone = hands.render(vertices[right], cam_t[right], is_right[right], focal)
            report[key]["left_hand_gone"] = bool(not (alone[:, :, 1] > alone[:, :, 0]).any())
        elif kind == "smplcs":
            vertices, focal, princpt = (golden[f"{key}.{p}"] for p in ("vertices", "focal", "princpt"))
            body.render(vertices + 0.01, focal, princpt)
            report[key] = compare(body.render(vertices, focal, princpt), golden[key])
        else:
            report[key] = {"error": f"no renderer for {kind!r} pictures"}
    for renderer in (body, hands):
        if renderer is not None:
            renderer.close()
print(json.dumps(report))
"""


def golden_render_cases() -> list[str]:
    """The golden pictures (empty when the shared data is absent)."""
    if not RENDER_GOLDEN.exists():
        return []
    with np.load(RENDER_GOLDEN) as data:
        return sorted(key for key in data.files if "." not in key)


CASES = golden_render_cases() or [
    pytest.param(
        "absent", marks=pytest.mark.skip(reason=f"no golden mesh pictures: {RENDER_GOLDEN} is absent")
    )
]


@functools.cache
def render_report(backend: str) -> dict:
    """Every golden case rendered with `backend` in a child process (once per backend)."""
    done = subprocess.run(
        [sys.executable, "-c", RENDER_ALL, str(RENDER_GOLDEN), str(FIXTURES / "smplx_color.pt")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYOPENGL_PLATFORM": backend},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def case_report(backend: str, key: str) -> dict:
    """The comparison of golden picture `key`; a hand picture must also leave no trace of the
    left hand when the next frame draws the right one alone."""
    need(RENDER_GOLDEN)
    need(FIXTURES / "smplx_color.pt")
    result = render_report(backend)[key]
    assert "error" not in result, (key, result)
    assert result["shape_ok"], (key, result)
    assert result.get("left_hand_gone", True), (key, result)
    return result


@pytest.mark.slow
@pytest.mark.parametrize("key", CASES)
def test_osmesa_reproduces_the_original_picture(key: str) -> None:
    result = case_report("osmesa", key)
    assert result["differing"] <= 0.001, (key, result)  # at most 0.1 % of pixels
    assert result["max_diff"] <= 2, (key, result)  # by at most 2 levels


@pytest.mark.slow
@pytest.mark.parametrize("key", CASES)
def test_egl_matches_within_the_multisampling_tolerance(key: str) -> None:
    """EGL is pyrender's 4x multisampled framebuffer: edges are anti-aliased, so silhouettes may
    differ along a one-pixel rim and nowhere else. On small silhouettes that rim alone costs IoU
    (the 576x768 hands: 2,273 pixels), so the IoU bound applies where the silhouette is large
    enough for it to measure shape."""
    result = case_report("egl", key)
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
    with pytest.raises(UserError, match=r"refers to builtins\.print, which a data file never needs"):
        load_vertex_colours(evil)
