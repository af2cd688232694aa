"""`rdance retarget` end to end: a dance track onto a reference's one-frame track (or picture),
the new track's streams, its preview, render-poses on it, and the bad inputs (synthetic SMPL-X,
the golden MANO, the tiny extraction networks)."""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import assert_user_error, rdance
from scipy.spatial.transform import Rotation
from test_audio import write_tone
from test_nothing_lost import needs_mount, rdance_on
from test_retarget import (
    DRIVER_SIZE,
    EMPTY,
    STILL,
    UPRIGHT,
    axis,
    dance,
    hands_at,
    person,
    silhouette,
)

from realisdance_cli.bodies import mano_layer, smplx_model, smplx_vertices
from realisdance_cli.errors import UserError
from realisdance_cli.files import claimed_output, file_sha256
from realisdance_cli.geometry.cameras import project
from realisdance_cli.retargeting.body import LEFT_WRIST, RIGHT_WRIST, largest_person, smplx_joints
from realisdance_cli.retargeting.job import NEEDED, RetargetOptions, default_out, retarget, retargeted_poses
from realisdance_cli.retargeting.skeleton import smplx_keypoints
from realisdance_cli.smoothing import smooth_stream
from realisdance_cli.track import BODY, LEFT_HAND, RIGHT_HAND, SourceInfo, Stream, Track
from realisdance_cli.video import FrameSource

pytestmark = pytest.mark.slow
REF_SIZE = (384, 320)  # (height, width) of the reference picture
REF_BETAS = np.array([-0.6, 0.5, 0, 0, 0, 0, 0, 0, 0, 0])
FPS = 24
NECK = 1
HALF = (REF_SIZE[0] // 2, REF_SIZE[1] // 2)  # the rendered pose videos' size
GL = {"RDANCE_GL": "osmesa"}  # no probing for a GL backend in every command
# test_retarget's dance at every other frame: still at first, then moving, one frame with nobody.
TAKEN = range(0, 80, 2)
FRAMES = len(TAKEN)
NOBODY = TAKEN.index(EMPTY)
STILL_FRAMES = [index for index, frame in enumerate(TAKEN) if frame in STILL]


@pytest.fixture(scope="module")
def weights(extraction_weights: Path) -> Path:
    return extraction_weights


@pytest.fixture(scope="module")
def model(weights: Path):
    return smplx_model(weights / "smplx" / "SMPLX_NEUTRAL.npz")


@pytest.fixture(scope="module")
def layer(weights: Path):
    return mano_layer(weights / "mano" / "MANO_RIGHT.pkl")


def reference_person(betas=REF_BETAS, transl=(0.1, 0.6, 5.0), box=(100, 40, 120, 300)) -> dict:
    """A whole body standing in the reference picture, turned a little."""
    pose = np.random.default_rng(1).normal(0, 0.15, (21, 3))
    rotation = Rotation.from_rotvec([0, 0.3, 0]) * UPRIGHT
    body = person(betas, rotation, pose, transl, (700, 700), (REF_SIZE[1] / 2, REF_SIZE[0] / 2), box)
    body["expression"][:] = -0.2  # the dance's faces have 0.3
    return body


def wrist_hands(model, layer, smplx: Stream) -> Stream:
    """Both HaMeR hands at the wrists of each frame's largest person, as the driver camera sees them."""
    frames, people = [], []
    for index in range(smplx.frame_count):
        chosen = largest_person(smplx.frame(index))
        if chosen is not None:
            frames.append(index)
            people.append({name: values[chosen] for name, values in smplx.frame(index).items()})
    wrists = smplx_joints(model, axis(people))[:, [LEFT_WRIST, RIGHT_WRIST]].reshape(-1, 3)
    hands = hands_at(layer, np.random.default_rng(7), wrists, [False, True] * len(people), DRIVER_SIZE)
    records: list[dict] = [{} for _ in range(smplx.frame_count)]
    for k, index in enumerate(frames):
        records[index] = {name: values[2 * k : 2 * k + 2] for name, values in hands.items()}
    return Stream.from_frames("mano", records)


def new_track(path: Path, source: Path, size: tuple[int, int], frames: int, streams: dict) -> Path:
    info = SourceInfo(str(source), file_sha256(source), size[1], size[0], frames, Fraction(FPS))
    track = Track.create(path, info)
    for kind, stream in streams.items():
        track.write(kind, stream, weights={}, options={})
    return path


def reference_picture(path: Path, size: tuple[int, int] = REF_SIZE) -> Path:
    rows = np.linspace(40, 200, size[0], dtype=np.uint8)[:, None, None]
    picture = np.broadcast_to(rows, (*size, 3)).copy()
    picture[:, :, 2] = 90
    cv2.imwrite(str(path), picture)
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, model, layer) -> Path:
    """dance.mp4 (a tone, for the sound) and its track dance.rdance (40 frames of SMPL-X and MANO,
    one empty), me.png and its one-frame track me.rdance (a body and a right hand)."""
    folder = tmp_path_factory.mktemp("retarget")
    video = write_tone(folder / "dance.mp4", seconds=FRAMES / FPS + 0.5)
    moves = dance(model, reference_person())
    smplx = Stream.from_frames("smplx", [moves.frame(frame) for frame in TAKEN])
    streams = {"smplx": smplx, "mano": wrist_hands(model, layer, smplx)}
    new_track(folder / "dance.rdance", video, DRIVER_SIZE, FRAMES, streams)
    picture = reference_picture(folder / "me.png")
    hand = hands_at(layer, np.random.default_rng(5), np.array([[0.0, 0.0, 3.0]]), [True], REF_SIZE)
    me = {
        "smplx": Stream.from_frames("smplx", [axis([reference_person()])]),
        "mano": Stream.from_frames("mano", [hand]),
    }
    new_track(folder / "me.rdance", picture, REF_SIZE, 1, me)
    return folder


def near(mask: np.ndarray, points: np.ndarray, reach: int = 1) -> np.ndarray:
    """Whether `mask` is set within `reach` pixels of each point (x, y)."""
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((2 * reach + 1,) * 2, np.uint8)) > 0
    x, y = np.clip(np.round(points).astype(int), 0, np.array(mask.shape[::-1]) - 1).T
    return grown[y, x]


@pytest.fixture(scope="module")
def retargeted(inputs: Path, weights: Path) -> tuple[Path, str]:
    """`rdance retarget dance.rdance me.rdance --preview`, then `render-poses` on the result at
    half size: the track (default: beside the dance's) and what the first command said."""
    done = rdance(
        "retarget", inputs / "dance.rdance", inputs / "me.rdance", "--weights", weights, "--preview", env=GL
    )
    assert done.returncode == 0, done.stderr
    out = inputs / "dance_on_me.rdance"
    rendered = rdance("render-poses", out, "--size", "x".join(map(str, HALF)), "--weights", weights, env=GL)
    assert rendered.returncode == 0, rendered.stderr
    return out, done.stdout


def test_retarget_then_render_poses(inputs: Path, retargeted: tuple[Path, str], model) -> None:
    out, said = retargeted
    assert f"pose track: {out}" in " ".join(said.split())
    assert f"next: rdance render-poses {out}" in " ".join(said.split())
    track = Track.open(out)
    source = track.source
    assert (source.height, source.width, source.frame_count, source.fps) == (*REF_SIZE, FRAMES, FPS)
    assert (source.path, source.sha256) == (str(inputs / "dance.mp4"), file_sha256(inputs / "dance.mp4"))
    assert all(track.has(kind) for kind in ("dwpose", "smplx", "mano"))
    made = track.state("smplx").options
    assert (made["origin"], made["placement"], made["smooth"]) == ("retarget", "reference", False)
    smplx = track.load("smplx")
    assert smplx.items_per_frame().tolist() == [int(i != NOBODY) for i in range(FRAMES)]
    assert np.allclose(smplx.fields["betas"], REF_BETAS)
    assert track.load("mano").items_per_frame().tolist() == [0 if i == NOBODY else 2 for i in range(FRAMES)]

    # The skeleton is the projection of the body's 3-D joints (body, feet and face; the neck is
    # made from the projected shoulders, the hands from the MANO hands).
    joints = smplx_joints(model, smplx.fields)
    expected = project(
        smplx_keypoints(joints), smplx.fields["focal"][:, None], smplx.fields["princpt"][:, None]
    )
    dwpose = track.load("dwpose")
    points, seen = dwpose.fields["keypoints"], dwpose.fields["scores"] > 0
    assert seen[:, :92].mean() > 0.9
    body = np.ones(92, bool)
    body[NECK] = False
    difference = np.abs(points[:, :92] - expected[:, :92])[:, body]
    assert difference[seen[:, :92][:, body]].max() < 1e-3

    # The preview: the reference as it is | the dance's frame | the pose over the reference.
    preview = cv2.imread(str(inputs / "dance_on_me_preview.png"))[:, :, ::-1]
    driver_width = round(DRIVER_SIZE[1] * REF_SIZE[0] / DRIVER_SIZE[0])
    assert preview.shape == (REF_SIZE[0], 2 * REF_SIZE[1] + driver_width, 3)
    reference = cv2.imread(str(inputs / "me.png"))[:, :, ::-1]
    assert np.array_equal(preview[:, : REF_SIZE[1]], reference)
    pose = preview[:, REF_SIZE[1] + driver_width :].astype(int)
    changed = np.abs(pose - reference).sum(-1) > 30
    assert near(changed, points[0, BODY][seen[0, BODY]]).all()  # body and skeleton drawn at the joints

    videos = {name: FrameSource(out / f"{name}.mp4") for name in ("dwpose", "smpl", "hamer")}
    for video in videos.values():
        info = video.info
        assert (info.frame_count, info.height * 2, info.width * 2, info.fps) == (FRAMES, *REF_SIZE, FPS)
        assert info.has_audio  # the dance's sound
    frames = {name: list(video) for name, video in videos.items()}
    for name in frames:
        assert frames[name][NOBODY].max() < 16, name  # nobody: black
    # The three agree. The SMPL-CS body covers the skeleton's body points wherever the mesh
    # itself does: all of them in the still frames (the reference's pose), and where the dance
    # turns the synthetic blob's joints (random points inside it) out of it, exactly those.
    agree, still, hands_shown = [], [], []
    for index in range(0, FRAMES, 2):
        if index == NOBODY:
            continue
        half, shown = points[index] / 2, seen[index]
        body_points = half[BODY][shown[BODY]]
        covered = near(frames["smpl"][index].max(-1) > 40, body_points)
        people = smplx.frame(index)
        mesh = smplx_vertices(model, people)[0]
        inside = silhouette(mesh, model.faces, people["focal"][0] / 2, people["princpt"][0] / 2, HALF)
        agree.append(covered == near(inside, body_points))
        if index in STILL_FRAMES:
            still.append(covered)
        hand_points = np.concatenate([half[LEFT_HAND][shown[LEFT_HAND]], half[RIGHT_HAND][shown[RIGHT_HAND]]])
        hands_shown.append(near(frames["hamer"][index].max(-1) > 40, hand_points, reach=2))
    assert np.concatenate(still).all()
    assert np.concatenate(agree).mean() > 0.95
    assert np.concatenate(hands_shown).mean() > 0.8


def test_bad_drivers_say_which_extraction_to_run(inputs: Path, weights: Path, tmp_path: Path) -> None:
    driver = Track.open(inputs / "dance.rdance")
    hands_only = {"mano": driver.load("mano")}
    new_track(tmp_path / "my hands.rdance", inputs / "dance.mp4", DRIVER_SIZE, FRAMES, hands_only)
    done = rdance("retarget", tmp_path / "my hands.rdance", inputs / "me.rdance", "--weights", weights)
    assert_user_error(  # a command to paste: the path with a space is quoted
        done,
        "has no finished SMPL-X stream",
        f"rdance extract {inputs / 'dance.mp4'} --only smplerx --out '{tmp_path / 'my hands.rdance'}'",
    )
    new_track(tmp_path / "bare.rdance", inputs / "dance.mp4", DRIVER_SIZE, FRAMES, {})
    with pytest.raises(UserError, match=r"no finished SMPL-X and MANO streams; .* --only hamer,smplerx"):
        retarget(
            tmp_path / "bare.rdance", inputs / "me.rdance", options=RetargetOptions(weights_root=weights)
        )
    assert not (tmp_path / "bare_on_me.rdance").exists()


def test_bad_references(inputs: Path, weights: Path, tmp_path: Path) -> None:
    options = RetargetOptions(weights_root=weights)
    nobody = person(REF_BETAS, UPRIGHT, np.zeros(63), (0, 0, 5), (700, 700), (160, 192))
    nobody["valid"] = np.array(False)  # skipped by SMPLer-X: no usable person
    new_track(
        tmp_path / "empty.rdance",
        inputs / "me.png",
        REF_SIZE,
        1,
        {"smplx": Stream.from_frames("smplx", [axis([nobody])])},
    )
    with pytest.raises(UserError, match=r"no person was found in .*empty.rdance"):
        retarget(inputs / "dance.rdance", tmp_path / "empty.rdance", tmp_path / "out.rdance", options)
    with pytest.raises(UserError, match=f"has {FRAMES} frames; the reference is one picture"):
        retarget(inputs / "dance.rdance", inputs / "dance.rdance", tmp_path / "out.rdance", options)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UserError, match="neither a picture"):
        retarget(inputs / "dance.rdance", tmp_path / "notes.txt", tmp_path / "out.rdance", options)
    with pytest.raises(UserError, match="upper-body"):
        RetargetOptions(placement="driver", upper_body=True)
    assert not (tmp_path / "out.rdance").exists()


def test_several_people_the_largest_is_used_and_said(
    inputs: Path, weights: Path, layer, tmp_path: Path
) -> None:
    """Two people: the larger one's body, and only the hands in its box (the other's right hand
    is bigger, and would win without that)."""
    small = reference_person(np.full(10, 0.2), (1.0, -0.2, 8.0), box=(250, 100, 40, 150))
    big = reference_person()
    hands = hands_at(layer, np.random.default_rng(9), np.array([[0.0, 0.0, 3.0]] * 2), [True, True], REF_SIZE)
    hands["box"] = np.array([[150, 100, 180, 130], [255, 110, 295, 150]], np.float32)  # the second is small's
    new_track(
        tmp_path / "two.rdance",
        inputs / "me.png",
        REF_SIZE,
        1,
        {
            "smplx": Stream.from_frames("smplx", [axis([small, big])]),
            "mano": Stream.from_frames("mano", [hands]),
        },
    )
    out = tmp_path / "out.rdance"
    with pytest.warns(
        UserWarning, match=r"two.rdance shows 2 or more people; the dance goes onto the largest"
    ):
        track = retarget(
            inputs / "dance.rdance", tmp_path / "two.rdance", out, RetargetOptions(weights_root=weights)
        )
    assert np.allclose(track.load("smplx").fields["betas"], REF_BETAS)
    mano = track.load("mano").fields
    assert np.allclose(mano["betas"][mano["is_right"]], hands["betas"][0])
    with pytest.raises(UserError, match="already exists; pass --force"):
        retarget(inputs / "dance.rdance", inputs / "me.rdance", out, RetargetOptions(weights_root=weights))
    retarget(
        inputs / "dance.rdance", inputs / "me.rdance", out, RetargetOptions(weights_root=weights), force=True
    )
    assert np.allclose(Track.open(out).load("smplx").fields["betas"], REF_BETAS)


def test_driver_placement_reference_expression_and_smoothing(
    inputs: Path, weights: Path, tmp_path: Path
) -> None:
    """Also a preview whose dance video is gone: its panel falls back to its skeleton (none: black)."""
    driver = Track.open(inputs / "dance.rdance")
    chosen = [largest_person(driver.load("smplx").frame(i)) for i in range(FRAMES)]
    gone = shutil.copy(inputs / "dance.mp4", tmp_path / "gone.mp4")
    streams = {kind: driver.load(kind) for kind in NEEDED}
    new_track(tmp_path / "gone.rdance", gone, DRIVER_SIZE, FRAMES, streams)
    gone.unlink()
    options = RetargetOptions(
        placement="driver", expression=False, smooth=True, preview=True, weights_root=weights
    )
    track = retarget(tmp_path / "gone.rdance", inputs / "me.rdance", tmp_path / "framed.rdance", options)
    assert (track.source.height, track.source.width) == DRIVER_SIZE
    fields = track.load("smplx").fields
    assert np.allclose(fields["focal"], driver.load("smplx").fields["focal"][0])
    assert np.allclose(fields["expression"], -0.2) and np.allclose(
        driver.load("smplx").fields["expression"], 0.3
    )
    preview = cv2.imread(str(tmp_path / "framed_preview.png"))
    reference_width = round(REF_SIZE[1] * DRIVER_SIZE[0] / REF_SIZE[0])
    assert preview.shape == (DRIVER_SIZE[0], reference_width + 2 * DRIVER_SIZE[1], 3)
    assert not preview[:, reference_width : reference_width + DRIVER_SIZE[1]].any()
    assert preview[:, reference_width + DRIVER_SIZE[1] :].any(axis=-1).mean() > 0.02  # the pose, over black
    # Smoothing comes first: the body keeps the smoothed dance's rotations.
    smoothed = smooth_stream(driver.load("smplx"), FPS, frame_size=max(DRIVER_SIZE))
    rows = [int(smoothed.offsets[i]) + c for i, c in enumerate(chosen) if c is not None]
    assert np.abs(fields["body_pose"] - smoothed.fields["body_pose"][rows]).max() < 1e-6
    assert np.abs(fields["body_pose"] - driver.load("smplx").fields["body_pose"][rows]).max() > 1e-3
    assert track.state("dwpose").options["expression"] == "reference"


def test_a_picture_is_extracted_once_beside_it(inputs: Path, weights: Path, tmp_path: Path) -> None:
    """A picture's track is cached as <name>.rdance beside it, and a second run needs no networks.
    The tiny networks find two people in a picture this size (the largest is used, and said so)
    and none big enough in a smaller one."""
    options = RetargetOptions(weights_root=weights, device="cpu")
    small = shutil.copy(inputs / "me.png", tmp_path / "small.png")
    too_small = r"the person in .*small.png is too small for SMPL-X: its box is \d+x\d+ px, under 50x150 px"
    with pytest.raises(UserError, match=too_small):
        retarget(inputs / "dance.rdance", small, tmp_path / "a.rdance", options)
    assert Track.open(tmp_path / "small.rdance").has("smplx") and not (tmp_path / "a.rdance").exists()

    picture = reference_picture(tmp_path / "me.png", (2 * REF_SIZE[0], 2 * REF_SIZE[1]))
    with pytest.warns(UserWarning, match="me.png shows 2 or more people"):
        first = retarget(inputs / "dance.rdance", picture, tmp_path / "a.rdance", options)
    assert (first.source.height, first.source.width) == (2 * REF_SIZE[0], 2 * REF_SIZE[1])
    cache = Track.open(tmp_path / "me.rdance")
    assert cache.source.frame_count == 1 and cache.source.sha256 == file_sha256(picture)
    assert all(cache.has(kind) for kind in ("dwpose", "smplx", "mano"))
    bodies_only = tmp_path / "bodies"
    for name in ("smplx", "mano"):
        (bodies_only / name).mkdir(parents=True)
        for file in (weights / name).iterdir():
            (bodies_only / name / file.name).symlink_to(file)
    with pytest.warns(UserWarning, match="shows 2 or more people"):
        again = retarget(
            inputs / "dance.rdance", picture, tmp_path / "b.rdance", RetargetOptions(weights_root=bodies_only)
        )
    assert again.load("smplx").equals(first.load("smplx"))


@pytest.fixture(scope="module")
def retarget_weights(weights: Path, animator_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One weights folder: the body models, the tiny SD animator and the tiny DiT release."""
    from test_dit import release_folder

    root = tmp_path_factory.mktemp("all-weights")
    for folder in (weights, animator_weights):
        for entry in folder.iterdir():
            (root / entry.name).symlink_to(entry.resolve())
    release_folder(root).rename(root / "realisdance-dit")
    return root


def test_animate_retarget_makes_the_poses_on_the_way_or_reuses_them(
    inputs: Path, retarget_weights: Path, retargeted: tuple[Path, str], tmp_path: Path
) -> None:
    """`animate --retarget` onto me.png finds the retargeting of this dance onto this picture
    cached beside the track (`dance_on_me.rdance`, made from the same inputs, with its videos) and
    animates from it, with either model; a changed input makes it again."""
    poses, _ = retargeted
    made = {name: (poses / f"{name}.mp4").stat().st_mtime_ns for name in ("dwpose", "smpl", "hamer")}
    common = ("--retarget", "--weights", retarget_weights, "--crf", "0", "--max-frames", "5")
    done = rdance(
        "animate", inputs / "me.png", inputs / "dance.rdance", *common, "--size", "64x64", "--steps", "2",
        "--context", "8", "--stride", "1", "--out", tmp_path / "sd.mp4", env=GL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    info = FrameSource(tmp_path / "sd.mp4").info
    assert (info.frame_count, info.height, info.width) == (5, 64, 64)
    done = rdance(
        "animate", inputs / "me.png", inputs / "dance.rdance", *common, "--model", "dit",
        "--prompt", "a dance", "--max-res", str(64 * 48), "--steps", "2", "--out", tmp_path / "dit.mp4",
        env=GL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert FrameSource(tmp_path / "dit.mp4").info.frame_count == 5
    assert {name: (poses / f"{name}.mp4").stat().st_mtime_ns for name in made} == made  # reused

    # Another dance (a shorter one) is retargeted and rendered on the way.
    dance_track = Track.open(inputs / "dance.rdance")
    short = {
        kind: Stream.from_frames(kind, [dance_track.load(kind).frame(i) for i in range(6)]) for kind in NEEDED
    }
    driver = new_track(tmp_path / "short.rdance", inputs / "dance.mp4", DRIVER_SIZE, 6, short)
    folder = retargeted_poses(driver, inputs / "me.png", RetargetOptions(weights_root=retarget_weights))
    assert folder == tmp_path / "short_on_me.rdance"
    assert Track.open(folder).state("smplx").options["origin"] == "retarget"
    for name in ("dwpose", "smpl", "hamer"):
        info = FrameSource(folder / f"{name}.mp4").info
        assert (info.frame_count, info.height, info.width) == (6, *REF_SIZE)


def test_the_cache_of_animate_retarget_never_replaces_other_work(
    inputs: Path, retarget_weights: Path, tmp_path: Path
) -> None:
    """A retargeting the user made of the same tracks with other settings is what animate takes
    (not replaced); a folder that is not such a retargeting is refused; --out may not land on the
    reference's cached track."""
    driver = tmp_path / "dance.rdance"
    shutil.copytree(inputs / "dance.rdance", driver)
    reference = tmp_path / "me.rdance"
    shutil.copytree(inputs / "me.rdance", reference)
    options = RetargetOptions(weights_root=retarget_weights)
    mine = retarget(driver, reference, options=RetargetOptions(weights_root=retarget_weights, smooth=True))
    stamp = (mine.path / "smplx.npz").stat().st_mtime_ns
    again = retarget(driver, reference, default_out(driver, reference), options, reuse=True)
    assert again.path == mine.path and (mine.path / "smplx.npz").stat().st_mtime_ns == stamp
    assert again.state("smplx").options["smooth"] is True  # the user's settings, kept
    other = tmp_path / "other_on_me.rdance"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not a pose track; it is never replaced: choose another --out"):
        retarget(driver, reference, other, options, reuse=True)
    with pytest.raises(UserError, match="would replace an input or the reference's track"):
        retarget(driver, tmp_path / "me.png", tmp_path / "me.rdance", options, force=True)


def test_the_preview_is_never_replaced_silently(inputs: Path, weights: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.rdance"
    preview = tmp_path / "out_preview.png"
    options = RetargetOptions(weights_root=weights, preview=True)
    preview.write_bytes(b"an earlier preview")
    with pytest.raises(UserError, match=r"out_preview\.png already exists; pass --force"):
        retarget(inputs / "dance.rdance", inputs / "me.rdance", out, options)
    preview.unlink()
    preview.mkdir()
    with pytest.raises(UserError, match=r"out_preview\.png is a folder"):
        retarget(inputs / "dance.rdance", inputs / "me.rdance", out, options, force=True)
    preview.rmdir()
    with claimed_output(preview), pytest.raises(UserError, match="being written by another process"):
        retarget(inputs / "dance.rdance", inputs / "me.rdance", out, options)  # held before any work
    assert not out.exists()


def test_a_retargeting_stopped_before_its_preview_resumes_and_a_second_job_stops_at_once(
    inputs: Path, weights: Path, tmp_path: Path
) -> None:
    """The same command again keeps the finished track and makes only the missing preview; other
    settings need --force, which also drops the replaced retargeting's preview."""
    driver, reference, out = inputs / "dance.rdance", inputs / "me.rdance", tmp_path / "out.rdance"
    preview = tmp_path / "out_preview.png"
    with_preview = RetargetOptions(weights_root=weights, preview=True)
    with claimed_output(out, folder=True), pytest.raises(UserError, match="being written by another"):
        retarget(driver, reference, out, with_preview)
    retarget(driver, reference, out, with_preview)
    made = preview.read_bytes()
    stamp = (out / "smplx.npz").stat().st_mtime_ns
    preview.unlink()  # as when the run was stopped between the track and its preview
    retarget(driver, reference, out, with_preview)
    assert (out / "smplx.npz").stat().st_mtime_ns == stamp and preview.read_bytes() == made
    preview_stamp = preview.stat().st_mtime_ns
    retarget(driver, reference, out, with_preview)  # done already: nothing rewritten
    assert preview.stat().st_mtime_ns == preview_stamp
    framed = RetargetOptions(weights_root=weights, placement="driver")
    with pytest.raises(UserError, match=r"out\.rdance already exists; pass --force"):
        retarget(driver, reference, out, framed)
    retarget(driver, reference, out, framed, force=True)
    assert Track.open(out).state("smplx").options["placement"] == "driver" and not preview.exists()


def test_a_copied_project_keeps_its_retargeting_and_a_track_being_drawn_is_said_first(
    inputs: Path, weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The inputs are known by their streams, not their paths: a project copied elsewhere reuses
    its retargeting (the same command, and animate's cache). A track that another process is
    writing (render-poses drawing it) is said before any work; `.` names the folder it stands for."""
    first = tmp_path / "first"
    first.mkdir()
    for name in ("dance.rdance", "me.rdance"):
        shutil.copytree(inputs / name, first / name)
    options = RetargetOptions(weights_root=weights)
    reported: list[tuple[int, int | None]] = []
    retarget(
        first / "dance.rdance",
        first / "me.rdance",
        options=options,
        progress=lambda task, done, total: reported.append((done, total)),
    )
    # The dancer's 39 frames posed twice, then the hands and the skeleton: the bar moves as it goes.
    assert reported == [(0, 80), (39, 80), (78, 80), (79, 80), (80, 80)]
    copy = shutil.copytree(first, tmp_path / "copy")  # copy2 keeps the files' times
    out = copy / "dance_on_me.rdance"
    stamp = (out / "smplx.npz").stat().st_mtime_ns
    assert retarget(copy / "dance.rdance", copy / "me.rdance", options=options).path == out
    assert retargeted_poses(copy / "dance.rdance", copy / "me.rdance", options) == out
    assert (out / "smplx.npz").stat().st_mtime_ns == stamp  # kept, not made again

    steps: list[str] = []
    with Track.lock(out), pytest.raises(UserError, match="is in use by another process"):
        retarget(
            copy / "dance.rdance",
            copy / "me.rdance",
            options=RetargetOptions(weights_root=weights, placement="driver"),
            force=True,
            progress=lambda task, done, total: steps.append(task),
        )
    assert steps == [] and (out / "smplx.npz").stat().st_mtime_ns == stamp

    monkeypatch.chdir(copy / "dance.rdance")
    assert default_out(Path("."), Path("../me.rdance")) == out
    monkeypatch.chdir(copy / "me.rdance")
    assert default_out(Path("../dance.rdance"), Path(".")).resolve() == out


def test_a_driver_without_anyone_is_refused_before_the_reference_is_extracted(
    inputs: Path, weights: Path, tmp_path: Path
) -> None:
    driver = Track.open(inputs / "dance.rdance")
    smplx = driver.load("smplx")
    nobody = Stream("smplx", smplx.offsets, {**smplx.fields, "valid": np.zeros_like(smplx.fields["valid"])})
    new_track(tmp_path / "empty.rdance", inputs / "dance.mp4", DRIVER_SIZE, FRAMES, {
        "smplx": nobody, "mano": driver.load("mano")
    })  # fmt: skip
    picture = reference_picture(tmp_path / "me.png")
    with pytest.raises(UserError, match="no person in any frame"):
        retarget(tmp_path / "empty.rdance", picture, options=RetargetOptions(weights_root=weights))
    assert not (tmp_path / "me.rdance").exists()  # the picture was not extracted for nothing


@needs_mount
def test_a_picture_in_a_read_only_folder_names_the_way_out(
    inputs: Path, weights: Path, tmp_path: Path
) -> None:
    locked = tmp_path / "photos"
    locked.mkdir()
    reference_picture(locked / "me.png")
    done = rdance_on(
        locked, "read-only", "retarget", inputs / "dance.rdance", locked / "me.png",
        "--out", tmp_path / "out.rdance", "--weights", weights,
    )  # fmt: skip
    assert_user_error(
        done, f"cannot write {locked / 'me.rdance'} beside the picture", f"rdance extract {locked / 'me.png'}"
    )
    assert not (tmp_path / "out.rdance").exists()


def damaged_copy(track: Path, out: Path, kind: str, name: str, value: float, at: tuple) -> Path:
    """A copy of `track` whose `kind` stream holds `value` at `at` (a frame, then the index within
    the field of its first item), as a hand edit or a damaged file leaves it."""
    opened = Track.open(track)
    streams = {stream: opened.load(stream) for stream in NEEDED}
    stream = streams[kind]
    fields = {**stream.fields, name: stream.fields[name].copy()}
    fields[name][(int(stream.offsets[at[0]]), *at[1:])] = value
    streams[kind] = Stream(kind, stream.offsets, fields)
    source = opened.source
    return new_track(out, Path(source.path), (source.height, source.width), source.frame_count, streams)


@pytest.mark.parametrize(
    ("side", "kind", "name", "value", "at"),
    [
        ("dance", "smplx", "betas", np.nan, (3, 0)),  # one frame's: every retargeted frame was NaN
        ("dance", "mano", "hand_pose", np.inf, (3, 0, 0, 0)),
        ("dance", "smplx", "global_orient", 1e30, (3, 1)),
        ("me", "smplx", "focal", 0.0, (0, 0)),  # a hand-made reference
        ("me", "smplx", "transl", -5.0, (0, 2)),  # behind its camera: nothing was drawn
    ],
)
def test_a_damaged_stream_is_one_sentence_not_a_pose_of_garbage(
    inputs: Path, weights: Path, tmp_path: Path, side: str, kind: str, name: str, value: float, at: tuple
) -> None:
    """Such numbers went through: the new track held NaN or bodies out of sight, and render-poses
    drew black or garbage videos of it without a word."""
    tracks = {other: inputs / f"{other}.rdance" for other in ("dance", "me")}
    tracks[side] = damaged_copy(tracks[side], tmp_path / f"{side}.rdance", kind, name, value, at)
    out = tmp_path / "out.rdance"
    done = rdance("retarget", tracks["dance"], tracks["me"], "--out", out, "--weights", weights, "--preview")
    stage = {"smplx": "smplerx", "mano": "hamer"}[kind]
    source = Track.open(tracks[side]).source.path
    assert_user_error(
        done,
        f"{tracks[side] / kind}.npz is damaged: the",
        f"{name} of frame {at[0]} holds {value:g}, which no extraction writes; make it again with "
        f"`rdance extract {source} --only {stage} --out {tracks[side]} --force`",
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == [f"{side}.rdance"]


def test_a_file_or_folder_of_the_user_s_where_the_picture_s_track_goes_is_said_so(
    inputs: Path, weights: Path, tmp_path: Path
) -> None:
    """It was "me.rdance exists and is not a pose track; ... choose another --out" (--out is not
    where the picture's track goes) or "the pose track me.rdance is a file, not a folder; choose
    another"."""
    picture = reference_picture(tmp_path / "me.png")
    cache = tmp_path / "me.rdance"

    def refused(there: str) -> None:
        done = rdance(
            "retarget",
            inputs / "dance.rdance",
            picture,
            "--out",
            tmp_path / "out.rdance",
            "--weights",
            weights,
        )
        assert_user_error(
            done,
            f"cannot write {cache} beside the picture ({there} is there); extract it elsewhere with "
            f"`rdance extract {picture} --out DIR/me.rdance` and give that track as the reference.",
        )
        assert sorted(path.name for path in tmp_path.iterdir()) == ["me.png", "me.rdance"]

    cache.mkdir()
    (cache / "notes.txt").write_text("mine")
    refused("a folder of that name that is not a pose track")
    assert [path.name for path in cache.iterdir()] == ["notes.txt"]
    shutil.rmtree(cache)
    cache.write_text("mine too")
    refused("a file of that name")
    assert cache.read_text() == "mine too"


def test_the_preview_never_replaces_the_reference_picture(
    inputs: Path, weights: Path, tmp_path: Path
) -> None:
    """`--out x.rdance --preview` writes x_preview.png: with --force (which the refusal of an existing
    one suggests) it replaced the reference picture of that name, given as its track's source or
    itself."""
    picture = shutil.copy(inputs / "me.png", tmp_path / "x_preview.png")
    me = Track.open(inputs / "me.rdance")
    track = new_track(tmp_path / "me.rdance", picture, REF_SIZE, 1, {kind: me.load(kind) for kind in NEEDED})
    for reference in (track, picture):
        done = rdance(
            "retarget", inputs / "dance.rdance", reference, "--out", tmp_path / "x.rdance", "--preview",
            "--force", "--weights", weights,
        )  # fmt: skip
        assert_user_error(
            done, f"the preview {picture} would replace an input picture; choose another --out."
        )
    assert picture.read_bytes() == (inputs / "me.png").read_bytes()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["me.rdance", "x_preview.png"]


def test_the_new_track_never_goes_inside_an_input_track(inputs: Path, weights: Path, tmp_path: Path) -> None:
    """--out dance.rdance/mine.rdance was written there, where extracting the dance again with --force
    (or the reference picture's track, once the picture changed) removes it with the track's files."""
    driver = shutil.copytree(inputs / "dance.rdance", tmp_path / "dance.rdance")
    for out in (driver / "mine.rdance", inputs / "me.rdance" / "deeper" / "mine.rdance"):
        done = rdance("retarget", driver, inputs / "me.rdance", "--out", out, "--weights", weights)
        track = driver if driver in out.parents else inputs / "me.rdance"
        assert_user_error(
            done, f"--out {out} lies inside the pose track {track}, which an extraction again may empty"
        )
        assert not out.exists() and not (inputs / "me.rdance" / "deeper").exists()
    assert sorted(path.name for path in driver.iterdir()) == ["mano.npz", "meta.json", "smplx.npz"]
