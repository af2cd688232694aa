"""The weights registry, `rdance weights`, and real downloads from a loopback hub."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import assert_user_error, rdance
from hub_server import HubServer

from realisdance_cli import weights
from realisdance_cli.errors import UserError


def test_registry_is_consistent() -> None:
    names = [entry.name for entry in weights.REGISTRY]
    assert len(names) == len(set(names))
    paths = [entry.path for entry in weights.REGISTRY]
    assert len(paths) == len(set(paths))
    for entry in weights.REGISTRY:
        if isinstance(entry.source, weights.HubFile):
            assert entry.path.endswith(entry.source.filename), entry.name
        assert entry.licence and entry.purpose
    # Every file of DESIGN.md's table is there.
    needed_files = (
        "yolox_l.onnx dw-ll_ucoco_384.onnx hamer.ckpt model_config.yaml MANO_RIGHT.pkl smpler_x_h32.pth.tar "
        "SMPLX_NEUTRAL.npz stage_2_hamer_release.ckpt mm_sd_v15_v2.ckpt smplx_color.pt"
    )
    for needed in needed_files.split():
        assert any(p.endswith(needed) for p in paths), needed
    assert {e.source.repo for e in weights.REGISTRY if isinstance(e.source, weights.HubFolder)} >= {
        "SG161222/Realistic_Vision_V5.1_noVAE",
        "facebook/dinov2-large",
        "stabilityai/sd-vae-ft-mse",
    }


def test_root_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RDANCE_HOME", raising=False)
    assert weights.weights_root() == Path("~/.cache/realisdance").expanduser()
    monkeypatch.setenv("RDANCE_HOME", str(tmp_path / "env"))
    assert weights.weights_root() == tmp_path / "env"
    assert weights.weights_root(tmp_path / "flag") == tmp_path / "flag"


def test_select_by_name_and_group() -> None:
    assert [e.name for e in weights.select(["dwpose"])] == ["dwpose-det", "dwpose-pose"]
    assert [e.name for e in weights.select(["mano", "dwpose-det", "mano"])] == ["mano", "dwpose-det"]
    with pytest.raises(UserError, match="no weight file or group is called 'nope'"):
        weights.select(["nope"])


def test_require_names_the_file_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(UserError) as caught:
        weights.require("mano", tmp_path)
    message = str(caught.value)
    assert str(tmp_path / "mano" / "MANO_RIGHT.pkl") in message
    assert "https://mano.is.tue.mpg.de" in message and "licence" in message
    with pytest.raises(UserError, match="rdance weights download dwpose"):
        weights.require("dwpose-det", tmp_path)
    (tmp_path / "dwpose").mkdir()
    (tmp_path / "dwpose" / "yolox_l.onnx").write_bytes(b"x")
    assert weights.require("dwpose-det", tmp_path) == tmp_path / "dwpose" / "yolox_l.onnx"


def test_check_exit_codes(tmp_path: Path) -> None:
    done = rdance("weights", "check", "dwpose", "--weights", tmp_path)
    assert done.returncode == 1
    assert done.stdout.count("missing") == 2
    for rel in ("dwpose/yolox_l.onnx", "dwpose/dw-ll_ucoco_384.onnx"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"onnx")
    done = rdance("weights", "check", "dwpose", "--weights", tmp_path)
    assert done.returncode == 0, done.stdout
    assert done.stdout.count("ok") == 2
    assert_user_error(rdance("weights", "check", "bogus", "--weights", tmp_path), "bogus")


def test_list_shows_every_entry(tmp_path: Path) -> None:
    done = rdance("weights", "list", "--weights", tmp_path, env={"COLUMNS": "400"})
    assert done.returncode == 0
    for entry in weights.REGISTRY:
        assert entry.name in done.stdout


# Bigger than huggingface_hub's 10 MiB write chunk, so a killed download leaves a partial file.
DWPOSE_FILES = {"yolox_l.onnx": os.urandom(24 << 20), "dw-ll_ucoco_384.onnx": os.urandom(200_000)}


def test_download_resumes_after_the_process_is_killed(tmp_path: Path) -> None:
    repos = {("yzd-v/DWPose", "main"): DWPOSE_FILES}
    target = tmp_path / "w" / "dwpose"
    with HubServer(repos, stall_first_download="yolox_l.onnx") as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HOME": str(tmp_path / "hf")}
        args = [
            sys.executable,
            "-m",
            "realisdance_cli",
            "weights",
            "download",
            "dwpose",
            "--weights",
            tmp_path / "w",
        ]
        child = subprocess.Popen(
            args, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 60
        while not any(p.stat().st_size for p in target.glob(".*.part")) and time.monotonic() < deadline:
            time.sleep(0.05)
        child.kill()
        child.communicate()
        assert not (target / "yolox_l.onnx").exists()  # nothing half-written under the real name
        assert list(target.glob(".yolox_l.onnx.*.part"))
        done = rdance("weights", "download", "dwpose", "--weights", tmp_path / "w", env=env)
        assert done.returncode == 0, done.stderr
        ranges = [
            r for method, path, r in hub.requests if method == "GET" and path.endswith("yolox_l.onnx") and r
        ]
        assert ranges and int(ranges[0].split("=")[1].split("-")[0]) > 0, hub.requests
        # Only the pinned revision was asked for.
        assert all("/resolve/main/" in path for _, path, _ in hub.requests if "resolve" in path)
    for name, data in DWPOSE_FILES.items():
        assert (target / name).read_bytes() == data
    assert not list(target.glob(".*.part"))
    assert rdance("weights", "check", "dwpose", "--weights", tmp_path / "w").returncode == 0


def test_download_of_a_folder(tmp_path: Path) -> None:
    files = {
        "config.json": b'{"model_type": "dinov2"}',
        "model.safetensors": os.urandom(5000),
        "README.md": b"x",
    }
    with HubServer({("facebook/dinov2-large", "main"): files}) as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HOME": str(tmp_path / "hf")}
        done = rdance("weights", "download", "dinov2", "--weights", tmp_path / "w", env=env)
        assert done.returncode == 0, done.stderr
    folder = tmp_path / "w" / "dinov2-large"
    assert (folder / "model.safetensors").read_bytes() == files["model.safetensors"]
    assert not (folder / "README.md").exists()  # only the patterns the registry asks for
    assert weights.status(weights.get("dinov2"), tmp_path / "w").ok


def test_offline_mode_is_a_clear_error(tmp_path: Path) -> None:
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = rdance("weights", "download", "dwpose-det", "--weights", tmp_path / "w", env=env)
    assert_user_error(done, "dwpose-det", "HF_HUB_OFFLINE")


def test_licence_gated_files_print_instructions(tmp_path: Path) -> None:
    done = rdance("weights", "download", "mano", "smplx", "--weights", tmp_path)
    assert done.returncode == 1
    text = " ".join(done.stderr.split())
    assert "https://mano.is.tue.mpg.de" in text and "https://smpl-x.is.tue.mpg.de" in text
    assert str(tmp_path / "mano" / "MANO_RIGHT.pkl") in text
