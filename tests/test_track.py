"""The pose-track store: ragged streams, atomic chunked writes, resuming, damage reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from realisdance_cli.errors import UserError
from realisdance_cli.files import save_npz
from realisdance_cli.track import SCHEMA_VERSION, STREAMS, SourceInfo, Stream, Track


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
    with pytest.raises(ValueError, match="unknown stream"):
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
