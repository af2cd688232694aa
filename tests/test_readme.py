"""The README's "Use it from Python" examples run as written, in a folder laid out as it says."""

from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import FIXTURES, GOLDEN, ROOT, need, write_video
from test_dit import release_folder

from realisdance_cli.video import FrameSource

pytestmark = pytest.mark.slow


def python_examples(section: str) -> list[str]:
    """The ```python blocks of one README section, in order."""
    text = (ROOT / "README.md").read_text()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", body, flags=re.DOTALL)


def test_use_it_from_python_examples_run(
    extraction_weights: Path, animator_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    examples = python_examples("Use it from Python")
    assert len(examples) == 3
    weights = tmp_path / "weights"
    weights.mkdir()
    for root in (extraction_weights, animator_weights):
        for entry in root.iterdir():
            (weights / entry.name).symlink_to(entry.resolve())
    release_folder(tmp_path).rename(weights / "realisdance-dit")
    person = cv2.imread(str(need(GOLDEN / "dwpose" / "person_960x540.png")))[:, :, ::-1]
    write_video(tmp_path / "dance.mp4", [person] * 3, fps=24)
    cv2.imwrite(str(tmp_path / "me.png"), cv2.imread(str(need(FIXTURES / "dit_ref.png"))))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RDANCE_HOME", str(weights))

    namespace: dict = {"__name__": "readme"}
    for example in examples:
        exec(compile(example, "README.md", "exec"), namespace)

    assert {"dwpose.mp4", "hamer.mp4", "smpl.mp4"} <= set(os.listdir("dance.rdance"))
    assert [p.name for p in namespace["written"]] == ["me_dance.mp4"]
    info = FrameSource(Path("me_dance.mp4")).info
    assert (info.frame_count, info.height, info.width) == (3, 256, 192)
    frames = namespace["frames"]
    assert frames.shape == (3, 256, 192, 3) and frames.dtype == np.float32
    assert (Path("realisdance-sd") / "model_index.json").is_file()
    dit_frames = namespace["dit_frames"]
    assert dit_frames.ndim == 4 and dit_frames.shape[3] == 3 and dit_frames.dtype == np.float32
    assert dit_frames.shape[1] * dit_frames.shape[2] == pytest.approx(256 * 192, rel=0.2)
