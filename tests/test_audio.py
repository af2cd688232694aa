"""The music stays: pose videos and animations carry the sound of the frames they show.

The sources are real H.264 + AAC (or PCM) files whose tone goes from 440 Hz to 880 Hz at one
second, so where a cut starts can be heard, and measured by FFT, in the written file.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import test_animate_cli
from conftest import FIXTURES, assert_user_error, need, rdance

from realisdance_cli.animation import AnimateOptions, PoseInputs, SDOptions, animate, read_poses
from realisdance_cli.animator.sampling import SamplingOptions
from realisdance_cli.audio import audio_source
from realisdance_cli.errors import UserError
from realisdance_cli.extraction import open_track
from realisdance_cli.original import poses_to_stream
from realisdance_cli.rendering import RenderOptions, render_poses
from realisdance_cli.synthetic import dancer_pkl_frames
from realisdance_cli.track import Track
from realisdance_cli.video import FrameSource, Selection
from realisdance_cli.video_writer import VideoWriter

RATE = 48000
SWITCH = 1.0  # seconds: the tone goes from LOW to HIGH here
LOW, HIGH = 440.0, 880.0
AUDIO_FRAME = 1024 / RATE  # seconds in one AAC frame
FPS = 24
weights_root = test_animate_cli.weights_root  # the tiny golden animator in a user's weights folder


def write_tone(path: Path, seconds: float = 3.0, *, codec: str = "aac", video: bool = True) -> Path:
    """A file with the two-tone sound, and `seconds * FPS` frames of H.264 video when `video`."""
    t = np.arange(round(seconds * RATE)) / RATE
    phase = 2 * np.pi * np.cumsum(np.where(t < SWITCH, LOW, HIGH)) / RATE
    samples = (0.3 * 32767 * np.sin(phase)).astype(np.int16)
    with av.open(str(path), "w") as container:
        picture = container.add_stream("libx264", rate=FPS) if video else None
        sound = container.add_stream(codec, rate=RATE)
        sound.layout = "mono"
        if picture is not None:
            picture.width, picture.height, picture.pix_fmt = 32, 32, "yuv420p"
            for index in range(round(seconds * FPS)):
                frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), index, np.uint8), format="rgb24")
                frame.pts = index
                container.mux(picture.encode(frame))
            container.mux(picture.encode())
        for start in range(0, len(samples), 1024):
            chunk = av.AudioFrame.from_ndarray(
                samples[None, start : start + 1024], format="s16", layout="mono"
            )
            chunk.sample_rate, chunk.pts = RATE, start
            container.mux(sound.encode(chunk))
        container.mux(sound.encode())
    return path


def write_silent(path: Path, frames: int = 3 * FPS) -> Path:
    rng = np.random.default_rng(frames)
    with VideoWriter(path, FPS) as writer:
        for _ in range(frames):
            writer.write(rng.integers(0, 256, (48, 80, 3), dtype=np.uint8))
    return path


def sound_of(path: Path) -> np.ndarray | None:
    """The first channel of the file's sound as a player plays it: sample i at i / RATE seconds
    from the start (a late start is silence); None without an audio stream."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        frames = list(container.decode(container.streams.audio[0]))
    assert {frame.sample_rate for frame in frames} == {RATE}
    starts = [round(frame.pts * frame.time_base * RATE) for frame in frames]
    assert min(starts) >= 0
    sound = np.zeros(max(start + frame.samples for start, frame in zip(starts, frames, strict=True)))
    for start, frame in zip(starts, frames, strict=True):
        sound[start : start + frame.samples] = frame.to_ndarray()[0]
    return sound


def tone(samples: np.ndarray, at: float, span: float = 0.01) -> float | None:
    """LOW or HIGH, whichever the loudest frequency between `at` and `at + span` seconds is
    nearer to (by FFT); None where it is silent."""
    window = samples[round(at * RATE) : round((at + span) * RATE)]
    if np.sqrt(np.mean(window**2)) < 0.1:  # the tones have an RMS of 0.21
        return None
    spectrum = np.abs(np.fft.rfft(window * np.hanning(len(window)), n=1 << 16))
    peak = np.argmax(spectrum) * RATE / (1 << 16)
    return LOW if abs(peak - LOW) < abs(peak - HIGH) else HIGH


def assert_span(path: Path, offset: float, duration: float) -> None:
    """`path` sounds like the source from `offset` for `duration` seconds: as long (within one
    audio frame), starting at once with the source's tone there, and changing tone where the
    source does (to within about 10 ms)."""
    samples = sound_of(path)
    assert samples is not None, f"{path.name} has no sound"
    assert abs(len(samples) / RATE - duration) <= AUDIO_FRAME, (len(samples) / RATE, duration)
    assert tone(samples, 0) == (LOW if offset < SWITCH else HIGH)
    switch = SWITCH - offset  # where the tone changes in the written file
    if 0.05 < switch < duration - 0.05:
        assert (tone(samples, switch - 0.013), tone(samples, switch + 0.003)) == (LOW, HIGH)


def write_frames(path: Path, count: int, audio_from: Path | None = None, audio_start: float = 0.0) -> Path:
    with VideoWriter(path, FPS, audio_from=audio_from, audio_start=audio_start) as writer:
        for index in range(count):
            writer.write(np.full((32, 32, 3), index, np.uint8))
    return path


@pytest.mark.parametrize(
    ("name", "codec", "video"),
    [
        ("song.mp4", "aac", True),  # copied packet by packet
        ("song.mkv", "pcm_s16le", True),  # decoded, cut to the sample, encoded to AAC
        ("music.m4a", "aac", False),  # a sound file, no picture
        ("music.wav", "pcm_s16le", False),
    ],
)
def test_writer_carries_the_span_of_the_sound(tmp_path: Path, name: str, codec: str, video: bool) -> None:
    source = write_tone(tmp_path / name, codec=codec, video=video)
    out = write_frames(tmp_path / "out.mp4", FPS, audio_from=source, audio_start=0.75)
    assert_span(out, 0.75, 1.0)
    info = FrameSource(out).info
    assert (info.frame_count, info.has_audio) == (FPS, True)
    with av.open(str(out)) as container:
        assert container.streams.audio[0].codec_context.name == "aac"


@pytest.mark.parametrize(("name", "codec"), [("song.mp4", "aac"), ("song.mkv", "pcm_s16le")])
def test_writer_at_the_end_of_the_sound(tmp_path: Path, name: str, codec: str) -> None:
    source = write_tone(tmp_path / name, codec=codec)  # three seconds
    out = write_frames(tmp_path / "end.mp4", FPS, audio_from=source, audio_start=2.5)
    assert_span(out, 2.5, 0.5)  # the sound ends where the source's does
    out = write_frames(tmp_path / "past.mp4", FPS, audio_from=source, audio_start=5.0)
    assert sound_of(out) is None  # nothing left to carry: a video without sound
    assert FrameSource(out).info.frame_count == FPS
    out = write_frames(tmp_path / "silent.mp4", FPS, audio_from=write_silent(tmp_path / "quiet.mp4"))
    assert sound_of(out) is None


def test_a_named_audio_source_must_have_sound(tmp_path: Path) -> None:
    song, quiet = write_tone(tmp_path / "song.mp4"), write_silent(tmp_path / "quiet.mp4")
    assert audio_source(song, lambda: None) == song
    assert audio_source(None, lambda: song) == song
    assert audio_source(None, lambda: None) is None
    assert audio_source(False, lambda: song) is None
    with pytest.raises(UserError, match=r"quiet\.mp4 has no audio stream") as caught:
        audio_source(quiet, lambda: song)
    assert caught.value.exit_code == 2
    with pytest.raises(UserError, match="does not exist"):
        audio_source(tmp_path / "missing.mp3", lambda: None)


def _track(tmp_path: Path, source: Path, selection: Selection) -> Track:
    """A track of `source` made as `rdance extract` makes it, with the dancer's poses in it."""
    track, _ = open_track(FrameSource(source, selection), tmp_path / "song.rdance", force=False)
    poses = dancer_pkl_frames(track.source.frame_count, track.source.height, track.source.width)
    track.write("dwpose", poses_to_stream(poses), weights={}, options={})
    return track


def test_render_poses_carry_the_sound_of_the_frames_they_show(tmp_path: Path) -> None:
    source = write_tone(tmp_path / "song.mp4")
    # Source frames 12, 14, ... 46: half a second in, a second and a half long, at 12 fps.
    track = _track(tmp_path, source, Selection(start=12, stride=2, max_frames=18))
    (video,) = render_poses(track.path)
    info = FrameSource(video).info
    assert (info.frame_count, info.fps) == (18, 12)
    assert_span(video, 0.5, 1.5)

    music = write_tone(tmp_path / "music.wav", codec="pcm_s16le", video=False)
    (video,) = render_poses(track.path, tmp_path / "music", RenderOptions(audio=music))
    assert_span(video, 0.5, 1.5)  # another file's sound, from the same moment
    (video,) = render_poses(track.path, tmp_path / "none", RenderOptions(audio=False))
    assert sound_of(video) is None
    with pytest.warns(UserWarning, match="do not keep time"):
        (video,) = render_poses(track.path, tmp_path / "fast", RenderOptions(fps=Fraction(24)))
    assert sound_of(video) is None
    with pytest.raises(UserError, match=r"quiet\.mp4 has no audio stream"):
        render_poses(
            track.path, tmp_path / "quiet", RenderOptions(audio=write_silent(tmp_path / "quiet.mp4"))
        )
    assert not (tmp_path / "quiet").exists()

    write_tone(source, seconds=2.0)  # the source is replaced by another recording
    with pytest.warns(UserWarning, match="has changed"):
        (video,) = render_poses(track.path, tmp_path / "changed")
    assert sound_of(video) is None


def _pose_folder(folder: Path, song: Path) -> Path:
    """Three pose videos of 48 frames (2 s at 24 fps); only the last, smpl.mp4, has sound."""
    rng = np.random.default_rng(0)
    for name in ("dwpose", "hamer", "smpl"):
        with VideoWriter(
            folder / f"{name}.mp4", FPS, crf=0, audio_from=song if name == "smpl" else None
        ) as w:
            for _ in range(2 * FPS):
                w.write(rng.integers(0, 256, (48, 80, 3), dtype=np.uint8))
    return folder


def test_animate_takes_the_sound_of_the_pose_videos_from_start(tmp_path: Path) -> None:
    folder = _pose_folder(tmp_path, write_tone(tmp_path / "song.mp4"))
    options = AnimateOptions(size=(64, 64), start=12, model=SDOptions(stride=2, max_frames=12))
    poses = read_poses(PoseInputs(folder), options)
    assert (poses.audio, poses.start_time, poses.fps) == (folder / "smpl.mp4", 0.5, 12)
    assert len(poses.frames["dwpose"]) == 12
    music = write_tone(tmp_path / "music.m4a", video=False)
    assert read_poses(PoseInputs(folder), AnimateOptions(size=(64, 64), audio=music)).audio == music
    assert read_poses(PoseInputs(folder), AnimateOptions(size=(64, 64), audio=False)).audio is None
    quiet = PoseInputs(folder, {"smpl": folder / "hamer.mp4"})  # no pose video with sound
    assert read_poses(quiet, AnimateOptions(size=(64, 64))).audio is None
    with pytest.raises(UserError, match=r"hamer\.mp4 has no audio stream"):
        read_poses(quiet, AnimateOptions(size=(64, 64), audio=folder / "hamer.mp4"))
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video")
    with pytest.raises(UserError, match=r"notes\.mp4 is not a media file FFmpeg can read"):
        read_poses(quiet, AnimateOptions(size=(64, 64), audio=notes))


@pytest.mark.slow
def test_animated_video_and_grid_carry_the_sound(weights_root: Path, tmp_path: Path) -> None:
    folder = _pose_folder(tmp_path, write_tone(tmp_path / "song.mp4"))
    options = AnimateOptions(
        size=(64, 64),
        start=12,
        grid=True,
        crf=0,
        weights_root=weights_root,
        model=SDOptions(stride=2, max_frames=8, sampling=SamplingOptions(steps=2, context=8)),
    )
    written = animate(need(FIXTURES / "dit_ref.png"), PoseInputs(folder), tmp_path / "dance.mp4", options)
    for video in written:  # the result and the grid
        info = FrameSource(video).info
        assert (info.frame_count, info.fps) == (8, 12)
        assert_span(video, 0.5, 8 / 12)  # pose frames 12, 14, ... 26 of 24 fps: from 0.5 s to 1.17 s


def test_the_commands_take_audio_no_audio_and_start(tmp_path: Path) -> None:
    """`render-poses --audio FILE` / `--no-audio` as the library options; both at once is refused
    before any work, by render-poses and by animate."""
    source = write_tone(tmp_path / "song.mp4")
    track = _track(tmp_path, source, Selection(start=12, stride=2, max_frames=18))
    music = write_tone(tmp_path / "music.wav", codec="pcm_s16le", video=False)
    done = rdance("render-poses", track.path, "--out", tmp_path / "music", "--audio", music)
    assert done.returncode == 0, done.stderr
    assert_span(tmp_path / "music" / "dwpose.mp4", 0.5, 1.5)
    done = rdance("render-poses", track.path, "--out", tmp_path / "none", "--no-audio")
    assert done.returncode == 0, done.stderr
    assert sound_of(tmp_path / "none" / "dwpose.mp4") is None
    both = ("--audio", music, "--no-audio")
    assert_user_error(rdance("render-poses", track.path, "--out", tmp_path / "both", *both), "not both")
    assert not (tmp_path / "both").exists()
    animate_both = rdance("animate", tmp_path / "me.png", tmp_path / "none", "--start", "2", *both)
    assert_user_error(animate_both, "not both")
