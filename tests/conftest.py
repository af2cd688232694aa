"""Shared test helpers: paths to ../shared, running the real `rdance` command, making videos."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
# The shared conformance data beside the repository; RDANCE_SHARED and RDANCE_GOLDEN move it (a
# missing folder shows what a plain clone sees: every test that needs it skips).
SHARED = Path(os.environ.get("RDANCE_SHARED", ROOT.parent / "shared"))
GOLDEN = Path(os.environ.get("RDANCE_GOLDEN", SHARED / "golden"))
FIXTURES = SHARED / "fixtures" / "official"


@pytest.fixture(scope="session", autouse=True)
def private_hf_home(tmp_path_factory: pytest.TempPathFactory):
    """The whole session (and every command it runs) sees its own empty Hugging Face cache, never
    the developer's models, and never the real hub."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HOME", str(tmp_path_factory.mktemp("hf-home")))
        for name in ("HF_HUB_CACHE", "HF_ENDPOINT", "RDANCE_HOME"):
            patch.delenv(name, raising=False)
        yield


def need(path: Path) -> Path:
    """`path`, or skip the test with a clear message when the shared data is absent."""
    if not path.exists():
        pytest.skip(f"{path} is not available (the shared conformance data lives beside the repository)")
    return path


def rdance(*args: str | os.PathLike[str], env: dict[str, str] | None = None, timeout: float = 300):
    """Run the real `rdance` command in a child process; returns the CompletedProcess."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "realisdance_cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )


def start_rdance(*args: str | os.PathLike[str]) -> subprocess.Popen:
    """Start the real `rdance` command in a child process (to stop or kill it while it runs)."""
    return subprocess.Popen(
        [sys.executable, "-m", "realisdance_cli", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def file_identities(folder: Path, names: Sequence[str]) -> dict[str, int | None]:
    """Each named file's inode (None: missing): a file renamed into place is a new one."""
    found: dict[str, int | None] = {}
    for name in names:
        try:
            found[name] = os.stat(folder / name).st_ino
        except FileNotFoundError:
            found[name] = None
    return found


def killed_at_the_first_new_file(folder: Path, args: list, earlier: dict[str, int | None]) -> int:
    """Runs `rdance ARGS` and SIGKILLs it the moment one of the files of `earlier` is replaced
    (polled without a pause: well within the time the next one takes to finish); its exit code."""
    child = start_rdance(*args)
    while child.poll() is None:
        if any(
            inode not in (None, earlier[name]) for name, inode in file_identities(folder, earlier).items()
        ):
            child.kill()
            break
    child.communicate(timeout=300)
    return child.returncode


def assert_user_error(done: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit code 2, a one-sentence message on stderr, and no traceback."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()  # any progress bars, then the sentence
    assert [line.startswith("error:") for line in lines].count(True) == 1, done.stderr
    for fragment in fragments:
        assert fragment in " ".join(done.stderr.split()), done.stderr


def numbered_frames(count: int, height: int = 48, width: int = 64) -> list[np.ndarray]:
    """Distinct frames whose index can be read back from the pixels (lossless videos)."""
    rng = np.random.default_rng(count)
    frames = []
    for index in range(count):
        frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        frame[0, 0] = (index, 255 - index, index // 2)
        frames.append(frame)
    return frames


def write_video(
    path: Path, frames: list[np.ndarray], fps: Fraction | int = 24, lossless: bool = True
) -> Path:
    from realisdance_cli.video_writer import VideoWriter

    with VideoWriter(path, fps, lossless=lossless) as writer:
        for frame in frames:
            writer.write(frame)
    return path


@pytest.fixture(scope="session")
def smplx_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A full-size synthetic SMPLX_NEUTRAL.npz (see body_models.py)."""
    from body_models import write_smplx

    return write_smplx(tmp_path_factory.mktemp("smplx") / "SMPLX_NEUTRAL.npz")


def golden_dwpose_names() -> list[str]:
    """The images of the DWPose golden cases (empty when the shared data is absent)."""
    path = GOLDEN / "dwpose" / "dwpose_golden.npz"
    if not path.exists():
        return []
    with np.load(path) as data:
        return sorted({key.split(".")[0] for key in data.files})


def golden_dwpose(name: str) -> tuple[dict, np.ndarray]:
    """The original's pose dict and kept person boxes for golden image `name`."""
    with np.load(need(GOLDEN / "dwpose" / "dwpose_golden.npz")) as data:
        pose = {
            "bodies": {
                "candidate": data[f"{name}.bodies.candidate"],
                "subset": data[f"{name}.bodies.subset"],
            },
            "hands": data[f"{name}.hands"],
            "hands_score": data[f"{name}.hands_score"],
            "faces": data[f"{name}.faces"],
            "H": int(data[f"{name}.H"]),
            "W": int(data[f"{name}.W"]),
        }
        return pose, data[f"{name}.det_boxes"]


def write_hamer_config(config: dict, path: Path) -> Path:
    """A `model_config.yaml` in the release's layout for the sizes of `CONFIG.json`."""
    import yaml

    head = config["mano_head"]
    backbone = config["backbone"]
    text = {
        "MODEL": {
            "IMAGE_SIZE": config["image_size"],
            "IMAGE_MEAN": config["image_mean"],
            "IMAGE_STD": config["image_std"],
            "BBOX_SHAPE": config["bbox_shape"],
            "BACKBONE": {"TYPE": "vit", "NUM_HEADS": backbone["num_heads"], "IMG_SIZE": backbone["img_size"]},
            "MANO_HEAD": {
                "TYPE": "transformer_decoder",
                "TRANSFORMER_DECODER": head["transformer_decoder"],
                "JOINT_REP": head["joint_rep"],
                "IEF_ITERS": head["ief_iters"],
                "TRANSFORMER_INPUT": head["transformer_input"],
            },
        },
        "EXTRA": {"FOCAL_LENGTH": config["focal_length"]},
        "MANO": {"GENDER": "neutral", "NUM_HAND_JOINTS": 15},
    }
    path.write_text(yaml.safe_dump(text))
    return path


def steer_hamer(checkpoint: Path, out: Path) -> Path:
    """The tiny HaMeR with its output layers steered: weights zero, biases chosen so that every hand
    comes out at rest (identity rotations), of MANO's mean shape (betas 0), with the mean crop
    camera's scale and no offset. `cam_crop_to_full` then puts the hand's origin on the ray
    through its box centre, and the synthetic MANO hand is centred on its origin."""
    import torch

    raw = torch.load(checkpoint, weights_only=True)
    state = raw["state_dict"]
    init_cam = state["mano_head.init_cam"][0]
    assert init_cam[0] > 0, "the mean crop camera must have a positive scale"
    identity = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])  # two columns of the identity
    targets = {
        "decpose": identity.repeat(state["mano_head.init_hand_pose"].shape[1] // 6),
        "decshape": torch.zeros(state["mano_head.init_betas"].shape[1]),
        "deccam": torch.tensor([float(init_cam[0]), 0.0, 0.0]),
    }
    starts = {"decpose": "init_hand_pose", "decshape": "init_betas", "deccam": "init_cam"}
    for layer, target in targets.items():
        state[f"mano_head.{layer}.weight"].zero_()  # the output no longer depends on the picture
        state[f"mano_head.{layer}.bias"].copy_(target - state[f"mano_head.{starts[layer]}"][0])
    torch.save(raw, out)
    return out


@pytest.fixture(scope="session")
def dit_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A weights folder holding the tiny golden RealisDance-DiT, in the release's layout, where the
    registry puts it."""
    from test_dit import release_folder

    root = tmp_path_factory.mktemp("dit-weights")
    release_folder(root).rename(root / "realisdance-dit")
    return root


@pytest.fixture(scope="session")
def animator_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A weights folder laid out like a user's, pointing at the tiny golden animator models."""
    golden = need(GOLDEN / "animator")
    root = tmp_path_factory.mktemp("animator-weights")
    links = {
        "realisdance/stage_2_hamer_release.ckpt": golden / "realisdance_tiny.ckpt",
        "base/rv51/unet": golden / "tiny_sd" / "unet",
        "base/rv51/vae": golden / "tiny_sd" / "vae",
        "base/rv51/scheduler": golden / "tiny_sd" / "scheduler",
        "dinov2-large": golden / "tiny_dinov2",
    }
    for relative, target in links.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).symlink_to(target)
    return root


@pytest.fixture(scope="session")
def extraction_weights(smplx_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny DWPose, HaMeR and SMPLer-X, a synthetic SMPL-X and a red colour table. The random
    networks' outputs are steered (output layers' weights zero, biases chosen) so that what the
    tests assert holds whatever the random weights: HaMeR's hands are at rest, centred on their
    boxes (see `steer_hamer`); SMPLer-X's body is at rest with a centred camera (weights zero,
    biases the identity), so the body must appear around the centre of the person box, as a
    trained model's would."""
    import torch

    root = tmp_path_factory.mktemp("weights")
    links = {
        "dwpose/yolox_l.onnx": GOLDEN / "dwpose" / "yolox_tiny.onnx",
        "dwpose/dw-ll_ucoco_384.onnx": GOLDEN / "dwpose" / "dwpose_tiny.onnx",
        "mano/MANO_RIGHT.pkl": GOLDEN / "hamer" / "mano" / "MANO_RIGHT.pkl",
        "smplx/SMPLX_NEUTRAL.npz": smplx_file,
    }
    for relative, target in links.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).symlink_to(need(target))
    (root / "hamer").mkdir()
    steer_hamer(need(GOLDEN / "hamer" / "hamer_tiny.ckpt"), root / "hamer" / "hamer.ckpt")
    write_hamer_config(
        json.loads((GOLDEN / "hamer" / "CONFIG.json").read_text()), root / "hamer" / "model_config.yaml"
    )
    raw = torch.load(need(GOLDEN / "smplerx" / "smpler_x_tiny.pth.tar"), weights_only=True)
    identity = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0])
    for name in ("root_pose_out", "body_pose_out", "shape_out", "cam_out"):
        raw["network"][f"module.body_regressor.{name}.0.weight"].zero_()
        bias = raw["network"][f"module.body_regressor.{name}.0.bias"]
        bias.copy_(identity.repeat(len(bias) // 6) if "pose" in name else torch.zeros_like(bias))
    (root / "smplerx").mkdir()
    torch.save(raw, root / "smplerx" / "smpler_x_h32.pth.tar")
    (root / "smplerx" / "config.json").write_text((GOLDEN / "smplerx" / "CONFIG.json").read_text())
    red = np.zeros((10475, 3), np.uint8)
    red[:, 0] = 255
    torch.save(red, root / "smplx" / "smplx_color.pt")
    return root
