"""The `rdance` command itself: help, lazy imports, doctor, headless GL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import assert_user_error, rdance

from realisdance_cli.renderers import gl

COMMANDS = {
    ("doctor",): "Check this machine",
    ("weights",): "weights",
    ("weights", "list"): "Example",
    ("weights", "check"): "Example",
    ("weights", "download"): "Example",
    ("track",): "pose tracks",
    ("track", "import"): "Example",
    ("track", "export"): "Example",
    ("track", "info"): "Example",
}


def test_help_lists_the_commands() -> None:
    done = rdance("--help")
    assert done.returncode == 0
    for command in ("doctor", "weights", "track"):
        assert command in done.stdout


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_has_help_with_examples(command: tuple[str, ...]) -> None:
    done = rdance(*command, "--help")
    assert done.returncode == 0, done.stderr
    assert COMMANDS[command] in done.stdout


def test_help_does_not_import_heavy_libraries() -> None:
    """`rdance --help` must be instant: torch, onnxruntime, pyrender and PyAV load only when used."""
    code = (
        "import sys; from realisdance_cli import cli; "
        "heavy = [m for m in ('torch', 'onnxruntime', 'pyrender', 'av', 'cv2', 'diffusers', 'numpy') "
        "if m in sys.modules]; print(heavy)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_unknown_command_and_bad_option_fail_cleanly() -> None:
    done = rdance("dance-now")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    done = rdance("track", "import")
    assert done.returncode == 2 and "Missing argument" in done.stderr


@pytest.mark.slow
def test_doctor_reports_everything(tmp_path: Path) -> None:
    done = rdance("doctor", "--weights", tmp_path, env={"COLUMNS": "250"})
    assert done.returncode == 0, done.stdout + done.stderr
    text = " ".join(done.stdout.split())
    expected = (
        "torch onnxruntime CPUExecutionProvider PyOpenGL egl osmesa chosen libx264 dwpose-det missing "
        "https://smpl-x.is.tue.mpg.de"
    )
    for fragment in [*expected.split(), "MANO licence"]:
        assert fragment in text, fragment


@pytest.mark.slow
def test_doctor_honours_a_forced_backend(tmp_path: Path) -> None:
    done = rdance("doctor", "--weights", tmp_path, env={"RDANCE_GL": "osmesa", "COLUMNS": "250"})
    assert done.returncode == 0
    chosen = next(line for line in done.stdout.splitlines() if "chosen" in line)
    assert "osmesa" in chosen
    done = rdance("doctor", "--weights", tmp_path, env={"RDANCE_GL": "vulkan", "COLUMNS": "250"})
    assert done.returncode == 1
    assert "RDANCE_GL must be one of" in " ".join(done.stdout.split())


@pytest.mark.parametrize("backend", gl.BACKENDS)
def test_both_headless_backends_render(backend: str) -> None:
    assert gl.probe(backend) is None


def test_backend_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RDANCE_GL", "osmesa")
    assert gl.choose_backend() == "osmesa"
    monkeypatch.delenv("RDANCE_GL")
    assert gl.choose_backend() == "egl"  # EGL first when it works


def test_user_errors_have_exit_code_2_and_no_traceback(tmp_path: Path) -> None:
    assert_user_error(rdance("track", "export", tmp_path / "none.rdance"), "not a pose track")
