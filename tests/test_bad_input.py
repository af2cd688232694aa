"""Bad input gets one sentence and exit code 2, never a traceback, and options are checked before
any work (each case here printed a traceback, or a misleading sentence, before)."""

from __future__ import annotations

import json
import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import GOLDEN, assert_user_error, need, rdance, write_video

from realisdance_cli.errors import UserError
from realisdance_cli.original import import_dwpose_pkl, save_dwpose_pkl
from realisdance_cli.synthetic import dancer_pkl_frames
from realisdance_cli.track import STREAMS, Stream, Track
from realisdance_cli.training.data import read_manifest


@pytest.fixture
def track(tmp_path: Path) -> Path:
    save_dwpose_pkl(tmp_path / "dance.pkl", dancer_pkl_frames(8, 128, 96))
    return import_dwpose_pkl(tmp_path / "dance.pkl", tmp_path / "dance.rdance", fps=24).path


@pytest.mark.parametrize("damage", ["truncated", "bit-flipped"])
def test_a_damaged_track_file_is_named_by_every_command(track: Path, tmp_path: Path, damage: str) -> None:
    data = (track / "dwpose.npz").read_bytes()
    middle = len(data) // 3
    broken = (
        data[: len(data) // 2]
        if damage == "truncated"
        else data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1 :]
    )
    (track / "dwpose.npz").write_bytes(broken)
    for args in (
        ("track", "info", track),
        ("render-poses", track, "--out", tmp_path / "poses"),
        ("track", "export", track, "--out", tmp_path / "back.pkl"),
    ):
        assert_user_error(rdance(*args), f"{track / 'dwpose.npz'} is damaged")
    assert not (tmp_path / "poses").exists() and not (tmp_path / "back.pkl").exists()


def _npz_of_one_array(path: Path, shape: tuple[int, ...], data: bytes, repeat: int = 1) -> Path:
    """An .npz whose `offsets` array declares `shape` (float64) and holds `data` * `repeat`,
    deflated and written a piece at a time."""
    import io
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": shape})
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("offsets.npy", "w", force_zip64=True) as member,
    ):
        member.write(header.getvalue())
        for _ in range(repeat):
            member.write(data)
    return path


def test_an_npz_that_would_take_far_more_memory_than_its_file_is_refused(tmp_path: Path) -> None:
    """A 17 KB array header declaring 10^12 entries asked for 8 TB; 4 MB of zeros deflated from
    4 GB took them (`track info` of such a track: 8 GB and a minute)."""
    from realisdance_cli.files import load_npz

    declared = _npz_of_one_array(tmp_path / "declared.npz", (10**12,), bytes(16))
    said = r"declared\.npz is damaged \(offsets\.npy declares 8000000000000 bytes but holds"
    with pytest.raises(UserError, match=said):
        load_npz(declared)
    zeros = _npz_of_one_array(tmp_path / "zeros.npz", (2**25 + 2**20,), bytes(1 << 20), repeat=2**8 + 2**3)
    assert zeros.stat().st_size < 2 << 20
    with pytest.raises(UserError, match=r"zeros\.npz is damaged \(offsets\.npy expands \d+ bytes into 27682"):
        load_npz(zeros)


@pytest.mark.parametrize("fps", ["nan", "inf", "1e-09"])
def test_frame_rates_must_be_real_rates(track: Path, tmp_path: Path, fps: str) -> None:
    pkl = tmp_path / "dance.pkl"
    for args in (
        ("render-poses", track, "--fps", fps, "--out", tmp_path / "poses"),
        ("track", "import", pkl, "--fps", fps, "--out", tmp_path / "again.rdance"),
        ("extract", tmp_path, "--fps", fps, "--only", "dwpose", "--out", tmp_path / "x.rdance"),
    ):
        assert_user_error(rdance(*args), "--fps must be between 0.01 and 1000", f"got {float(fps)}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dance.pkl", "dance.rdance"]


def test_sizes_are_bounded_and_said_as_given(track: Path, tmp_path: Path) -> None:
    done = rdance("render-poses", track, "--size", "100000x100000", "--out", tmp_path / "poses")
    assert_user_error(done, "--size must be between 2x2 and 8192x8192")
    assert_user_error(rdance("render-poses", track, "--size", "7x9", "--out", tmp_path / "poses"), "got 7x9")
    assert not (tmp_path / "poses").exists()


def test_an_unfinished_stream_is_said_not_skipped(track: Path) -> None:
    opened = Track.open(track)
    hand = {name: np.zeros((0, *spec.shape)) for name, spec in STREAMS["mano"].items()}
    opened.begin("mano", weights={}, options={})
    opened.append("mano", Stream.from_frames("mano", [hand] * 3))  # 3 of 8 frames
    done = rdance("render-poses", track)
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stderr.split())
    assert "hamer.mp4 is not written: the mano stream is unfinished (3 of 8 frames)" in said
    assert (track / "dwpose.mp4").is_file() and not (track / "hamer.mp4").exists()


@pytest.mark.parametrize("value", [1e300, -np.inf, 3e9])
def test_a_track_point_far_outside_the_picture_is_damage(track: Path, tmp_path: Path, value: float) -> None:
    """render-poses failed in OpenCV (a TypeError, or NaN to an integer) on such a stream, and
    export wrote a .pkl that import then refused."""
    opened = Track.open(track)
    state, stream = opened.state("dwpose"), opened.load("dwpose")
    stream.fields["keypoints"][3, 95] = value  # a left-hand point of the fourth person-frame
    opened.discard("dwpose")
    opened.begin("dwpose", weights=state.weights, options=state.options)
    opened.append("dwpose", stream)
    opened.finish("dwpose")
    for args in (
        ("render-poses", track, "--out", tmp_path / "poses"),
        ("track", "export", track, "--out", tmp_path / "back.pkl"),
    ):
        assert_user_error(rdance(*args), "frame sizes from the picture, which DWPose never finds")
    assert not (tmp_path / "poses").exists() and not (tmp_path / "back.pkl").exists()


def test_manifest_lines_that_are_not_objects_are_left_out(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text('[1, 2]\n"clip.mp4"\n{"dwpose": "x.mp4"}\n')
    with pytest.warns(UserWarning) as warned, pytest.raises(UserError, match="no usable entry"):
        read_manifest(manifest)
    said = [str(w.message) for w in warned]
    assert "manifest.jsonl:1 left out: a line must be a JSON object, this one is a list" in said[0]
    assert "manifest.jsonl:2 left out: a line must be a JSON object, this one is a str" in said[1]
    assert 'manifest.jsonl:3 left out: a line needs a "video" (or "image") path' in said[2]


@pytest.mark.slow
def test_options_are_checked_before_any_work(tmp_path: Path) -> None:
    """With no weights at all, a wrong option is what the user hears about, not the weights."""
    empty = tmp_path / "weights"
    empty.mkdir()
    picture = tmp_path / "ref.png"
    shutil.copy(need(GOLDEN / "dwpose" / "person_960x540.png"), picture)
    poses = tmp_path / "poses"
    for name in ("dwpose", "hamer", "smpl"):
        write_video(poses / f"{name}.mp4", [np.zeros((64, 64, 3), np.uint8)] * 2)
    animate = ("animate", picture, poses, "--weights", empty)
    assert_user_error(rdance(*animate, "--crf", "99"), "--crf", "got 99")
    assert_user_error(rdance(*animate, "--guidance", "nan"), "--guidance", "got nan")
    for size in ("8x8", "32x32"):
        assert_user_error(rdance(*animate, "--size", size), "at least 48x48", f"got {size}")
    assert_user_error(rdance(*animate, "--device", "banana"), "--device", "banana")
    assert_user_error(rdance(*animate, "--device", "mps"), "--device mps", "no Apple GPU")
    assert_user_error(rdance("animate", tmp_path, poses, "--weights", empty), f"{tmp_path} is a folder")
    extract = ("extract", picture, "--weights", empty, "--out", tmp_path / "x.rdance")
    assert_user_error(rdance(*extract, "--dtype", "fp8"), "--dtype")
    assert_user_error(rdance("doctor", "--weights", picture), "is a file; give a folder")
    assert not (tmp_path / "x.rdance").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["poses", "ref.png", "weights"]


def test_a_failure_before_the_first_frame_leaves_no_track(tmp_path: Path) -> None:
    picture = tmp_path / "ref.png"
    shutil.copy(need(GOLDEN / "dwpose" / "person_960x540.png"), picture)
    not_onnx = tmp_path / "det.onnx"
    not_onnx.write_bytes(b"this is not a network")
    done = rdance(
        "extract", picture, "--only", "dwpose", "--dwpose-det", not_onnx,
        "--dwpose-pose", need(GOLDEN / "dwpose" / "dwpose_tiny.onnx"),
    )  # fmt: skip
    assert_user_error(done, "not a usable ONNX model")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["det.onnx", "ref.png"]


@pytest.mark.slow
def test_a_network_too_small_for_the_size_is_said_before_denoising(tmp_path: Path) -> None:
    """The tiny golden network at 64x64 with one-frame windows and no guidance batch would
    normalise single values in its deepest layer."""
    golden = need(GOLDEN / "animator")
    root = tmp_path / "weights"
    for relative, target in {
        "realisdance/stage_2_hamer_release.ckpt": golden / "realisdance_tiny.ckpt",
        "base/rv51/unet": golden / "tiny_sd" / "unet",
        "base/rv51/vae": golden / "tiny_sd" / "vae",
        "base/rv51/scheduler": golden / "tiny_sd" / "scheduler",
        "dinov2-large": golden / "tiny_dinov2",
    }.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).symlink_to(target)
    picture = tmp_path / "ref.png"
    shutil.copy(need(GOLDEN / "dwpose" / "person_960x540.png"), picture)
    for name in ("dwpose", "hamer", "smpl"):
        write_video(tmp_path / "poses" / f"{name}.mp4", [np.zeros((64, 64, 3), np.uint8)] * 2)
    common = ("animate", picture, tmp_path / "poses", "--weights", root, "--size", "64x64", "--steps", "1")
    done = rdance(*common, "--guidance", "1", "--context", "1", "--overlap", "0", "--stride", "1")
    assert_user_error(done, "deepest layer would normalise single values")
    assert not list(tmp_path.glob("*.mp4"))


def _network_file(path: Path, metadata: dict[str, str] | None) -> Path:
    import torch
    from safetensors.torch import save_file

    save_file({"pose_guider.conv_in.weight": torch.zeros(2, 2)}, str(path), metadata=metadata)
    return path


@pytest.mark.parametrize(
    "damage", ["truncated", "foreign metadata", "no config", "config not JSON", "config without a width"]
)
def test_a_damaged_or_foreign_network_file_is_one_sentence(tmp_path: Path, damage: str) -> None:
    """`rdance animate --checkpoint x.safetensors` reads the file's metadata, then its tensors."""
    import json

    from realisdance_cli.animator.checkpoint import FORMAT, load_network

    config = json.dumps({"unet": {}, "token_width": 48})
    metadata = {
        "truncated": {"format": FORMAT, "config": config},
        "foreign metadata": {"format": "something-else"},
        "no config": {"format": FORMAT},
        "config not JSON": {"format": FORMAT, "config": "{unet"},
        "config without a width": {"format": FORMAT, "config": json.dumps({"unet": {}})},
    }[damage]
    path = _network_file(tmp_path / "net.safetensors", metadata)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(UserError) as caught:
        load_network(path)
    message = str(caught.value)
    assert message.startswith(f"{path} is not a usable RealisDance checkpoint: ") and "\n" not in message
    if damage != "truncated":
        assert "rdance train" in message


@pytest.mark.parametrize("stage", [1, 2])
def test_a_damaged_stage1_or_base_unet_file_is_one_sentence(tmp_path: Path, stage: int) -> None:
    """`rdance train --stage1 x.safetensors`, and stage 1 from a damaged base UNet download."""
    from realisdance_cli.training.job import TrainJob, build_network
    from realisdance_cli.training.loop import TrainOptions

    root = tmp_path / "weights"
    base = root / "base/rv51/unet/diffusion_pytorch_model.safetensors"
    broken = tmp_path / "stage1.safetensors" if stage == 2 else base
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_bytes((12).to_bytes(8, "little") + b'{"a": [1, 2')  # a header cut short
    job = TrainJob(
        tmp_path / "manifest.jsonl",
        tmp_path / "run",
        TrainOptions(stage=stage),
        weights_root=root,
        stage1=broken if stage == 2 else None,
        motion=tmp_path / "mm.ckpt",
    )
    with pytest.raises(UserError) as caught:
        build_network(job, {}, 48, root)
    message = str(caught.value)
    assert message.startswith(f"{broken} is not ") and "not a readable safetensors file" in message
    remedy = "`rdance weights download" if stage == 1 else "rdance train --stage 1"
    assert remedy in message and "\n" not in message


def _png_header(width: int, height: int) -> bytes:
    """A PNG of `width` x `height` RGB pixels as its header declares them, with no pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def test_every_picture_reader_says_the_same(tmp_path: Path) -> None:
    """The reference picture (animate, demo) and image sources (extract, render) share one reader."""
    import cv2
    from PIL import Image

    from realisdance_cli.pictures import picture_pixels, read_picture
    from realisdance_cli.video import FrameSource

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG broken")
    sentences = set()
    for read in (read_picture, picture_pixels, FrameSource):
        with pytest.raises(UserError) as caught:
            read(broken)
        sentences.add(str(caught.value))
    assert sentences == {f"{broken} is not an image OpenCV can read (use PNG or JPEG)."}
    with pytest.raises(UserError, match="is a folder; give the reference picture itself"):
        read_picture(tmp_path, "the reference picture")
    with pytest.raises(UserError, match="does not exist"):
        read_picture(tmp_path / "missing.png")
    huge = tmp_path / "huge.png"  # only a header declaring 20000 x 20000: refused before decoding
    huge.write_bytes(_png_header(20_000, 20_000))
    with pytest.raises(UserError, match=r"huge\.png is a picture of more than 150 megapixels; scale it down"):
        read_picture(huge)
    os.mkfifo(tmp_path / "pipe.png")  # said, not read: reading it would wait for a writer forever
    with pytest.raises(UserError, match=r"pipe.png is not a regular file \(a pipe or a device\)"):
        read_picture(tmp_path / "pipe.png", "the reference picture")
    turned = tmp_path / "turned.jpg"  # EXIF orientation 6: shown turned a quarter clockwise
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :10] = 255
    exif = Image.new("RGB", (1, 1)).getexif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(turned, exif=exif.tobytes(), quality=95)
    shown = read_picture(turned)
    assert shown.shape == (40, 20, 3) and shown.dtype == np.uint8
    assert shown[:8].mean() > 200 and shown[-8:].mean() < 50  # the stored left band is now on top
    np.testing.assert_array_equal(shown, next(iter(FrameSource(turned))))
    np.testing.assert_array_equal(shown, cv2.imread(str(turned))[:, :, ::-1])


def test_files_that_cannot_be_read_are_one_sentence(tmp_path: Path) -> None:
    """ONNX models, pickles and image frames: the same sentence when the bytes cannot be read."""
    from realisdance_cli.extractors.onnx_session import open_session
    from realisdance_cli.safe_pickle import restricted_load

    folder = tmp_path / "model.onnx"
    folder.mkdir()
    for read in (open_session, restricted_load):
        with pytest.raises(UserError, match=f"^cannot read {folder}: Is a directory.$"):
            read(folder)


def test_a_folder_given_as_a_weight_file_is_one_sentence(tmp_path: Path) -> None:
    folder = tmp_path / "adir"
    folder.mkdir()
    video = write_video(tmp_path / "clip.mp4", np.zeros((2, 32, 32, 3), np.uint8))
    pose = tmp_path / "pose.onnx"
    pose.write_bytes(b"onnx")
    done = rdance("extract", video, "--only", "dwpose", "--dwpose-det", folder, "--dwpose-pose", pose)
    assert_user_error(done, f"{folder} is a folder; give the file of")


def test_a_video_where_a_pose_file_belongs_says_to_extract_it(tmp_path: Path) -> None:
    video = write_video(tmp_path / "dance.mp4", np.zeros((2, 32, 32, 3), np.uint8))
    for args in (("render-poses", video), ("track", "import", video)):
        assert_user_error(rdance(*args), f"{video} is not a DWPose .pkl", f"rdance extract {video}")


def test_track_import_of_another_file_suggests_extract_only_for_a_video_or_picture(tmp_path: Path) -> None:
    """`track import` takes a DWPose .pkl alone (no folder); extract is suggested only for what it
    reads, quoted to paste."""
    picture = tmp_path / "my ref.png"
    picture.write_bytes(b"not really a picture")
    done = rdance("track", "import", picture)
    assert_user_error(
        done,
        f"{picture} is not a DWPose .pkl; for a picture, `rdance extract '{picture}'` makes its pose track.",
    )
    assert "folder" not in done.stderr
    checkpoint = tmp_path / "hamer.ckpt"
    checkpoint.write_bytes(b"weights")
    done = rdance("track", "import", checkpoint)
    assert_user_error(done, f"{checkpoint} is not a DWPose .pkl.")
    assert "extract" not in done.stderr


def test_a_missing_pose_file_is_said_to_be_missing(tmp_path: Path) -> None:
    assert_user_error(
        rdance("render-poses", tmp_path / "nothere.pkl"), f"{tmp_path / 'nothere.pkl'} does not exist."
    )


def test_importing_over_an_extracted_track_says_what_force_would_lose(tmp_path: Path) -> None:
    """dance.pkl imports to dance.rdance by default, where `extract dance.mp4` put its track: --force
    would replace its SMPL-X and MANO streams with DWPose poses alone, so --out is what is offered."""
    save_dwpose_pkl(tmp_path / "dance.pkl", dancer_pkl_frames(2, 64, 48))
    track = import_dwpose_pkl(tmp_path / "dance.pkl", tmp_path / "dance.rdance")
    mano = Stream.from_frames("mano", [{}, {}])
    track.write("mano", mano, weights={}, options={})
    done = rdance("track", "import", tmp_path / "dance.pkl")
    assert_user_error(
        done, "holds MANO stream, which --force would lose", "import into another folder with --out."
    )
    assert "pass --force" not in done.stderr and Track.open(track.path).has("mano")


def test_extract_into_a_folder_of_the_user_s_is_refused_at_once_and_leaves_no_lock(tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.mp4", np.zeros((2, 32, 32, 3), np.uint8))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    weights = ("--only", "dwpose", "--dwpose-det", tmp_path / "d.onnx", "--dwpose-pose", tmp_path / "p.onnx")
    for force in ((), ("--force",)):
        done = rdance("extract", video, *weights, "--out", mine, *force)
        assert_user_error(
            done, f"{mine} exists and is not a pose track; it is never replaced: choose another --out."
        )
        assert sorted(path.name for path in mine.iterdir()) == ["notes.txt"]


def test_a_file_that_is_no_torch_checkpoint_says_what_it_is(tmp_path: Path) -> None:
    from realisdance_cli.state_dicts import read_weights

    empty = tmp_path / "empty.ckpt"
    empty.touch()
    foreign = tmp_path / "random.pkl"
    save_dwpose_pkl(foreign, dancer_pkl_frames(1, 32, 32))
    with pytest.raises(UserError, match=r"empty\.ckpt is not a network: it is empty"):
        read_weights(empty, "a network")
    with pytest.raises(UserError, match=r"random\.pkl is not a network: it is not the zip archive torch"):
        read_weights(foreign, "a network")


def test_retargeting_an_imported_pkl_track_says_to_extract_the_video(track: Path, tmp_path: Path) -> None:
    picture = tmp_path / "me.png"
    picture.write_bytes(b"not needed: the driver is refused first")
    done = rdance("retarget", track, picture, "--weights", tmp_path / "none")
    assert_user_error(done, "was imported from a DWPose .pkl, which holds no SMPL-X and MANO poses", "VIDEO")


def damaged_meta(meta: dict, damage: str) -> str:
    """meta.json's text with one value damaged as a reviewer found it (each gave a traceback)."""
    if damage == "deeply nested":
        return "[" * 100_000 + "]" * 100_000
    changes = {
        "streams a list": lambda: meta.update(streams=[]),
        "fps 1/0": lambda: meta["source"].update(fps="1/0"),
        "size zero": lambda: meta["source"].update(width=0, height=0),
        "options a list": lambda: meta["streams"]["dwpose"].update(options=[1]),
    }
    changes[damage]()
    return json.dumps(meta)


@pytest.mark.parametrize(
    "damage", ["streams a list", "fps 1/0", "size zero", "options a list", "deeply nested"]
)
def test_a_damaged_meta_json_is_named_by_every_command(track: Path, tmp_path: Path, damage: str) -> None:
    meta = json.loads((track / "meta.json").read_text())
    (track / "meta.json").write_text(damaged_meta(meta, damage))
    for args in (
        ("track", "info", track),
        ("render-poses", track, "--out", tmp_path / "poses"),
        ("track", "export", track, "--out", tmp_path / "back.pkl"),
    ):
        assert_user_error(rdance(*args), f"{track / 'meta.json'} is damaged", "extract it again")
    assert not (tmp_path / "poses").exists() and not (tmp_path / "back.pkl").exists()


def prompted_val(root: Path, prompt: bytes) -> Path:
    """A one-video RealisDance-Val-shaped set whose prompt/0001.txt holds `prompt`."""
    for folder, name in (("smpl", "0001.mp4"), ("hamer", "0001.mp4"), ("gt", "0001.mp4")):
        write_video(root / folder / name, [np.zeros((16, 16, 3), np.uint8)] * 2)
    (root / "ref").mkdir()
    shutil.copy(need(GOLDEN / "dwpose" / "person_960x540.png"), root / "ref" / "0001.png")
    (root / "prompt").mkdir()
    (root / "prompt" / "0001.txt").write_bytes(prompt)
    return root


def test_a_prompt_file_that_is_not_utf8_is_one_sentence(tmp_path: Path) -> None:
    """A test set's prompt/<id>.txt in Latin-1 was a UnicodeDecodeError traceback (`--prompt-file`
    said it in a sentence already: both now read prompts in one place)."""
    val = prompted_val(tmp_path / "val", "café dance\n".encode("latin-1"))
    done = rdance("eval", "run", val, "--model", "dit", "--out", tmp_path / "out")
    assert_user_error(done, f"{val / 'prompt' / '0001.txt'} is not a UTF-8 text file")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text", ["", " \n\t\n\n"])
def test_an_empty_prompt_file_is_named(tmp_path: Path, text: str) -> None:
    """An empty --prompt-file, or a test set's empty prompt/<id>.txt, was told to give a --prompt
    (or, in a test set, that the video had none), never that the file was empty."""
    prompt = tmp_path / "prompt.txt"
    prompt.write_text(text)
    reference = need(GOLDEN / "dwpose" / "person_960x540.png")
    done = rdance("animate", reference, tmp_path, "--model", "dit", "--prompt-file", prompt)
    assert_user_error(done, f"{prompt} is empty; write the prompt describing the video in it.")
    val = prompted_val(tmp_path / "val", text.encode())
    done = rdance("eval", "run", val, "--model", "dit", "--prompt", "a dance", "--out", tmp_path / "out")
    assert_user_error(done, f"{val / 'prompt' / '0001.txt'} is empty; write the prompt")
    assert not (tmp_path / "out").exists()


def test_an_sd_run_reads_no_prompt_file(tmp_path: Path) -> None:
    """Only RealisDance-DiT takes the test set's prompts: a broken prompt file stopped an SD run
    (here it goes on to the next thing missing, the weights)."""
    val = prompted_val(tmp_path / "val", "café dance\n".encode("latin-1"))
    (tmp_path / "no-weights").mkdir()
    done = rdance(
        "eval", "run", val, "--model", "sd", "--weights", tmp_path / "no-weights", "--out", tmp_path / "out"
    )
    assert_user_error(done, "missing weights")


def test_one_video_without_a_prompt_is_said_in_the_singular(tmp_path: Path) -> None:
    """It was "1 videos of ... have none"."""
    val = prompted_val(tmp_path / "val", b"a dance")
    shutil.rmtree(val / "prompt")
    done = rdance("eval", "run", val, "--model", "dit", "--out", tmp_path / "out")
    assert_user_error(done, f"RealisDance-DiT needs a prompt, and 1 video of {val} has none (0001)")
