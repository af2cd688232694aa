"""The `rdance` command itself: help and examples, options shared by the commands, version,
verbosity, lazy imports, doctor, headless GL."""

from __future__ import annotations

import logging
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from conftest import assert_user_error, rdance, start_rdance
from typer.testing import CliRunner

from realisdance_cli import __version__
from realisdance_cli.cli import _OWN_LEVEL_VARIABLES, app
from realisdance_cli.cli.shared import EXAMPLES
from realisdance_cli.errors import UserError
from realisdance_cli.original import import_dwpose_pkl, save_dwpose_pkl
from realisdance_cli.renderers import gl
from realisdance_cli.synthetic import dancer_pkl_frames
from realisdance_cli.track import STREAMS, Stream, Track


def commands(
    group: typer.core.TyperGroup, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command and group under `group`, by the words that name it after `rdance`."""
    for name, command in group.commands.items():
        yield (*path, name), command
        if isinstance(command, typer.core.TyperGroup):
            yield from commands(command, (*path, name))


ROOT = typer.main.get_command(app)
ALL = dict(commands(ROOT))
LEAVES = {path: command for path, command in ALL.items() if not isinstance(command, typer.core.TyperGroup)}


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A runner for the app in this process; the logging set-up of its root command is undone after."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    for logger in (root, logging.getLogger("realisdance_cli"), *map(logging.getLogger, _OWN_LEVEL_VARIABLES)):
        monkeypatch.setattr(logger, "level", logger.level)
    for variable in _OWN_LEVEL_VARIABLES.values():
        monkeypatch.delenv(variable, raising=False)
    return CliRunner()


def test_help_lists_the_commands() -> None:
    done = rdance("--help")
    assert done.returncode == 0
    for command in ("doctor", "extract", "render-poses", "animate", "train", "weights", "dataset", "track"):
        assert command in done.stdout


def test_every_command_has_help_with_its_examples(in_process: CliRunner) -> None:
    """Found in the app itself: a new command without examples, or one whose help fails, fails here."""
    assert {" ".join(path) for path in LEAVES} == set(EXAMPLES)
    for path, command in ALL.items():
        done = in_process.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert done.exit_code == 0, (path, done.output)
        shown = " ".join(done.output.split())
        described = re.split("Examples?:|\u256d", done.output)[0]
        text = [line.strip() for line in described.splitlines()]
        broken = [a for a, b in pairwise(text) if a and b and len(a) < 150]
        assert not broken, (path, broken)  # a paragraph wraps at the terminal's width, not the source's
        if path in LEAVES:
            assert EXAMPLES[" ".join(path)], path
            for example in EXAMPLES[" ".join(path)]:
                assert example in shown, (path, example)
        else:
            assert all(name in shown for name in command.commands), path  # a group lists its commands


def test_flags_show_no_value_in_help() -> None:
    """typer showed `--face <bool>` and `-v <int>`, and `--face true` is refused."""
    for path in ((), ("track",), ("render-poses",), ("animate",), ("eval", "run")):
        shown = rdance(*path, "--help", env={"COLUMNS": "200"}).stdout
        assert re.search(r"--help\s+-h\s+Show this message", shown) and "<bool>" not in shown, path
    assert re.search(r"-v\s+Say more", rdance("--help", env={"COLUMNS": "200"}).stdout)
    assert re.search(
        r"--face\s+Draw the face", rdance("render-poses", "--help", env={"COLUMNS": "200"}).stdout
    )


def test_every_example_parses() -> None:
    """Each example names its command and gives it arguments and options it takes."""
    for name, examples in EXAMPLES.items():
        path = tuple(name.split())
        for example in examples:
            words = shlex.split(example)
            assert words[: len(path) + 1] == ["rdance", *path], example
            LEAVES[path].make_context(path[-1], words[len(path) + 1 :])


def test_one_device_option_for_every_command_that_takes_a_device() -> None:
    with_device = {
        path for path, command in LEAVES.items() if any("--device" in p.opts for p in command.params)
    }
    assert with_device == {
        ("extract",),
        ("animate",),
        ("dataset", "build"),
        ("demo",),
        ("retarget",),
        ("eval", "score"),
        ("eval", "run"),
    }
    required = {
        ("eval", "score"): ["x", "y"],
        ("eval", "run"): ["x"],
        ("dataset", "build"): ["x", "--out", "y"],
        ("animate",): ["x"],
        ("retarget",): ["x", "y"],
        ("extract",): ["x"],
        ("demo",): [],
    }
    for path in with_device:
        for device in ("auto", "cpu", "cuda", "cuda:1", "mps"):
            context = LEAVES[path].make_context(path[-1], [*required[path], "--device", device])
            assert context.params["device"] == device
        for device in ("gpu", "cuda:", "cuda:x", "CPU"):
            with pytest.raises(UserError, match=r"--device must be auto, cpu, cuda, cuda:N or mps, got '"):
                LEAVES[path].make_context(path[-1], [*required[path], "--device", device])


def test_choices_are_listed_and_others_refused_in_one_sentence(tmp_path: Path) -> None:
    done = rdance("animate", "--help")
    for choices in ("<sliding|uniform>", "<fake|real>", "<fp16|bf16|fp32>", "<auto|cpu|cuda|cuda:N|mps>"):
        assert choices in done.stdout
    done = rdance("train", tmp_path / "m.jsonl", "--mixed-precision", "fp8", "--out", tmp_path / "run")
    assert_user_error(done, "--mixed-precision must be no, fp16 or bf16, got 'fp8'.")
    assert not (tmp_path / "run").exists()


def test_version() -> None:
    for flag in ("--version", "-V"):
        done = rdance(flag)
        assert done.returncode == 0 and done.stdout == f"rdance {__version__}\n", done.stdout + done.stderr


def test_quiet_hides_warnings_and_progress_bars(tmp_path: Path) -> None:
    """A render with a warning (an unfinished stream): shown with its bar by default, not with -q."""
    save_dwpose_pkl(tmp_path / "dance.pkl", dancer_pkl_frames(6, 96, 64))
    track = Track.open(import_dwpose_pkl(tmp_path / "dance.pkl", tmp_path / "dance.rdance", fps=24).path)
    track.begin("mano", weights={}, options={})
    hand = {name: np.zeros((0, *spec.shape)) for name, spec in STREAMS["mano"].items()}
    track.append("mano", Stream.from_frames("mano", [hand] * 2))
    done = rdance("render-poses", track.path, "--out", tmp_path / "loud")
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stderr.split())
    assert "warning: hamer.mp4 is not written" in said and "render" in said and "6/6" in said
    done = rdance("-q", "render-poses", track.path, "--out", tmp_path / "quiet")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert (tmp_path / "quiet" / "dwpose.mp4").is_file() and "wrote" in done.stdout


def test_verbose_logs_debugging_details(tmp_path: Path) -> None:
    missing = tmp_path / "none.rdance"
    done = rdance("-vv", "track", "info", missing)
    assert "DEBUG" in done.stderr and f"rdance {__version__}" in done.stderr
    assert_user_error(done, f"{missing} does not exist.")  # errors stay one sentence
    done = rdance("-v", "track", "info", missing)  # informs, but does not debug
    assert done.stderr.startswith("error:"), done.stderr


def test_root_flags_after_the_command_say_where_they_go() -> None:
    done = rdance("track", "info", "dance.rdance", "-v")
    assert_user_error(done, "-v goes before the command: `rdance -v track info ...`.")
    assert_user_error(rdance("weights", "list", "--quiet"), "`rdance --quiet weights list ...`")
    assert_user_error(rdance("-q", "-v", "track", "info", "dance.rdance"), "give -q (errors only) or -v")


def test_a_log_shows_progress_in_throttled_lines(tmp_path: Path) -> None:
    """Off a terminal (a pipe, CI) rich drew its bars only at the end: a log showed no life."""
    save_dwpose_pkl(tmp_path / "dance.pkl", dancer_pkl_frames(60, 96, 64))
    done = rdance("render-poses", tmp_path / "dance.pkl", "--fps", "24")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("render ")]
    assert "━" not in done.stderr and lines[-1].startswith("render 60/60 (100%), "), done.stderr
    assert 3 <= len(lines) <= 12 and re.fullmatch(r"render \d+/60 \(\d+%\), [\d.]+/s, [\d:]+ left", lines[1])


def test_long_messages_stay_on_one_line_in_a_log(tmp_path: Path) -> None:
    """A path or a command cut at the width of the console could not be copied from a log."""
    missing = tmp_path / ("a-rather-long-folder-name-" * 3) / "dance.rdance"
    done = rdance("track", "info", missing, env={"COLUMNS": "40"})
    assert_user_error(done, "does not exist")
    assert f"error: {missing} does not exist." in done.stderr.splitlines()[0], done.stderr


def test_library_warnings_are_said_once_and_not_with_quiet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """huggingface_hub's warnings (its retries of a hub that answers 503) were printed twice, by
    its handler and ours, and with -q too."""
    with _unavailable_hub() as url:
        monkeypatch.setenv("HF_ENDPOINT", url)
        args = ("weights", "download", "training", "--weights", tmp_path)
        quiet, loud = start_rdance("-q", *args), start_rdance(*args)
        said = []
        for line in loud.stderr or ():  # until the second retry: both have failed twice by then
            said.append(line)
            if "Retrying in 2s" in line:
                break
        for child in (loud, quiet):
            child.kill()
        assert sum("thrown while requesting" in line for line in said) == 2, said
        assert "thrown while requesting" not in quiet.communicate(timeout=60)[1]
        loud.communicate(timeout=60)


@contextmanager
def _unavailable_hub() -> Iterator[str]:
    """The URL of a loopback server that answers every request 503, which huggingface_hub retries."""

    class Unavailable(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_HEAD(self) -> None:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_HEAD

    server = ThreadingHTTPServer(("127.0.0.1", 0), Unavailable)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _printed_by_a_fresh_python(code: str) -> str:
    """What `code` prints in a new interpreter: what importing does, unmasked by this one's modules."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_help_does_not_import_heavy_libraries() -> None:
    """`rdance --help` must be instant: torch, onnxruntime, pyrender and PyAV load only when used."""
    code = (
        "import sys; from realisdance_cli import cli; "
        "heavy = [m for m in ('torch', 'onnxruntime', 'pyrender', 'av', 'cv2', 'diffusers', 'numpy') "
        "if m in sys.modules]; print(heavy)"
    )
    assert _printed_by_a_fresh_python(code) == "[]"


def test_every_public_name_is_what_its_module_defines_in_any_import_order() -> None:
    """`from realisdance_cli import RetargetOptions, retarget` gave the subpackage `retarget`
    (importing a submodule sets the package's attribute of its name): no public name may be a
    module's name."""
    code = (
        "import types, realisdance_cli as rd; from realisdance_cli import *; "
        "wrong = [n for n in rd._EXPORTS if isinstance(getattr(rd, n), types.ModuleType) "
        "or getattr(rd, n) is not getattr(__import__(rd._EXPORTS[n], fromlist=[n]), n)]; print(wrong)"
    )
    assert _printed_by_a_fresh_python(code) == "[]"


def test_unknown_command_and_missing_argument_fail_cleanly() -> None:
    """click's own mistakes are one sentence like ours, naming the help to read."""
    assert_user_error(rdance("dance-now"), "No such command 'dance-now'; see `rdance --help`.")
    assert_user_error(rdance("track", "import"), "Missing argument", "see `rdance track import --help`.")
    assert_user_error(
        rdance("extract", "x.mp4", "--fps", "abc"), "Invalid value for '--fps'", "rdance extract --help"
    )
    assert_user_error(
        rdance("extract", "x.mp4", "--bogus"), "No such option", "--bogus", "rdance extract --help"
    )
    done = rdance("track")  # a group given nothing shows its help
    assert done.returncode == 2 and "rdance track [OPTIONS] COMMAND" in done.stdout + done.stderr


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
    # A summary of what is missing, after the table: the one download, and what comes by hand.
    said = " ".join(done.stderr.split())
    assert (
        f"weight files missing: run `rdance weights download dwpose smplerx realisdance training --weights "
        f"{tmp_path}` for those on the hub; get hamer, mano, smplx by hand (their rows say how)." in said
    )


def test_paths_are_printed_as_written_on_one_line(tmp_path: Path) -> None:
    """Brackets in a path are not rich markup (`[/b]` was a traceback after the work was done,
    `[red]` vanished) and a long path is not wrapped into two lines when the output is piped."""
    pkl = tmp_path / "dance.pkl"
    save_dwpose_pkl(pkl, dancer_pkl_frames(2, 64, 48))
    out = tmp_path / ("a_long_folder_name_" * 6) / "x[/b] [red]y.rdance"
    done = rdance("track", "import", pkl, "--out", out, env={"COLUMNS": "80"})
    assert done.returncode == 0, done.stderr
    assert f"imported 2 frames into {out}" in done.stdout.splitlines()
    listed = rdance("weights", "list", "--weights", tmp_path / "w[red]x", env={"COLUMNS": "200"})
    assert listed.returncode == 0 and f"weights in {tmp_path / 'w[red]x'}" in listed.stdout


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
    assert_user_error(rdance("track", "export", tmp_path / "none.rdance"), "none.rdance does not exist.")


def test_running_out_of_memory_is_one_sentence_naming_lighter_settings() -> None:
    """PyTorch's own errors, as a job that is too big raises them (the CPU allocator's message, the
    GPU's OutOfMemoryError, Python's MemoryError); any other error stays a bug to report."""
    import torch

    from realisdance_cli.devices import out_of_memory

    with pytest.raises(RuntimeError) as cpu:
        torch.empty(2**60, dtype=torch.uint8)
    gpu = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    for err, where in ((cpu.value, "this machine"), (gpu, "the GPU"), (MemoryError(), "this machine")):
        sentence = out_of_memory(err)
        assert sentence is not None and str(sentence).startswith(f"{where} ran out of memory")
        assert "--offload group" in str(sentence) and sentence.exit_code == 2
    assert out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied")) is None


@pytest.mark.parametrize(
    "words",
    [
        ("animate", "me.png", "poses", "--size", "10x10"),
        ("animate", "me.png", "poses", "--model", "dit", "--prompt", "x", "--steps", "0"),
        ("demo", "--offline", "--steps", "0"),
    ],
    ids=["animate-sd", "animate-dit", "demo"],
)
def test_a_wrong_option_is_said_before_the_networks_are_imported(words: tuple[str, ...]) -> None:
    """A typo took 20-30 s to be said: the command imported the SD pipeline (diffusers, torch) for
    its settings' class, and --retarget's module, before checking them."""
    code = (
        "import sys; from realisdance_cli.cli import main; sys.argv = ['rdance', *sys.argv[1:]]\n"
        "try:\n    main()\nfinally:\n"
        "    print([m for m in ('torch', 'diffusers') if m in sys.modules], file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code, *words], capture_output=True, text=True)
    assert done.returncode == 2 and "error:" in done.stderr, done.stderr
    assert done.stderr.strip().endswith("[]"), done.stderr


# `rdance` with one more command, registered as ours are, that waits (no progress bar) once ready.
WAITING_COMMAND = """
import sys, time
from realisdance_cli.cli import app, main
from realisdance_cli.cli.shared import command

@command(app, "wait-here")
def wait_here() -> None:
    \"\"\"Waits.\"\"\"
    print("ready", flush=True)
    time.sleep(600)

sys.argv = ["rdance", "wait-here"]
main()
"""


@pytest.mark.parametrize(("how", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stop_before_any_progress_bar_is_said_with_its_signals_code(how: signal.Signals, code: int) -> None:
    """typer made a stop outside the progress bars (loading the networks, reading the inputs) a
    silent exit 130, SIGTERM's included."""
    child = subprocess.Popen(
        [sys.executable, "-c", WAITING_COMMAND], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    child.send_signal(how)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == code, stderr
    assert stderr.strip() == "interrupted; no output was left half-written.", stderr
