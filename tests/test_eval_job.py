"""`rdance eval`'s job in this process: what it reports, what it reuses and what it measures again
(other paths, other metrics, replaced weights, a damaged record, --force), and which paths are
videos. Tiny random videos, LPIPS with random weights of its released structure."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import GOLDEN, need, numbered_frames, write_video
from eval_models import LPIPS_HEADS, write_lpips

from realisdance_cli.errors import UserError
from realisdance_cli.evaluation import inputs, job, run
from realisdance_cli.evaluation.features import FeatureNetworks
from realisdance_cli.evaluation.job import EvalOptions, evaluate


def noisy(frames: list[np.ndarray], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.clip(f + rng.normal(0, 20, f.shape), 0, 255).astype(np.uint8) for f in frames]


@pytest.fixture
def videos(tmp_path: Path) -> Path:
    """truth/ and ours/ with two 3-frame videos each, a.mp4 and b.mp4."""
    for name, count in (("a", 3), ("b", 4)):
        frames = numbered_frames(count)
        write_video(tmp_path / "truth" / f"{name}.mp4", frames)
        write_video(tmp_path / "ours" / f"{name}.mp4", noisy(frames, count))
    return tmp_path


@pytest.fixture(scope="module")
def lpips_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lpips-weights")
    torch.manual_seed(0)
    write_lpips(root)
    return root


def stamps(out: Path) -> dict[Path, int]:
    return {path: path.stat().st_mtime_ns for path in sorted((out / "records").rglob("*.npz"))}


def test_progress_counts_each_video_once(videos: Path) -> None:
    reported: list[tuple[str, int, int | None]] = []
    evaluate(
        [videos / "ours"],
        videos / "truth",
        videos / "out",
        EvalOptions(metrics=["ssim"]),
        progress=lambda task, done, total: reported.append((task, done, total)),
    )
    assert [r for r in reported if r[0] == "scoring videos"] == [
        ("scoring videos", 0, 2),
        ("scoring videos", 1, 2),
        ("scoring videos", 2, 2),
    ]
    assert [r for r in reported if r[0] == "making the tables"][-1] == ("making the tables", 1, 1)


def test_other_paths_to_the_same_videos_and_other_metrics_reuse_the_records(
    videos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(videos)
    ssim = EvalOptions(metrics=["ssim"])
    first = evaluate([Path("ours")], Path("truth"), Path("out"), ssim)
    measured = stamps(videos / "out")
    assert len(measured) == 4  # two truths, two generated videos
    table = (videos / "out" / "scores.json").stat().st_mtime_ns

    assert evaluate([videos / "ours"], videos / "truth", videos / "out", ssim) == first
    assert stamps(videos / "out") == measured
    assert (videos / "out" / "scores.json").stat().st_mtime_ns == table  # nothing new: the same table
    assert first["inputs"]["truth"] == str((videos / "truth").resolve())

    both = evaluate([Path("ours")], Path("truth"), Path("out"), EvalOptions(metrics=["ssim", "psnr"]))
    assert both["methods"]["ours"]["a"]["ssim"] == first["methods"]["ours"]["a"]["ssim"]
    assert both["methods"]["ours"]["a"]["psnr"] < 30
    assert evaluate([Path("ours")], Path("truth"), Path("out"), ssim) == first
    after = stamps(videos / "out")
    assert evaluate([Path("ours")], Path("truth"), Path("out"), EvalOptions(metrics=["psnr"]))["methods"] == {
        "ours": {name: {"psnr": columns["psnr"]} for name, columns in both["methods"]["ours"].items()}
    }
    assert stamps(videos / "out") == after  # psnr was measured with ssim: nothing measured again

    (videos / "theirs").mkdir()
    for name in ("a", "b"):
        (videos / "theirs" / f"{name}.mp4").symlink_to(videos / "ours" / f"{name}.mp4")
    with pytest.raises(UserError) as refused:
        evaluate([Path("theirs")], Path("truth"), Path("out"), ssim)
    assert str(refused.value) == (
        f"out holds the evaluation of other videos (generated.ours {json.dumps(str(videos / 'ours'))} "
        f"(now absent); generated.theirs absent (now {json.dumps(str(videos / 'theirs'))})); pass --force "
        "to replace it, or choose another --out."
    )


def test_replaced_weights_are_measured_again(lpips_weights: Path, tmp_path: Path) -> None:
    """LPIPS is linear in its heads: heads three times as large, three times the distance."""
    frames = numbered_frames(1, 32, 32)
    truth = write_video(tmp_path / "truth.mp4", frames)
    ours = write_video(tmp_path / "ours.mp4", noisy(frames, 1))
    root = tmp_path / "weights"
    (root / "eval").mkdir(parents=True)
    (root / "eval" / "auxiliary").symlink_to(lpips_weights / "eval" / "auxiliary")
    heads = torch.load(lpips_weights / LPIPS_HEADS, weights_only=True)
    torch.save(heads, root / LPIPS_HEADS)
    options = EvalOptions(metrics=["lpips"], weights_root=root)
    first = evaluate([ours], truth, tmp_path / "out", options)["methods"]["ours"]["overall"]["lpips"]
    torch.save({name: 3 * value for name, value in heads.items()}, root / LPIPS_HEADS)
    again = evaluate([ours], truth, tmp_path / "out", options)["methods"]["ours"]["overall"]["lpips"]
    assert first > 0 and again == pytest.approx(3 * first, rel=1e-5)


def test_a_damaged_record_is_measured_again_and_force_starts_over(videos: Path) -> None:
    options = EvalOptions(metrics=["ssim"])
    first = evaluate([videos / "ours"], videos / "truth", videos / "out", options)
    record = videos / "out" / "records" / "methods" / "ours" / "a.npz"
    record.write_bytes(record.read_bytes()[:100])
    with pytest.warns(UserWarning) as said:
        assert evaluate([videos / "ours"], videos / "truth", videos / "out", options) == first
    damaged = [str(w.message) for w in said if w.category is UserWarning]
    assert len(damaged) == 1, damaged
    assert re.fullmatch(
        rf"{re.escape(str(record))} is damaged \(.+\); its video is measured again\.", damaged[0]
    )
    measured = stamps(videos / "out")
    assert evaluate([videos / "ours"], videos / "truth", videos / "out", options, force=True) == first
    assert all(stamp > measured[path] for path, stamp in stamps(videos / "out").items())


def test_a_folder_holding_videos_and_a_picture_is_a_set_of_videos(tmp_path: Path) -> None:
    for name in ("a", "b"):
        write_video(tmp_path / "set" / f"{name}.mp4", numbered_frames(2))
    cv2.imwrite(str(tmp_path / "set" / "cover.png"), numbered_frames(1)[0])
    assert inputs.videos(tmp_path / "set", "GENERATED") == {
        "a": tmp_path / "set" / "a.mp4",
        "b": tmp_path / "set" / "b.mp4",
    }
    (tmp_path / "clip").mkdir()
    for index, frame in enumerate(numbered_frames(3)):
        cv2.imwrite(str(tmp_path / "clip" / f"{index}.png"), frame)
    assert inputs.videos(tmp_path / "clip", "TRUTH") == {"clip": tmp_path / "clip"}  # frames: one video


def test_the_same_generated_set_given_twice_is_refused(videos: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(videos)
    with pytest.raises(UserError, match=r"GENERATED .*ours is given twice \(as ours too\)"):
        inputs.method_names([Path("ours"), videos / "ours"])
    (videos / "other" / "ours").mkdir(parents=True)
    assert inputs.method_names([Path("ours"), videos / "other" / "ours"]) == {
        "ours": Path("ours"),
        "other/ours": videos / "other" / "ours",
    }


def test_a_frame_rewritten_in_place_changes_its_folders_digest(tmp_path: Path) -> None:
    folder = tmp_path / "clip"
    folder.mkdir()
    frames = numbered_frames(2)
    for index, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{index}.png"), frame)
    before = job.digest(folder)
    cv2.imwrite(str(folder / "1.png"), frames[0])  # the same file, new contents; the folder's time stays
    assert job.digest(folder) != before


def test_dinov2_loads_without_a_progress_bar(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "dinov2-large").symlink_to(need(GOLDEN / "animator" / "tiny_dinov2"))
    networks = FeatureNetworks(["identity"], tmp_path, "cpu")
    features = networks.dinov2(np.stack(numbered_frames(2)))
    assert features.shape[0] == 2
    assert "Loading weights" not in capfd.readouterr().err


def test_a_dinov2_config_of_a_hundred_million_layers_is_refused_before_it_is_built(tmp_path: Path) -> None:
    """Named in one sentence, as animate and train name it (it built layers for minutes, filling memory)."""
    folder = tmp_path / "dinov2-large"
    folder.mkdir()
    for path in need(GOLDEN / "animator" / "tiny_dinov2").iterdir():
        (folder / path.name).symlink_to(path)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").unlink()
    (folder / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 100_000_000}))
    said = f"cannot load {folder}, it is damaged (config.json says num_hidden_layers is 100000000, more than"
    with pytest.raises(UserError, match=f"^{re.escape(said)}"):
        FeatureNetworks(["identity"], tmp_path, "cpu").dinov2(np.stack(numbered_frames(2)))


def test_default_outputs_of_dot_and_dot_dot_are_named_by_their_folders(
    videos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(videos / "ours")
    assert job.default_out([Path(".")], Path("../truth")) == Path("ours_eval")
    assert run.default_out(Path(".."), "sd") == Path(f"{videos.name}_sd")
    assert inputs.method_names([Path(".."), Path(".")]) == {videos.name: Path(".."), "ours": Path(".")}


def write_frames(folder: Path, frames: list[np.ndarray], suffix: str = ".png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(frames):
        assert cv2.imwrite(str(folder / f"{index:04d}{suffix}"), frame)
    return folder


def test_frames_of_another_size_are_refused_before_any_work(tmp_path: Path) -> None:
    """From the pictures' headers, with their EXIF orientation: a frame stored on its side but
    shown upright is of the others' size."""
    from PIL import Image

    frames = numbered_frames(4, 40, 20)
    write_frames(tmp_path / "truth" / "clip", frames)
    ours = write_frames(tmp_path / "ours" / "clip", frames)
    cv2.imwrite(str(ours / "0003.png"), cv2.resize(frames[3], (24, 40)))
    out, options = tmp_path / "out", EvalOptions(metrics=["ssim"])
    with pytest.raises(UserError) as refused:
        evaluate([tmp_path / "ours"], tmp_path / "truth", out, options)
    assert str(refused.value) == (
        f"{ours / '0003.png'} is 24x40, but the first image is 20x40; all frames must have one size."
    )
    assert not out.exists()

    cv2.imwrite(str(ours / "0003.png"), frames[3])
    upright = Image.fromarray(np.ascontiguousarray(np.rot90(frames[2][:, :, ::-1])))  # 20 high, 40 wide
    exif = upright.getexif()
    exif[0x0112] = 6  # shown turned a quarter clockwise: 40 high, 20 wide again
    (ours / "0002.png").unlink()
    upright.save(ours / "0002.jpg", exif=exif, quality=100)
    ssim = evaluate([tmp_path / "ours"], tmp_path / "truth", out, options)["methods"]["ours"]["clip"]["ssim"]
    assert 0.9 < ssim < 1
