"""What a training run keeps in its folder, by name: found and removed without the libraries that
train (seconds to import), so that a run's plan is made and said before they load."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from realisdance_cli.files import remove

STATE_FOLDER = "state"


def saved_state(out: Path) -> tuple[Path, dict[str, Any]] | None:
    """The run folder's last saved state and its `step.json` (step and settings), if it has one."""
    for folder in (out / STATE_FOLDER, out / f"{STATE_FOLDER}.old"):  # .old: stopped while swapping
        if (folder / "step.json").is_file():
            return folder, json.loads((folder / "step.json").read_text())
    return None


STATE_NAMES = (STATE_FOLDER, f"{STATE_FOLDER}.old", f"{STATE_FOLDER}.partial")
LOGS, VALIDATION = "logs", "validation"
# What accelerate's TensorBoard tracker writes into OUT/logs: event files, and per run a folder
# named by the time (`time.time()`) with the hyperparameters' events and hparams.yml.
LOG_FILE = re.compile(r"events\.out\.tfevents\..+")
LOG_RUN_FOLDER = re.compile(r"\d+(\.\d+)?")
GRID = re.compile(r"\d+-.+-step\d{7}\.mp4")  # validation.py's `<number>-<clip>-step<N>.mp4`


def _exports(out: Path, stage: int) -> list[Path]:
    names = (f"stage{stage}{tail}{suffix}" for tail in ("", "_ema") for suffix in (".safetensors", ".ckpt"))
    return [out / name for name in names]


def _log_files(logs: Path) -> list[Path]:
    """The tracker's files in `logs`, and none of the user's notes beside them."""
    if not logs.is_dir():
        return []
    found = [path for path in logs.iterdir() if path.is_file() and LOG_FILE.fullmatch(path.name)]
    for folder in logs.iterdir():
        if folder.is_dir() and LOG_RUN_FOLDER.fullmatch(folder.name):
            found += [p for p in folder.iterdir() if LOG_FILE.fullmatch(p.name) or p.name == "hparams.yml"]
    return found


def outputs_of_a_run(out: Path, stage: int) -> list[Path]:
    """What a `stage` run writes into its folder, by its names, and nothing else: the user's own
    files there (notes in logs/, a clip in validation/, `stage1_keep.safetensors`) and the other
    stage's checkpoints (the released configs send both stages to one folder) are not in it."""
    own = [out / name for name in STATE_NAMES] + _exports(out, stage)
    grids = (out / VALIDATION).glob("*.mp4")
    found = [*own, *_log_files(out / LOGS), *(path for path in grids if GRID.fullmatch(path.name))]
    return sorted(path for path in found if path.exists())


def remove_outputs(out: Path, paths: list[Path]) -> None:
    """Removes `paths` (of `outputs_of_a_run`), then the folders in `out` they leave empty."""
    remove(paths)
    folders = {folder for path in paths for folder in path.parents if out in folder.parents}
    for folder in sorted(folders, key=lambda folder: len(folder.parts), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
