"""`rdance render-poses` for smpl.mp4 and hamer.mp4: meshes from a track, where and how they appear."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import GOLDEN, assert_user_error, need, rdance, write_video
from scipy import ndimage

from realisdance_cli.bodies import mano_layer, smplx_model, smplx_vertices
from realisdance_cli.files import file_sha256
from realisdance_cli.track import SourceInfo, Stream, Track
from realisdance_cli.video import FrameSource

HEIGHT, WIDTH = 240, 320
HAND_FOCAL = 5000 / 256 * max(HEIGHT, WIDTH)


def new_track(path: Path, frames: int) -> Track:
    source = SourceInfo("dance.mp4", "0" * 64, width=WIDTH, height=HEIGHT, frame_count=frames, fps=10)
    return Track.create(path, source)


def hand(is_right: bool, cam_t: tuple[float, float, float]) -> dict[str, np.ndarray]:
    eye = np.eye(3, dtype=np.float32)
    return {
        "is_right": np.array([is_right]),
        "global_orient": eye[None, None],
        "hand_pose": np.broadcast_to(eye, (1, 15, 3, 3)).copy(),
        "betas": np.zeros((1, 10)),
        "cam_crop": np.zeros((1, 3)),
        "cam_t_full": np.array([cam_t]),
        "focal": np.array([HAND_FOCAL]),
        "box": np.zeros((1, 4)),
        "valid": np.array([True]),
    }


def merge(*items: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([item[key] for item in items]) for key in items[0]}


def project(vertices: np.ndarray, fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    return np.stack([fx * vertices[:, 0] / vertices[:, 2] + cx, fy * vertices[:, 1] / vertices[:, 2] + cy], 1)


@pytest.fixture(scope="module")
def mano_file() -> Path:
    return need(GOLDEN / "hamer" / "mano" / "MANO_RIGHT.pkl")


def hand_vertices(mano_file: Path) -> np.ndarray:
    layer = mano_layer(mano_file)
    eye = torch.eye(3)
    out = layer(
        global_orient=eye.view(1, 1, 3, 3), hand_pose=eye.expand(1, 15, 3, 3), betas=torch.zeros(1, 10)
    )
    return out.vertices[0].numpy()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["osmesa", "egl"])
def test_hands_appear_where_they_project_in_their_colours(
    mano_file: Path, tmp_path: Path, backend: str
) -> None:
    track = new_track(tmp_path / "t.rdance", 3)
    right, left = hand(True, (0.25, 0.0, 40.0)), hand(False, (-0.25, 0.0, 40.0))
    nothing = {key: value[:0] for key, value in right.items()}
    track.write(
        "mano", Stream.from_frames("mano", [merge(right, left), nothing, right]), weights={}, options={}
    )
    done = rdance(
        "render-poses", track.path, "--only", "hamer", "--mano-model", mano_file, "--lossless",
        env={"RDANCE_GL": backend},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    frames = list(FrameSource(track.path / "hamer.mp4"))
    assert len(frames) == 3 and frames[0].shape == (HEIGHT, WIDTH, 3)
    assert not frames[1].any()  # no hands: a black frame

    def colours(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        picture = frame.astype(int)
        red = (picture[..., 0] > picture[..., 1] + 40) & (abs(picture[..., 1] - picture[..., 2]) < 12)
        green = (picture[..., 1] > picture[..., 0] + 40) & (abs(picture[..., 0] - picture[..., 2]) < 12)
        return red, green

    red, green = colours(frames[0])
    assert red.sum() > 50 and green.sum() > 50
    vertices = hand_vertices(mano_file)
    cx, cy = WIDTH / 2, HEIGHT / 2
    for mask, mesh, cam_t in (
        (red, vertices, right["cam_t_full"][0]),
        (green, vertices * [-1, 1, 1], left["cam_t_full"][0]),
    ):
        expected = project(mesh + cam_t, HAND_FOCAL, HAND_FOCAL, cx, cy)
        ys, xs = np.nonzero(mask)
        assert abs(xs.mean() - expected[:, 0].mean()) < 3 and abs(ys.mean() - expected[:, 1].mean()) < 3
    # The left hand is the right one mirrored about the centre column.
    mirrored = red[:, ::-1]
    assert (mirrored & green).sum() / (mirrored | green).sum() > 0.9
    alone_red, alone_green = colours(frames[2])  # the right hand alone, with the same camera
    assert not alone_green.any() and np.array_equal(alone_red, red)


def body(transl: tuple[float, float, float], focal: float = 500.0) -> dict[str, np.ndarray]:
    zeros = {name: np.zeros((1, 3)) for name in ("jaw_pose", "leye_pose", "reye_pose")}
    return {
        **zeros,
        "global_orient": np.array([[np.pi, 0.0, 0.0]]),  # upright in a camera whose y points down
        "body_pose": np.zeros((1, 21, 3)),
        "left_hand_pose": np.zeros((1, 15, 3)),
        "right_hand_pose": np.zeros((1, 15, 3)),
        "betas": np.zeros((1, 10)),
        "expression": np.zeros((1, 10)),
        "transl": np.array([transl]),
        "focal": np.array([[focal, focal]]),
        "princpt": np.array([[WIDTH / 2, HEIGHT / 2]]),
        "bbox": np.zeros((1, 4)),
        "valid": np.array([True]),
    }


def small_person_track(tmp_path: Path) -> tuple[Path, Track]:
    """A video of 3 frames and its finished track in which DWPose found a person in every frame,
    whose 20x40 px box SMPLer-X was not given (kept with `valid` false, as extract keeps it)."""
    video = write_video(tmp_path / "my dance.mp4", [np.zeros((64, 64, 3), np.uint8)] * 3, fps=25)
    info = SourceInfo(str(video.resolve()), file_sha256(video), width=64, height=64, frame_count=3, fps=25)
    track = Track.create(tmp_path / "my dance.rdance", info)
    box = np.array([[10.0, 10.0, 20.0, 40.0]])
    person = {"keypoints": np.full((1, 134, 2), 20.0), "scores": np.ones((1, 134)), "box": box}
    track.write("dwpose", Stream.from_frames("dwpose", [person] * 3), weights={}, options={})
    small = body((0.0, 0.0, 4.0)) | {"bbox": box, "valid": np.array([False])}
    smplx = Stream.from_frames("smplx", [small] * 3)
    track.write("smplx", smplx, weights={}, options={"dtype": "float32", "dwpose": {}})
    return video, track


def test_a_black_smpl_video_is_said_with_why(smplx_file: Path, tmp_path: Path) -> None:
    """A track whose SMPL-X stream found nobody makes a black smpl.mp4, which animate would take
    silently: render-poses says so once, and that DWPose's person was too small for SMPL-X."""
    _, track = small_person_track(tmp_path)
    done = rdance("render-poses", track.path, "--only", "smpl", "--smplx-model", smplx_file)
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stderr.split())
    assert (
        "smpl.mp4 is black: the track's SMPL-X stream found nobody in any frame; DWPose found only a "
        "person too small for SMPL-X (box under 50x150 px); animate's result follows no SMPL-X pose from it"
    ) in said
    assert said.count("is black") == 1
    assert not any(frame.any() for frame in FrameSource(track.path / "smpl.mp4"))


@pytest.mark.slow
def test_body_silhouette_matches_its_projected_vertices(smplx_file: Path, tmp_path: Path) -> None:
    model = smplx_model(smplx_file)
    person = body((0.0, 0.0, 0.0))
    with np.load(smplx_file) as data:  # flat hands (poses are relative to the mean): the template's shape
        person["left_hand_pose"] = -data["hands_meanl"].reshape(1, 15, 3)
        person["right_hand_pose"] = -data["hands_meanr"].reshape(1, 15, 3)
    centre = smplx_vertices(model, person)[0].mean(0)
    person["transl"] = np.array([[0.1, 0.0, 4.0]]) - centre  # the whole body in view, 4 m away
    track = new_track(tmp_path / "t.rdance", 2)
    nobody = {key: value[:0] for key, value in person.items()}
    track.write("smplx", Stream.from_frames("smplx", [person, nobody]), weights={}, options={})
    red_table = np.zeros((10475, 3), np.uint8)
    red_table[:, 0] = 255
    torch.save(red_table, tmp_path / "red.pt")
    done = rdance(
        "render-poses", track.path, "--only", "smpl", "--smplx-model", smplx_file, "--smplx-colors",
        tmp_path / "red.pt", "--lossless", "--size", f"{2 * HEIGHT}x{2 * WIDTH}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    frames = list(FrameSource(track.path / "smpl.mp4"))
    assert len(frames) == 2 and not frames[1].any()
    picture = frames[0]
    drawn = picture.any(-1)
    assert picture[drawn, 0].min() > 0 and not picture[..., 1:].any()  # the table's colour, shaded
    vertices = smplx_vertices(model, person)[0][np.unique(model.faces)]  # the vertices faces use
    points = np.round(project(vertices, 1000, 1000, WIDTH, HEIGHT)).astype(int)  # --size doubles the camera
    assert points.min() >= 0 and (points < [2 * WIDTH, 2 * HEIGHT]).all()
    # Outline vertices round either way, and multisampled (EGL) edges shift by up to a pixel more:
    # every vertex lies within two pixels of the drawn body.
    near = ndimage.binary_dilation(drawn, iterations=2, structure=np.ones((3, 3), bool))
    inside = near[points[:, 1], points[:, 0]]
    assert inside.all(), f"{(~inside).sum()} vertices project outside the picture of the body"
    ys, xs = np.nonzero(drawn)
    assert abs(xs.min() - points[:, 0].min()) <= 2 and abs(xs.max() - points[:, 0].max()) <= 2
    assert abs(ys.min() - points[:, 1].min()) <= 2 and abs(ys.max() - points[:, 1].max()) <= 2


@pytest.mark.slow
def test_later_people_are_drawn_over_earlier_ones(smplx_file: Path, tmp_path: Path) -> None:
    """The original overlays each person's picture in turn, whatever their depth: where two
    bodies overlap, the later one shows even when it is farther away.

    The pictures compared are drawn from the very same vertices. SMPL-X poses a frame's people
    in one batch, and float32 CPU kernels may round a batch of two differently from a batch of
    one (on AVX2 machines by up to 5e-7 m here, which changes a few edge pixels by a few levels).
    So each body is drawn "alone" beside the other one moved behind the camera, where nothing of
    it is drawn: the same SMPL-X batch (translations are added after it), one visible body."""
    near, far = body((-0.15, 0.2, 4.0)), body((0.15, 0.2, 5.0))

    def behind(person: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {**person, "transl": person["transl"] * [1.0, 1.0, -1.0]}

    hidden = smplx_vertices(smplx_model(smplx_file), merge(behind(near), behind(far)))
    assert (hidden[..., 2] < 0).all()  # every vertex behind the camera
    pictures = {}
    for name, people in (("near", [near, behind(far)]), ("far", [behind(near), far]), ("both", [near, far])):
        track = new_track(tmp_path / f"{name}.rdance", 1)
        track.write("smplx", Stream.from_frames("smplx", [merge(*people)]), weights={}, options={})
        done = rdance("render-poses", track.path, "--only", "smpl", "--smplx-model", smplx_file, "--lossless")
        assert done.returncode == 0, done.stderr
        pictures[name] = next(iter(FrameSource(track.path / "smpl.mp4")))
    near_drawn, far_drawn = pictures["near"].any(-1), pictures["far"].any(-1)
    overlap = near_drawn & far_drawn
    assert overlap.sum() > 100 and (near_drawn & ~far_drawn).sum() > 100
    assert np.array_equal(pictures["both"][far_drawn], pictures["far"][far_drawn])
    assert np.array_equal(pictures["both"][~far_drawn], pictures["near"][~far_drawn])


@pytest.mark.slow
def test_without_the_colour_table_the_body_is_a_jet_gradient(smplx_file: Path, tmp_path: Path) -> None:
    track = new_track(tmp_path / "t.rdance", 1)
    track.write("smplx", Stream.from_frames("smplx", [body((0.0, 0.2, 4.0))]), weights={}, options={})
    done = rdance(
        "render-poses", track.path, "--smplx-model", smplx_file, "--weights", tmp_path / "none", "--lossless"
    )
    assert done.returncode == 0, done.stderr
    picture = next(iter(FrameSource(track.path / "smpl.mp4"))).astype(int)
    ys, _ = np.nonzero(picture.any(-1))
    top, bottom = picture[ys.min() + 3], picture[ys.max() - 3]
    top, bottom = top[top.any(-1)].mean(0), bottom[bottom.any(-1)].mean(0)
    assert top[0] > top[2] and bottom[2] > bottom[0]  # head red, feet blue


@pytest.mark.slow
def test_streams_are_rendered_in_step(smplx_file: Path, mano_file: Path, tmp_path: Path) -> None:
    track = new_track(tmp_path / "t.rdance", 4)
    track.write("smplx", Stream.from_frames("smplx", [body((0, 0.2, 4.0))] * 4), weights={}, options={})
    track.write("mano", Stream.from_frames("mano", [hand(True, (0, 0, 40))] * 4), weights={}, options={})
    done = rdance("render-poses", track.path, "--smplx-model", smplx_file, "--mano-model", mano_file)
    assert done.returncode == 0, done.stderr
    infos = [FrameSource(track.path / f"{name}.mp4").info for name in ("smpl", "hamer")]
    assert {(i.frame_count, i.fps, i.width, i.height) for i in infos} == {(4, 10, WIDTH, HEIGHT)}
    assert not (track.path / "dwpose.mp4").exists()  # the track has no DWPose stream
    assert_user_error(rdance("render-poses", track.path, "--only", "dwpose"), "no finished dwpose stream")


def test_missing_and_corrupt_body_models(smplx_file: Path, tmp_path: Path) -> None:
    track = new_track(tmp_path / "t.rdance", 1)
    track.write("smplx", Stream.from_frames("smplx", [body((0, 0, 4.0))]), weights={}, options={})
    track.write("mano", Stream.from_frames("mano", [hand(True, (0, 0, 40))]), weights={}, options={})
    done = rdance("render-poses", track.path, "--only", "smpl", "--weights", tmp_path / "empty")
    assert_user_error(done, "SMPLX_NEUTRAL.npz", "https://smpl-x.is.tue.mpg.de")
    done = rdance("render-poses", track.path, "--only", "hamer", "--weights", tmp_path / "empty")
    assert_user_error(done, "MANO_RIGHT.pkl", "https://mano.is.tue.mpg.de")
    (tmp_path / "MANO_RIGHT.pkl").write_bytes(pickle.dumps({"v": 1})[:-5])
    done = rdance("render-poses", track.path, "--only", "hamer", "--mano-model", tmp_path / "MANO_RIGHT.pkl")
    assert_user_error(done, "not a readable pickle")
    assert not (track.path / "hamer.mp4").exists()


def test_the_renderers_loading_is_said_first_and_verbose_names_the_body_model(
    mano_file: Path, tmp_path: Path
) -> None:
    """PyTorch's import, the body model and OpenGL took seconds without a word before the first
    frame; -v did not say which MANO model drew the hands."""
    track = new_track(tmp_path / "t.rdance", 2)
    hands = Stream.from_frames("mano", [hand(True, (0.25, 0.0, 40.0))] * 2)
    track.write("mano", hands, weights={}, options={})
    args = ("render-poses", track.path, "--only", "hamer", "--mano-model", mano_file)
    done = rdance("-v", *args)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == "loading renderers 0/1 (0%)", done.stderr
    said = f"INFO realisdance_cli.rendering: hamer.mp4: the MANO model {mano_file}"
    assert lines.index(said) < lines.index(next(line for line in lines if line.startswith("render ")))
    quiet = rdance("-q", *args, "--out", tmp_path / "quiet")
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
