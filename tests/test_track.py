"""The pose-track store: ragged streams, atomic chunked writes, resuming, damage reports."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import rdance

from realisdance_cli.errors import UserError
from realisdance_cli.extraction import open_track
from realisdance_cli.files import save_npz
from realisdance_cli.track import SCHEMA_VERSION, STREAMS, SourceInfo, Stream, Track
from realisdance_cli.track_summary import Found
from realisdance_cli.video import FrameSource, Selection


def random_frames(kind: str, counts: list[int], seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    frames = []
    for count in counts:
        frame = {}
        for name, spec in STREAMS[kind].items():
            shape = (count, *spec.shape)
            frame[name] = rng.random(shape) > 0.5 if spec.dtype == "bool" else rng.normal(size=shape)
        frames.append(frame)
    return frames


def source(frames: int) -> SourceInfo:
    return SourceInfo(path="/videos/dance.mp4", sha256="0" * 64, width=640, height=480, frame_count=frames)


@pytest.mark.parametrize("kind", list(STREAMS))
def test_stream_from_frames_with_empty_frames(kind: str) -> None:
    counts = [1, 0, 3, 0, 2]
    frames = random_frames(kind, counts)
    stream = Stream.from_frames(kind, frames)
    assert stream.frame_count == 5
    assert list(stream.items_per_frame()) == counts
    for index, frame in enumerate(frames):
        got = stream.frame(index)
        for name, spec in STREAMS[kind].items():
            assert got[name].dtype == np.dtype(spec.dtype)
            assert np.array_equal(got[name], frame[name].astype(spec.dtype))


def test_stream_rejects_wrong_shapes_and_fields() -> None:
    frames = random_frames("dwpose", [2])
    frames[0]["keypoints"] = np.zeros((2, 133, 2))
    with pytest.raises(ValueError, match="keypoints must have shape"):
        Stream.from_frames("dwpose", frames)
    with pytest.raises(ValueError, match="needs fields"):
        Stream("dwpose", np.array([0, 0]), {})
    with pytest.raises(UserError, match="unknown stream 'openpose'; the streams are dwpose, smplx, mano"):
        Stream.from_frames("openpose", [])


def test_chunked_writes_resume_to_the_same_arrays(tmp_path: Path) -> None:
    counts = [1, 2, 0, 1, 1, 0, 0, 3, 1, 1]
    whole = Stream.from_frames("mano", random_frames("mano", counts))
    chunks = [Stream.from_frames("mano", random_frames("mano", counts)[i : i + 3]) for i in range(0, 10, 3)]
    options = {"batch": 8}

    track = Track.create(tmp_path / "a.rdance", source(10))
    assert track.begin("mano", weights={"hamer": "abc"}, options=options) == 0
    track.append("mano", chunks[0])
    track.append("mano", chunks[1])
    # A crash here: a fresh process opens the folder and carries on where the record says.
    resumed = Track.open(tmp_path / "a.rdance")
    assert resumed.state("mano").frames_done == 6
    assert not resumed.has("mano")
    assert resumed.begin("mano", weights={"hamer": "abc"}, options=options) == 6
    resumed.append("mano", chunks[2])
    resumed.append("mano", chunks[3])
    resumed.finish("mano")
    assert not (tmp_path / "a.rdance" / "mano.parts").exists()
    assert Track.open(tmp_path / "a.rdance").load("mano").equals(whole)


def test_chunk_written_but_not_recorded_is_redone(tmp_path: Path) -> None:
    frames = random_frames("dwpose", [1] * 6)
    track = Track.create(tmp_path / "t.rdance", source(6))
    track.begin("dwpose", weights={}, options={})
    track.append("dwpose", Stream.from_frames("dwpose", frames[:3]))
    # Simulate a crash between writing a chunk file and recording it in meta.json.
    stray = Stream.from_frames("dwpose", random_frames("dwpose", [2, 2, 2], seed=9))
    np.savez(tmp_path / "t.rdance" / "dwpose.parts" / "00000003.npz", offsets=stray.offsets, **stray.fields)
    track = Track.open(tmp_path / "t.rdance")
    assert track.begin("dwpose", weights={}, options={}) == 3
    track.append("dwpose", Stream.from_frames("dwpose", frames[3:]))
    assert track.finish("dwpose").equals(Stream.from_frames("dwpose", frames))


def test_other_weights_or_options_start_over(tmp_path: Path) -> None:
    track = Track.create(tmp_path / "t.rdance", source(4))
    track.begin("dwpose", weights={"dwpose-det": "a"}, options={"rgb": False})
    track.append("dwpose", Stream.from_frames("dwpose", random_frames("dwpose", [1, 1])))
    assert track.begin("dwpose", weights={"dwpose-det": "a"}, options={"rgb": True}) == 0
    assert not (tmp_path / "t.rdance" / "dwpose.parts").exists()


def test_finish_needs_every_frame(tmp_path: Path) -> None:
    track = Track.create(tmp_path / "t.rdance", source(4))
    track.begin("smplx", weights={}, options={})
    track.append("smplx", Stream.from_frames("smplx", random_frames("smplx", [1, 1])))
    with pytest.raises(ValueError, match="2 of 4"):
        track.finish("smplx")
    with pytest.raises(UserError, match="no finished smplx stream"):
        track.load("smplx")


def test_meta_json_records_source_and_streams(tmp_path: Path) -> None:
    track = Track.create(tmp_path / "t.rdance", source(2))
    track.write(
        "dwpose",
        Stream.from_frames("dwpose", random_frames("dwpose", [1, 0])),
        weights={"dwpose-det": "sha"},
        options={"rgb": False},
    )
    meta = json.loads((tmp_path / "t.rdance" / "meta.json").read_text())
    assert meta["schema_version"] == SCHEMA_VERSION
    assert meta["source"]["frame_count"] == 2 and meta["source"]["sha256"] == "0" * 64
    assert meta["streams"]["dwpose"] == {
        "frames_done": 2,
        "complete": True,
        "weights": {"dwpose-det": "sha"},
        "options": {"rgb": False},
    }
    assert not [p for p in (tmp_path / "t.rdance").iterdir() if p.name.startswith(".")]  # no temp files


def test_existing_output_is_protected(tmp_path: Path) -> None:
    Track.create(tmp_path / "t.rdance", source(1))
    with pytest.raises(UserError, match="--force"):
        Track.create(tmp_path / "t.rdance", source(1))
    Track.create(tmp_path / "t.rdance", source(1), overwrite=True)
    other = tmp_path / "precious"
    other.mkdir()
    (other / "thesis.tex").write_text("do not delete")
    with pytest.raises(UserError, match="not a pose track"):
        Track.create(other, source(1), overwrite=True)
    assert (other / "thesis.tex").exists()


def test_damaged_tracks_are_reported(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"no meta\.json"):
        Track.open(tmp_path)
    track = Track.create(tmp_path / "t.rdance", source(1))
    (track.path / "meta.json").write_text("{ not json")
    with pytest.raises(UserError, match="damaged"):
        Track.open(track.path)
    meta = {"schema_version": SCHEMA_VERSION + 1, "source": {}, "streams": {}}
    (track.path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="newer realisdance-cli"):
        Track.open(track.path)
    track = Track.create(tmp_path / "u.rdance", source(1))
    track.write("dwpose", Stream.from_frames("dwpose", random_frames("dwpose", [1])), weights={}, options={})
    (track.path / "dwpose.npz").write_bytes(b"garbage")
    with pytest.raises(UserError, match="is damaged"):
        Track.open(track.path).load("dwpose")


def test_default_path() -> None:
    assert Track.default_path(Path("/v/dance.mp4")) == Path("/v/dance.rdance")
    assert Track.default_path(Path("/v/frames")) == Path("/v/frames.rdance")
    assert Track.default_path(Path(".")) == Path.cwd().parent / f"{Path.cwd().name}.rdance"
    assert Track.default_path(Path("..")) == Path.cwd().parent.parent / f"{Path.cwd().parent.name}.rdance"


def test_a_part_without_frames_is_damage_not_an_endless_loop(tmp_path: Path) -> None:
    frames = random_frames("dwpose", [1] * 4)
    track = Track.create(tmp_path / "t.rdance", source(4))
    track.begin("dwpose", weights={}, options={})
    track.append("dwpose", Stream.from_frames("dwpose", frames[:2]))
    track.append("dwpose", Stream.from_frames("dwpose", frames[:0]))  # nothing to add: nothing written
    assert sorted(p.name for p in (track.path / "dwpose.parts").iterdir()) == ["00000000.npz"]
    track.append("dwpose", Stream.from_frames("dwpose", frames[2:]))
    nothing = Stream.from_frames("dwpose", random_frames("dwpose", [1])[:0])
    save_npz(track.path / "dwpose.parts" / "00000002.npz", {"offsets": nothing.offsets, **nothing.fields})
    with pytest.raises(UserError, match=r"00000002\.npz is damaged"):
        track.finish("dwpose")


def marked(kind: str, valid: list[list[bool]]) -> Stream:
    """A stream with one item per flag, frame by frame, each `valid` as given."""
    frames = random_frames(kind, [len(flags) for flags in valid])
    for frame, flags in zip(frames, valid, strict=True):
        frame["valid"] = np.array(flags, bool)
    return Stream.from_frames(kind, frames)


def test_valid_per_frame_counts_only_valid_items() -> None:
    smplx = marked("smplx", [[False], [True, False], [], [True, True]])
    assert smplx.items_per_frame().tolist() == [1, 2, 0, 2]
    assert smplx.valid_per_frame().tolist() == [0, 1, 0, 2]
    dwpose = Stream.from_frames("dwpose", random_frames("dwpose", [1, 0, 2]))  # no `valid`: all count
    assert dwpose.valid_per_frame().tolist() == [1, 0, 2]
    assert marked("mano", []).valid_per_frame().tolist() == []
    found = Found(smplx.valid_per_frame())
    assert (found.empty_frames, found.total, found.spread("people")) == ([0, 2], 3, "0/0.75/2 people")
    assert Found(np.zeros(0, np.int64)).spread("people") == "no frames"


def test_extract_summary_and_track_info_count_only_valid_people_and_hands(tmp_path: Path) -> None:
    """A person SMPLer-X skipped and a hand HaMeR rejected are stored, but found nobody: neither
    the summary of `rdance extract` nor `track info` counts them; the summary says why."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for index in range(2):
        cv2.imwrite(str(folder / f"{index:04d}.png"), np.zeros((16, 16, 3), np.uint8))
    out = tmp_path / "t.rdance"
    track, _ = open_track(FrameSource(folder, Selection()), out, force=False)
    dwpose_options = {"rgb": False, "max_people": 1}
    track.write(
        "dwpose",
        Stream.from_frames("dwpose", random_frames("dwpose", [1, 1])),
        weights={},
        options=dwpose_options,
    )
    network = {"dtype": "float32", "dwpose": dwpose_options}  # what a CPU run asks: these are kept
    track.write("smplx", marked("smplx", [[False], [True]]), weights={"smplerx": "a"}, options=network)
    track.write("mano", marked("mano", [[True, False], [False]]), weights={"hamer": "b"}, options=network)

    done = rdance("extract", folder, "--out", out, "--device", "cpu", "--only", "dwpose,smplerx,hamer")
    assert done.returncode == 0, done.stderr
    lines = [" ".join(line.split()) for line in done.stdout.splitlines()]
    assert "dwpose: already done, 2 frames, 2 with a person" in lines
    # Not "nobody": DWPose found a person, whose box was too small for SMPL-X, and a hand.
    too_small = "a person too small for SMPL-X (box under 50x150 px)"
    assert f"smplerx: already done, 2 frames, 1 with a person; 1 with {too_small}: 0" in lines
    assert (
        "hamer: already done, 2 frames, 1 with hands (1 hand, 0.5 per frame); 1 with an empty hand box: 1"
        in lines
    )

    info = rdance("track", "info", out)
    assert info.returncode == 0, info.stderr
    text = " ".join(info.stdout.split())
    assert "│ dwpose │ complete │ 1/1.00/1 people │ 0 │" in text
    assert "│ smplx │ complete │ 0/0.50/1 people │ 1: 0 │" in text
    assert "│ mano │ complete │ 0/0.50/1 hands │ 1: 1 │" in text


def test_a_stream_of_no_frames_is_recorded_and_summarised(tmp_path: Path) -> None:
    track = Track.create(tmp_path / "t.rdance", source(0))
    track.write("smplx", Stream.from_frames("smplx", []), weights={}, options={})
    meta = json.loads((track.path / "meta.json").read_text())
    assert meta["streams"] == {"smplx": {"frames_done": 0, "complete": True, "weights": {}, "options": {}}}
    reopened = Track.open(track.path)
    assert reopened.has("smplx") and reopened.load("smplx").frame_count == 0

    info = rdance("track", "info", track.path)
    assert info.returncode == 0, info.stderr
    assert "Traceback" not in info.stderr
    text = " ".join(info.stdout.split())
    assert "frames 0 " in text
    assert "│ smplx │ complete │ no frames │ 0 │" in text


META_DAMAGE = {
    "streams a list": lambda meta: meta.update(streams=[]),
    "fps 1/0": lambda meta: meta["source"].update(fps="1/0"),
    "fps negative": lambda meta: meta["source"].update(fps="-5"),
    "fps of no video": lambda meta: meta["source"].update(fps="1000000000"),
    "width text": lambda meta: meta["source"].update(width="x"),
    "size zero": lambda meta: meta["source"].update(width=0, height=0),
    "frame count text": lambda meta: meta["source"].update(frame_count="8"),
    "source a list": lambda meta: meta.update(source=[1]),
    "schema text": lambda meta: meta.update(schema_version="1"),
    "unknown stream": lambda meta: meta["streams"].update(foo={"frames_done": 1}),
    "frames done text": lambda meta: meta["streams"]["dwpose"].update(frames_done="x"),
    "complete text": lambda meta: meta["streams"]["dwpose"].update(complete="no"),
    "weights a list": lambda meta: meta["streams"]["dwpose"].update(weights=[1]),
    "options a list": lambda meta: meta["streams"]["dwpose"].update(options=[1]),
}


@pytest.mark.parametrize("damage", list(META_DAMAGE))
def test_a_damaged_meta_json_is_refused_when_opened(tmp_path: Path, damage: str) -> None:
    """Every value of meta.json is checked on opening, so no command trips over one later."""
    track = Track.create(tmp_path / "t.rdance", source(1))
    track.write("dwpose", Stream.from_frames("dwpose", random_frames("dwpose", [1])), weights={}, options={})
    meta = json.loads((track.path / "meta.json").read_text())
    META_DAMAGE[damage](meta)
    (track.path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match=r"meta\.json is damaged \(.+\); extract it again\.$"):
        Track.open(track.path)


@pytest.mark.parametrize(
    ("ask", "words"),
    [
        (lambda track: track.load("hamer"), "'hamer' is the extraction stage; its stream is 'mano'"),
        (lambda track: track.has("smpl"), "'smpl' is the pose video; its stream is 'smplx'"),
        (lambda track: track.state("smplerx"), "'smplerx' is the extraction stage; its stream is 'smplx'"),
        (lambda track: track.load("openpose"), "unknown stream 'openpose'"),
    ],
)
def test_another_schemes_name_says_which_stream_holds_it(tmp_path: Path, ask, words: str) -> None:  # type: ignore[no-untyped-def]
    """Stages, streams and videos name the same poses three ways: a stage's or a video's name is
    said to be one (never taken for the stream), in one UserError that lists the streams."""
    track = Track.create(tmp_path / "t.rdance", source(4))
    with pytest.raises(UserError) as caught:
        ask(track)
    assert str(caught.value).startswith(words)
    assert "the streams are dwpose, smplx, mano" in str(caught.value)
