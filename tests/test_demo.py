"""`rdance demo` as a newcomer runs it: online end to end against the loopback hub (the tiny
golden animator in the registry's repositories, the authors' demo files at their pinned URLs),
again with nothing to download, resumed after a damaged download, and offline."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from conftest import FIXTURES, GOLDEN, assert_user_error, need, rdance
from hub_server import HubServer

from realisdance_cli import weights
from realisdance_cli.demo import SEQUENCE, SKELETON, VIDEO
from realisdance_cli.files import human_size
from realisdance_cli.original import load_dwpose_pkl, save_dwpose_pkl
from realisdance_cli.video import FrameSource

GRID = "realisdance_demo_grid.mp4"  # the grid animate writes beside the video

pytestmark = pytest.mark.slow
QUICK = ("--size", "64x64", "--steps", "2", "--max-frames", "4", "--device", "cpu")
FRAMES = 144  # of the served pose videos (dit_hamer.mp4, dit_smpl.mp4)


def tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def hub_repos() -> dict[tuple[str, str], dict[str, bytes]]:
    """The animator's weights at the registry's repositories and names, as the real repositories
    hold them: the base model with its UNet weights (which the registry's patterns leave out)."""
    golden = need(GOLDEN / "animator")
    network, base, dinov2 = (weights.get(name).source for name in ("realisdance", "base-model", "dinov2"))
    assert isinstance(network, weights.HubFile)
    index = {"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.6.0"}
    return {
        (network.repo, network.revision): {network.filename: (golden / "realisdance_tiny.ckpt").read_bytes()},
        (base.repo, base.revision): {
            **tree(golden / "tiny_sd"),
            "model_index.json": json.dumps(index).encode(),
        },
        (dinov2.repo, dinov2.revision): tree(golden / "tiny_dinov2"),
    }


def to_download(repos: dict[tuple[str, str], dict[str, bytes]]) -> int:
    """Bytes the demo fetches from the hub: everything but the base model's UNet weights."""
    return sum(
        len(data) for files in repos.values() for name, data in files.items() if not name.startswith("unet/d")
    )


@pytest.fixture(scope="module")
def sequence(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The demo files at their URL paths: the authors' picture and pose videos, and their
    dwpose_1.pkl cut to the videos' frame count (the real hamer_1.mp4 and smpl_1.mp4 have its 363)."""
    pkl = tmp_path_factory.mktemp("sequence") / "dwpose_1.pkl"
    save_dwpose_pkl(pkl, load_dwpose_pkl(need(FIXTURES / "dwpose_1.pkl"))[:FRAMES])
    content = {
        "reference": need(FIXTURES / "dit_ref.png").read_bytes(),
        "dwpose": pkl.read_bytes(),
        "hamer": need(FIXTURES / "dit_hamer.mp4").read_bytes(),
        "smpl": need(FIXTURES / "dit_smpl.mp4").read_bytes(),
    }
    return {f"/{item.commit}/{item.path}": content[item.role] for item in SEQUENCE}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A newcomer's machine: an empty home (the default weights folder) and Hugging Face cache."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return tmp_path / "home"


def serve(hub: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("RDANCE_DEMO_URL", hub.url)


def file_gets(hub: HubServer, since: int = 0) -> list[str]:
    return [path for method, path, _ in hub.requests[since:] if method == "GET" and "/api/" not in path]


def assert_animated(out: Path) -> None:
    video, grid = FrameSource(out / VIDEO).info, FrameSource(out / GRID).info
    assert (video.frame_count, video.height, video.width) == (4, 64, 64)
    assert (grid.frame_count, grid.height, grid.width) == (4, 64, 5 * 64)  # reference, 3 poses, result


def test_the_demo_downloads_animates_and_then_downloads_nothing(
    home: Path, sequence: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repos = hub_repos()
    out = tmp_path / "out"
    with HubServer(repos, plain=sequence) as hub:
        serve(hub, monkeypatch)
        done = rdance("demo", "--out", out, *QUICK)
        assert done.returncode == 0, done.stderr
        text = " ".join(done.stdout.split())
        # The size comes first: the hub's files that the registry's patterns take, and the sequence.
        whole = to_download(repos) + sum(map(len, sequence.values()))
        assert f"the full demo downloads {human_size(whole)}" in text
        assert text.index("downloads") < text.index("downloaded realisdance")
        assert "the denoising will take about" in " ".join(done.stderr.split())  # --device cpu
        assert f"wrote {out / VIDEO}" in text and f"wrote {out / GRID}" in text
        assert_animated(out)
        assert not [path for path in file_gets(hub) if "/unet/diffusion" in path]  # not what animating needs
        cached = home / ".cache" / "realisdance" / "demo"
        assert {p.name: p.read_bytes() for p in cached.iterdir() if p.name != ".lock"} == {
            path.rsplit("/", 1)[1]: data for path, data in sequence.items()
        }

        asked = len(hub.requests)
        again = rdance("demo", "--out", out, *QUICK)
        assert again.returncode == 0, again.stderr
        assert hub.requests[asked:] == []  # everything is there: the hub is not even asked
    assert "the full demo downloads" not in again.stdout
    assert f"replacing the previous demo's {VIDEO}, {GRID}" in " ".join(again.stdout.split())
    assert_animated(out)
    assert not list(out.glob(".*partial*"))


def test_a_damaged_demo_file_is_refused_and_the_next_run_fetches_only_what_is_missing(
    animator_weights: Path,
    home: Path,
    sequence: dict[str, bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = tmp_path / "weights"
    root.mkdir()
    for entry in animator_weights.iterdir():
        (root / entry.name).symlink_to(entry.resolve())
    hamer = next(path for path in sequence if path.endswith("hamer_1.mp4"))
    cut = {**sequence, hamer: sequence[hamer][: len(sequence[hamer]) // 3]}  # a video cut short
    args = ("demo", "--out", tmp_path / "out", "--weights", root, *QUICK)
    with HubServer({}, plain=cut) as hub:
        serve(hub, monkeypatch)
        done = rdance(*args)
    assert_user_error(done, "hamer_1.mp4 was downloaded but is not usable", "run the command again")
    kept = sorted(p.name for p in (root / "demo").iterdir() if p.name != ".lock")
    assert kept == ["dwpose_1.pkl", "ref.png"]  # the files before it stay; nothing half-written
    with HubServer({}, plain=sequence) as hub:
        serve(hub, monkeypatch)
        done = rdance(*args)
        assert done.returncode == 0, done.stderr
        fetched = sorted(path.rsplit("/", 1)[1] for path in file_gets(hub))
    assert fetched == ["hamer_1.mp4", "smpl_1.mp4"]
    assert_animated(tmp_path / "out")


def closed_port() -> str:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{free.getsockname()[1]}"


@pytest.mark.parametrize("offline", ["HF_HUB_OFFLINE", "no hub"])
def test_offline_the_demo_does_what_needs_no_download(
    offline: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if offline == "HF_HUB_OFFLINE":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.setenv("HF_ENDPOINT", closed_port())  # as `make demo` on a machine without network
    out = tmp_path / "out"
    done = rdance("demo", "--out", out)
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "HF_HUB_OFFLINE is set" in text if offline == "HF_HUB_OFFLINE" else "cannot be reached" in text
    assert FrameSource(out / "demo_dancer.rdance" / "dwpose.mp4").info.frame_count == 48
    assert all((out / name).exists() for name in SKELETON)
    # The short doctor: one line per group of weight files with files missing, never one per file.
    groups = [line.split()[1].rstrip(":") for line in done.stdout.splitlines() if line.startswith("weights ")]
    assert groups == [group for group in weights.GROUPS if group not in weights.OPTIONAL_GROUPS]
    assert "run `rdance weights download realisdance`" in text
    assert (
        "The full demo would fetch the weights realisdance, base-model and dinov2 from the Hugging Face hub "
        "and the demo sequence (ref.png, dwpose_1.pkl, hamer_1.mp4 and smpl_1.mp4)"
    ) in text
    assert not (out / VIDEO).exists()


def test_wrong_options_are_refused_before_any_work(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before any file is written or fetched: a GPU that is not there was said after gigabytes
    of downloads."""
    done = rdance("demo", "--out", tmp_path / "out", "--size", "60x64")
    assert_user_error(done, "--size must be a multiple of 8")
    assert_user_error(
        rdance("demo", "--out", tmp_path / "out", "--max-frames", "-1"), "--max-frames must be 1"
    )
    with HubServer(hub_repos()) as hub:
        serve(hub, monkeypatch)
        no_gpu = rdance("demo", "--out", tmp_path / "out", "--yes", "--device", "cuda:99")
        assert_user_error(no_gpu, "--device cuda:99 was asked for")
        assert hub.requests == []
    assert not (tmp_path / "out").exists()
