"""The test sets `rdance eval run` reads: RealisDance-Val's folders, DisCo's TikTok TSV (decoded
once into the cache) and plain frame folders, built here as real files; and the `--shard` split."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import numbered_frames, write_video

from realisdance_cli.errors import UserError
from realisdance_cli.evaluation.benchmarks import Sample, open_benchmark, parse_shard, shard
from realisdance_cli.video import read_frames


def write_image(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), rgb[:, :, ::-1])
    return path


def picture(seed: int, height: int = 12, width: int = 10) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny real video, copied wherever a set needs one."""
    return write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", numbered_frames(2, 16, 16))


def realisdance_val(root: Path, clip: Path, ids: list[str], truth: str = "gt") -> Path:
    for number, name in enumerate(ids):
        write_image(root / "ref" / f"{name}.{'png' if number % 2 == 0 else 'jpg'}", picture(number))
        for folder in ("smpl", "hamer", truth):
            (root / folder).mkdir(parents=True, exist_ok=True)
            shutil.copy(clip, root / folder / f"{name}.mp4")
    return root


def test_realisdance_val(tmp_path, clip):
    root = realisdance_val(tmp_path / "val", clip, ["0002", "0001"])
    (root / "prompt").mkdir()
    (root / "prompt" / "0001.txt").write_text("A woman dances \n  in a red dress.\n\n", encoding="utf-8")
    (root / "prompt" / "0002.txt").write_text("One line", encoding="utf-8")
    (root / "ref" / "notes.txt").write_text("not a picture")
    (root / "smpl" / "0099.mp4").write_bytes(clip.read_bytes())  # a pose video without a reference
    cache = tmp_path / "cache"

    benchmark = open_benchmark(root, cache)

    assert benchmark.kind == "realisdance-val"
    assert benchmark.root == root
    assert benchmark.samples == [
        Sample(
            name="0001",
            truth=root / "gt" / "0001.mp4",
            reference=root / "ref" / "0001.jpg",
            smpl=root / "smpl" / "0001.mp4",
            hamer=root / "hamer" / "0001.mp4",
            prompt="A woman dancesin a red dress.",  # lines stripped and joined, as inference.py does
        ),
        Sample(
            name="0002",
            truth=root / "gt" / "0002.mp4",
            reference=root / "ref" / "0002.png",
            smpl=root / "smpl" / "0002.mp4",
            hamer=root / "hamer" / "0002.mp4",
            prompt="One line",
        ),
    ]
    assert not cache.exists()


def test_realisdance_val_truth_in_video_folder_without_prompts(tmp_path, clip):
    root = realisdance_val(tmp_path / "val", clip, ["0007"], truth="video")
    [sample] = open_benchmark(root, tmp_path / "cache").samples
    assert sample == Sample(
        name="0007",
        truth=root / "video" / "0007.mp4",
        reference=root / "ref" / "0007.png",
        smpl=root / "smpl" / "0007.mp4",
        hamer=root / "hamer" / "0007.mp4",
        prompt=None,
    )


def test_prompts_are_neither_checked_nor_read_for_a_model_without_them(tmp_path, clip):
    """SD-1.5 takes no prompt: a set whose prompt files are broken or missing is listed as it is
    for the DiT without prompts, where they stopped the run before."""
    root = realisdance_val(tmp_path / "val", clip, ["0001", "0002"])
    (root / "prompt").mkdir()
    (root / "prompt" / "0001.txt").write_bytes("café\n".encode("latin-1"))  # and 0002 has none
    samples = open_benchmark(root, tmp_path / "cache", prompts=False).samples
    assert [(sample.name, sample.prompt) for sample in samples] == [("0001", None), ("0002", None)]
    with pytest.raises(UserError, match=r"0002 has no prompt/<id>\.txt"):
        open_benchmark(root, tmp_path / "cache")


def test_partial_realisdance_val_names_the_ids(tmp_path, clip):
    root = realisdance_val(tmp_path / "val", clip, ["0001", "0002", "0003", "0004"])
    (root / "smpl" / "0002.mp4").unlink()
    (root / "smpl" / "0004.mp4").unlink()
    (root / "gt" / "0003.mp4").unlink()
    (root / "prompt").mkdir()
    for name in ("0001", "0002", "0003"):
        (root / "prompt" / f"{name}.txt").write_text("dance")
    with pytest.raises(UserError) as caught:
        open_benchmark(root, tmp_path / "cache")
    assert str(caught.value) == (
        f"RealisDance-Val {root} is incomplete: 0002, 0004 have no smpl/<id>.mp4; "
        "0003 has no gt/<id>.mp4; 0004 has no prompt/<id>.txt."
    )

    shutil.rmtree(root / "gt")
    with pytest.raises(
        UserError, match=r"RealisDance-Val needs its ground-truth videos in .*gt \(<id>\.mp4\)"
    ):
        open_benchmark(root, tmp_path / "cache")


def encoded(rgb: np.ndarray, suffix: str) -> bytes:
    ok, data = cv2.imencode(suffix, rgb[:, :, ::-1])
    assert ok
    return base64.b64encode(data.tobytes())


def write_table(path: Path, rows: list[tuple[str, bytes]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(key.encode() + b"\t" + data + b"\n" for key, data in rows))
    return path


def test_disco_table_decoded_once(tmp_path):
    videos = enumerate(["00001", "00002"])
    images = {(video, frame): picture(10 * index + frame) for index, video in videos for frame in (2, 9, 10)}
    jpeg = picture(99, 16, 16)
    rows = [
        (f"TiktokDance_{video}_{frame}.png", encoded(rgb, ".png")) for (video, frame), rgb in images.items()
    ]
    rows.insert(1, rows.pop(2))  # frames need not be in order within a video
    rows.append(("TiktokDance_203_006_1x1_00348.jpg", encoded(jpeg, ".jpg")))  # DisCo's self-collected keys
    table = write_table(tmp_path / "TiktokDance" / "new10val_images.tsv", rows)
    (tmp_path / "TiktokDance" / "new10val_poses.tsv").write_text("not images\n")
    cache = tmp_path / "cache"

    benchmark = open_benchmark(tmp_path / "TiktokDance", cache)  # the folder holding the table

    assert benchmark.kind == "disco-tiktok"
    assert benchmark.root == table
    [folder] = cache.iterdir()
    assert folder.name.startswith("new10val_images-")
    assert [sample.name for sample in benchmark.samples] == ["00001", "00002", "203_006_1x1"]
    for sample in benchmark.samples:
        assert sample.truth == folder / sample.name
        assert (sample.smpl, sample.hamer, sample.prompt) == (None, None, None)
    first, second, collected = benchmark.samples
    assert sorted(p.name for p in first.truth.iterdir()) == ["10.png", "2.png", "9.png"]
    assert first.reference == folder / "00001" / "2.png"  # the first frame by number, not by text
    for (video, frame), rgb in images.items():
        assert np.array_equal(read_frames(folder / video / f"{frame}.png")[0], rgb)
    assert [frame.tolist() for frame in read_frames(second.truth)] == [
        images["00002", frame].tolist() for frame in (2, 9, 10)
    ]
    original = tmp_path / "original.jpg"
    original.write_bytes(base64.b64decode(rows[-1][1]))
    assert collected.reference == folder / "203_006_1x1" / "00348.png"
    assert np.array_equal(read_frames(collected.reference)[0], read_frames(original)[0])  # kept losslessly

    def times() -> dict[Path, int]:
        return {path: path.stat().st_mtime_ns for path in folder.rglob("*") if path.name != ".lock"}

    before = times()
    assert open_benchmark(table, cache) == benchmark  # the table named directly
    assert times() == before

    # An interrupted run (no index) keeps the videos it finished and decodes only the others.
    (folder / "index.json").unlink()
    shutil.rmtree(folder / "00002")
    assert open_benchmark(table, cache) == benchmark
    after = times()
    assert {
        path: after[path] for path in before if "00002" not in path.parts and path.name != "index.json"
    } == {
        path: time for path, time in before.items() if "00002" not in path.parts and path.name != "index.json"
    }
    assert sorted(p.name for p in (folder / "00002").iterdir()) == ["10.png", "2.png", "9.png"]


def test_disco_table_refused(tmp_path):
    good = encoded(picture(1), ".png")
    bad = write_table(
        tmp_path / "a" / "bad_images.tsv", [("TiktokDance_00001_0001.png", good), ("cover.png", good)]
    )
    with pytest.raises(UserError, match=r"bad_images\.tsv line 2: 'cover\.png' is not a frame key"):
        open_benchmark(bad, tmp_path / "cache")

    apart = [("TiktokDance_00001_0001.png", good), ("TiktokDance_00002_0001.png", good)]
    apart.append(("TiktokDance_00001_0002.png", good))
    table = write_table(tmp_path / "b" / "apart_images.tsv", apart)
    with pytest.raises(UserError, match="frames of video 00001 are not on consecutive lines"):
        open_benchmark(table, tmp_path / "cache")

    table = write_table(
        tmp_path / "c" / "noise_images.tsv", [("TiktokDance_00001_0001.png", b"@@not base64@@")]
    )
    with pytest.raises(UserError, match=r"noise_images\.tsv line 1: the image is not base64"):
        open_benchmark(table, tmp_path / "cache")

    write_table(tmp_path / "two" / "train_images.tsv", apart)
    write_table(tmp_path / "two" / "val_images.tsv", apart)
    with pytest.raises(UserError, match=r"several DisCo image tables \(train_images\.tsv, val_images\.tsv\)"):
        open_benchmark(tmp_path / "two", tmp_path / "cache")


def test_frame_folders(tmp_path):
    root = tmp_path / "TikTok_dataset"
    for frame in (10, 2, 1):
        write_image(root / "00335" / "images" / f"{frame:04d}.png", picture(frame))
        write_image(root / "00336" / f"{frame}.png", picture(frame))
    write_image(root / "00335" / "masks" / "0001.png", picture(0))
    cache = tmp_path / "cache"

    benchmark = open_benchmark(root, cache)

    assert benchmark.kind == "frames"
    assert benchmark.samples == [
        Sample("00335", root / "00335" / "images", root / "00335" / "images" / "0001.png"),
        Sample("00336", root / "00336", root / "00336" / "1.png"),
    ]
    assert not cache.exists()

    (root / "notes").mkdir()
    with pytest.raises(UserError, match="notes hold no frames"):
        open_benchmark(root, cache)


def test_nothing_to_read(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"empty is not a test set: expected RealisDance-Val \(ref/"):
        open_benchmark(tmp_path / "empty", tmp_path / "cache")
    with pytest.raises(UserError, match="does not exist"):
        open_benchmark(tmp_path / "missing", tmp_path / "cache")
    (tmp_path / "ref").mkdir()
    with pytest.raises(UserError, match="holds no reference pictures"):
        open_benchmark(tmp_path, tmp_path / "cache")


def test_shards_partition_the_samples():
    samples = [Sample(f"{index:04d}", Path(f"{index}.mp4"), Path(f"{index}.png")) for index in range(11)]
    for count in (1, 3, 4, 11, 15):
        shards = [shard(samples, index, count) for index in range(count)]
        assert shards == [shard(samples, index, count) for index in range(count)]
        assert sorted(s.name for part in shards for s in part) == [s.name for s in samples]
        assert sum(len(part) for part in shards) == len(samples)  # no sample twice
        assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert [s.name for s in shard(samples, 1, 4)] == ["0001", "0005", "0009"]
    for index, count in ((4, 4), (-1, 4), (0, 0)):
        with pytest.raises(ValueError):
            shard(samples, index, count)


def test_parse_shard():
    assert parse_shard("1/4") == (0, 4)
    assert parse_shard("4/4") == (3, 4)
    assert parse_shard(" 2 / 3 ") == (1, 3)
    for text in ("0/4", "5/4", "a/b", "1/0", "3", "", "1/4/2", "-1/4"):
        with pytest.raises(UserError, match=r"--shard takes i/n with 1 <= i <= n \(for example 1/4\)"):
            parse_shard(text)
