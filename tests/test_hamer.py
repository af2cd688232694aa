"""HaMeR against the original code's outputs (`../shared/golden/hamer/`): crops, network, cameras."""

from __future__ import annotations

import json
import pickle
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import GOLDEN, assert_user_error, need, rdance, write_hamer_config, write_video

from realisdance_cli.bodies import hand_joints, mano_layer
from realisdance_cli.errors import UserError
from realisdance_cli.extractors.hamer.loading import load_hamer
from realisdance_cli.extractors.hamer.network import Hamer
from realisdance_cli.extractors.hand_estimator import HandEstimator, crop_hand, hand_boxes
from realisdance_cli.geometry.cameras import (
    full_frame_focal,
    full_frame_translation,
    project,
    weak_perspective_translation,
)
from realisdance_cli.track import Track
from realisdance_cli.video import read_frames

TOLERANCE = {"atol": 1e-4, "rtol": 1e-4}
CASE = GOLDEN / "hamer"


@pytest.fixture(scope="module")
def config() -> dict:
    return json.loads((need(CASE) / "CONFIG.json").read_text())


@pytest.fixture(scope="module")
def case() -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(need(CASE) / "hamer_case.safetensors")


@pytest.fixture(scope="module")
def config_path(config: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_hamer_config(config, tmp_path_factory.mktemp("hamer") / "model_config.yaml")


@pytest.fixture(scope="module")
def model(config_path: Path) -> Hamer:
    return load_hamer(CASE / "hamer_tiny.ckpt", config_path)


def test_sizes_come_from_the_files(model: Hamer, config: dict) -> None:
    backbone, decoder = config["backbone"], config["mano_head"]["transformer_decoder"]
    assert model.config.backbone.embed_dim == backbone["embed_dim"]
    assert len(model.backbone.blocks) == backbone["depth"]
    assert model.config.decoder.dim == decoder["dim"]
    assert len(model.mano_head.transformer.transformer.layers) == decoder["depth"]


def test_crops_match_the_original_preprocessing(model: Hamer, case: dict, config: dict) -> None:
    frame = cv2.imread(str(CASE / "frame.png"))
    assert config["rescale_factor"] == 2.0
    for i, (box, right) in enumerate(zip(case["boxes"].numpy(), case["right"].numpy(), strict=True)):
        crop = crop_hand(frame, box, bool(right), model.config)
        np.testing.assert_allclose(crop.center, case["box_center"][i].numpy(), atol=1e-4)
        assert abs(crop.size - float(case["box_size"][i])) < 1e-3
        torch.testing.assert_close(torch.from_numpy(crop.pixels), case["img"][i], **TOLERANCE)
    assert case["img_size"][0].tolist() == [frame.shape[1], frame.shape[0]]


def test_network_and_mano_match_the_original(model: Hamer, case: dict) -> None:
    layer = mano_layer(CASE / "mano" / "MANO_RIGHT.pkl")
    with torch.no_grad():
        rotations, betas, cam = model(case["img"])
        hands = layer(global_orient=rotations[:, :1], hand_pose=rotations[:, 1:], betas=betas)
        joints = hand_joints(hands)  # in the crop's (possibly flipped) frame, as HaMeR gives them
    focal, size = model.config.focal_length, model.config.image_size
    cam_t = weak_perspective_translation(cam, focal, size)
    expected = {
        "global_orient": rotations[:, :1],
        "hand_pose": rotations[:, 1:],
        "betas": betas,
        "pred_cam": cam,
        "pred_cam_t": cam_t,
        "pred_vertices": hands.vertices,
        "pred_keypoints_3d": joints,
        "pred_keypoints_2d": project(joints + cam_t[:, None], focal / size),
    }
    for name, value in expected.items():
        torch.testing.assert_close(value, case[name], **TOLERANCE, msg=name)


def test_full_frame_camera_and_unflipped_vertices_match(case: dict, model: Hamer) -> None:
    sign = 2 * case["right"] - 1
    cam = case["pred_cam"].clone()
    cam[:, 1] *= sign
    width, height = case["img_size"][0].tolist()
    focal = full_frame_focal(model.config.focal_length, model.config.image_size, int(width), int(height))
    assert focal == pytest.approx(float(case["focal"][0]), rel=1e-6)
    full = full_frame_translation(cam, case["box_center"], case["box_size"], case["img_size"], focal)
    torch.testing.assert_close(full, case["cam_t_full"], **TOLERANCE)
    unflipped = case["pred_vertices"].clone()
    unflipped[:, :, 0] *= sign[:, None]
    torch.testing.assert_close(unflipped, case["vertices_unflipped"], **TOLERANCE)


def test_hands_without_extent_are_kept_unestimated_beside_estimated_ones(model: Hamer, case: dict) -> None:
    """Per frame, every hand DWPose saw, left first: one whose box has no extent keeps the neutral
    record (identity rotations, `valid` false), the others get the network's outputs for their crop."""
    frame_bgr = cv2.imread(str(CASE / "frame.png"))
    right = int(np.flatnonzero(case["right"].numpy())[0])
    x0, y0, x1, y1 = case["boxes"][right].tolist()
    keypoints, scores = np.full((1, 134, 2), np.nan), np.zeros((1, 134))
    keypoints[0, 92:96], scores[0, 92:96] = [50.0, 60.0], 0.9  # a left hand shrunk to one point
    keypoints[0, 113:117], scores[0, 113:117] = [[x0, y0], [x1, y1], [x0, y1], [x1, y0]], 0.9
    nobody = {"keypoints": np.zeros((0, 134, 2)), "scores": np.zeros((0, 134)), "box": np.zeros((0, 4))}
    person = {"keypoints": keypoints, "scores": scores, "box": np.array([[0.0, 0.0, 100.0, 100.0]])}
    frame = np.ascontiguousarray(frame_bgr[:, :, ::-1])
    empty, hands = HandEstimator(model, torch.device("cpu"), torch.float32)([frame, frame], [nobody, person])
    assert all(len(values) == 0 for values in empty.values())
    assert hands["is_right"].tolist() == [False, True] and hands["valid"].tolist() == [False, True]
    np.testing.assert_array_equal(hands["box"], [[50, 60, 50, 60], [x0, y0, x1, y1]])
    np.testing.assert_array_equal(hands["hand_pose"][0], np.broadcast_to(np.eye(3), (15, 3, 3)))
    assert not hands["betas"][0].any() and not hands["cam_t_full"][0].any()
    with torch.no_grad():
        rotations, betas, cam = model(
            torch.from_numpy(crop_hand(frame_bgr, hands["box"][1], True, model.config).pixels)[None]
        )
    torch.testing.assert_close(torch.from_numpy(hands["hand_pose"][1]), rotations[0, 1:], **TOLERANCE)
    torch.testing.assert_close(torch.from_numpy(hands["betas"][1]), betas[0], **TOLERANCE)
    torch.testing.assert_close(torch.from_numpy(hands["cam_crop"][1]), cam[0], **TOLERANCE)


def test_release_style_checkpoint_with_a_yacs_config_loads(config_path: Path, tmp_path: Path) -> None:
    """The real file also pickles a yacs CfgNode and the discriminator; neither needs yacs here."""
    raw = torch.load(CASE / "hamer_tiny.ckpt", weights_only=True)
    yacs = types.ModuleType("yacs.config")

    class CfgNode(dict):
        pass

    CfgNode.__module__, CfgNode.__qualname__ = "yacs.config", "CfgNode"
    yacs.CfgNode = CfgNode  # type: ignore[attr-defined]
    sys.modules["yacs"] = types.ModuleType("yacs")
    sys.modules["yacs.config"] = yacs
    try:
        node = CfgNode(MODEL=CfgNode(IMAGE_SIZE=256))
        node.__dict__["__immutable__"] = True
        raw["hyper_parameters"] = {"cfg": node}
        raw["state_dict"]["discriminator.D_conv1.weight"] = torch.zeros(32, 9, 1, 1)
        path = tmp_path / "hamer.ckpt"
        torch.save(raw, path)
    finally:
        del sys.modules["yacs.config"], sys.modules["yacs"]
    model = load_hamer(path, config_path)
    assert model.mano_head.decpose.weight.shape[0] == 96


def test_hostile_checkpoint_is_refused(config_path: Path, tmp_path: Path) -> None:
    class Exploit:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (print, ("pwned",))

    path = tmp_path / "hamer.ckpt"
    path.write_bytes(pickle.dumps({"state_dict": Exploit()}))
    with pytest.raises(UserError, match=r"not the zip archive torch\.save writes"):  # and not run
        load_hamer(path, config_path)


def test_checkpoint_that_does_not_fit_the_config_is_named(config: dict, tmp_path: Path) -> None:
    wrong = json.loads(json.dumps(config))
    wrong["mano_head"]["transformer_decoder"]["depth"] = 3
    path = write_hamer_config(wrong, tmp_path / "model_config.yaml")
    with pytest.raises(UserError, match="missing"):
        load_hamer(CASE / "hamer_tiny.ckpt", path)


# -- rdance extract -> render-poses with the tiny golden DWPose and the steered HaMeR ------------


@pytest.mark.slow
def test_extract_then_render_draws_the_hands_in_their_boxes(extraction_weights: Path, tmp_path: Path) -> None:
    """HaMeR's outputs are steered (conftest `steer_hamer`): every hand at rest, of mean shape,
    with the mean crop scale and no offset, so each hand, a blob centred on MANO's origin, must be
    drawn centred on its box whatever the random weights."""
    person = cv2.imread(str(need(GOLDEN / "dwpose" / "person_960x540.png")))[:, :, ::-1]
    video = write_video(tmp_path / "clip.mp4", [person] * 3, fps=25)
    weights = ["--weights", extraction_weights]
    done = rdance("extract", video, *weights, "--chunk", "2", "--only", "dwpose,hamer")
    assert done.returncode == 0, done.stderr
    assert "hamer: done, 3 frames, 3 with hands (6 hands, 2.0 per frame)" in done.stdout
    track = Track.open(tmp_path / "clip.rdance")
    hands, poses = track.load("mano"), track.load("dwpose")
    assert hands.items_per_frame().tolist() == [2, 2, 2]
    first = hands.frame(0)
    expected = hand_boxes(poses.frame(0)["keypoints"], poses.frame(0)["scores"])
    assert first["is_right"].tolist() == [False, True] == [h.right for h in expected]
    np.testing.assert_allclose(first["box"], np.stack([h.box for h in expected]), rtol=1e-6)
    assert first["valid"].all() and np.isfinite(first["cam_t_full"]).all()
    rest = np.broadcast_to(np.eye(3), first["hand_pose"].shape)
    np.testing.assert_allclose(first["hand_pose"], rest, atol=1e-6)  # the steering took
    np.testing.assert_allclose(first["betas"], 0, atol=1e-6)
    again = rdance("extract", video, *weights, "--only", "dwpose,hamer")
    assert "dwpose: already done" in again.stdout and "hamer: already done" in again.stdout

    rendered = rdance("render-poses", tmp_path / "clip.rdance", "--only", "hamer", *weights, "--lossless")
    assert rendered.returncode == 0, rendered.stderr
    frames = read_frames(tmp_path / "clip.rdance" / "hamer.mp4")
    assert len(frames) == 3 and frames[0].shape == person.shape
    picture = frames[0].astype(int)
    for box, is_right in zip(first["box"], first["is_right"], strict=True):
        red, green = picture[..., 0], picture[..., 1]
        ours = (red > green + 30) if is_right else (green > red + 30)  # right (1,.5,.5), left (.5,1,.5)
        ys, xs = np.nonzero(ours)
        assert len(ys) > 100
        x0, y0, x1, y1 = box
        assert x0 <= np.median(xs) <= x1 and y0 <= np.median(ys) <= y1
        # centred on the box (rasterisation rounds by a pixel either way)
        assert abs(np.median(xs) - (x0 + x1) / 2) <= 2 and abs(np.median(ys) - (y0 + y1) / 2) <= 2


@pytest.mark.slow
def test_missing_hand_weights_are_named_before_anything_runs(
    extraction_weights: Path, tmp_path: Path
) -> None:
    root = tmp_path / "weights"
    (root / "dwpose").mkdir(parents=True)
    for name in ("yolox_l.onnx", "dw-ll_ucoco_384.onnx"):
        (root / "dwpose" / name).symlink_to((extraction_weights / "dwpose" / name).resolve())
    video = write_video(tmp_path / "clip.mp4", [np.zeros((64, 64, 3), np.uint8)], fps=25)
    done = rdance("extract", video, "--weights", root)
    assert_user_error(done, "hamer.ckpt", "model_config.yaml", "MANO_RIGHT.pkl", "mano.is.tue.mpg.de")
    assert not (tmp_path / "clip.rdance").exists()
    only = rdance("extract", video, "--weights", extraction_weights, "--only", "hamer")
    assert_user_error(only, "DWPose")


def test_a_hand_needs_more_than_six_known_coordinates() -> None:
    keypoints = np.full((1, 134, 2), np.nan)
    scores = np.zeros((1, 134))
    keypoints[0, 92:96] = [[10, 20], [30, 5], [12, 40], [50, 50]]  # four left-hand points
    scores[0, 92:96] = [0.9, 0.9, 0.9, 0.2]  # the fourth is too unsure to count
    keypoints[0, 113:117] = [[100, 100], [110, 120], [90, 130], [105, 95]]
    scores[0, 113:117] = 0.5
    (right,) = hand_boxes(keypoints, scores)  # left: 3 points = 6 coordinates, not enough
    assert right.right and right.box.tolist() == [90, 95, 110, 130]
    scores[0, 95] = 0.3
    left, _ = hand_boxes(keypoints, scores)
    assert not left.right and left.box.tolist() == [10, 5, 50, 50]


@pytest.mark.parametrize("damage", [None, "truncated", "missing key"])
def test_the_mean_parameters_file_is_read_or_named(
    config_path: Path, tmp_path: Path, damage: str | None
) -> None:
    """A checkpoint without the mean MANO buffers takes them from mano_mean_params.npz."""
    raw = torch.load(CASE / "hamer_tiny.ckpt", weights_only=True)
    means = {"pose": "init_hand_pose", "shape": "init_betas", "cam": "init_cam"}
    kept = {name: raw["state_dict"].pop(f"mano_head.{key}") for name, key in means.items()}
    checkpoint = tmp_path / "hamer.ckpt"
    torch.save(raw, checkpoint)
    path = tmp_path / "mano_mean_params.npz"
    if damage == "truncated":
        path.write_bytes((CASE / "mano_mean_params.npz").read_bytes()[:600])
    elif damage == "missing key":
        np.savez(path, pose=np.zeros(96, np.float32), shape=np.zeros(10, np.float32))
    else:
        np.savez(path, **{name: value[0].numpy() for name, value in kept.items()})
    if damage is None:
        model = load_hamer(checkpoint, config_path, path)
        for name, key in means.items():
            torch.testing.assert_close(getattr(model.mano_head, key), kept[name])
        return
    with pytest.raises(UserError) as caught:
        load_hamer(checkpoint, config_path, path)
    message = str(caught.value)
    assert message.startswith(str(path)) and "`rdance weights download hamer`" in message
    assert ("lacks cam" in message) == (damage == "missing key") and "\n" not in message


@pytest.mark.slow
@pytest.mark.parametrize("carried", [True, False], ids=["checkpoint with the means", "checkpoint without"])
def test_the_mean_parameters_file_is_needed_only_when_the_checkpoint_lacks_them(
    config_path: Path, tmp_path: Path, carried: bool
) -> None:
    """The released checkpoint holds the mean MANO parameters, which loading reads from it:
    `weights check`, `weights download` and `doctor` then ask for no mano_mean_params.npz."""
    raw = torch.load(CASE / "hamer_tiny.ckpt", weights_only=True)
    if not carried:
        for key in ("init_hand_pose", "init_betas", "init_cam"):
            del raw["state_dict"][f"mano_head.{key}"]
    checkpoint = tmp_path / "w" / "hamer" / "hamer.ckpt"
    checkpoint.parent.mkdir(parents=True)
    torch.save(raw, checkpoint)
    (checkpoint.parent / "model_config.yaml").write_bytes(config_path.read_bytes())
    root = ["--weights", tmp_path / "w"]
    check, download = (rdance("weights", command, "hamer", *root) for command in ("check", "download"))
    doctor = rdance("doctor", *root, env={"COLUMNS": "250"})
    checked, downloaded, summary = (
        " ".join(text.split()) for text in (check.stdout, download.stdout + download.stderr, doctor.stderr)
    )
    if carried:
        assert check.returncode == 0, checked
        assert f"ok hamer-mean not needed: {checkpoint} holds the mean MANO parameters" in checked
        assert download.returncode == 0 and f"not needed hamer-mean: {checkpoint} holds" in downloaded
        assert "get mano, smplx by hand" in summary, summary
    else:
        assert check.returncode == 1 and "missing hamer-mean" in checked
        assert download.returncode == 1 and "by hand hamer-mean" in downloaded
        assert "get hamer, mano, smplx by hand" in summary, summary
