"""SMPLer-X against the original code's outputs (`../shared/golden/smplerx/`): crop, network, camera."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import GOLDEN, assert_user_error, need, rdance, write_video

from realisdance_cli.errors import UserError
from realisdance_cli.extractors.body_estimator import BodyEstimator, crop_person, process_box
from realisdance_cli.extractors.roi_align import roi_align
from realisdance_cli.extractors.smplerx.loading import load_smplerx
from realisdance_cli.extractors.smplerx.network import SmplerX
from realisdance_cli.geometry.cameras import crop_camera_in_frame
from realisdance_cli.track import Track
from realisdance_cli.video import read_frames

TOLERANCE = {"atol": 1e-4, "rtol": 1e-4}
CASE = GOLDEN / "smplerx"


@pytest.fixture(scope="module")
def config() -> dict:
    return json.loads((need(CASE) / "CONFIG.json").read_text())


@pytest.fixture(scope="module")
def case() -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(need(CASE) / "smplerx_case.safetensors")


@pytest.fixture(scope="module")
def checkpoint(config: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny checkpoint with CONFIG.json beside it (the encoder's head count lives only there)."""
    folder = tmp_path_factory.mktemp("smplerx")
    (folder / "smpler_x_h32.pth.tar").symlink_to(CASE / "smpler_x_tiny.pth.tar")
    (folder / "config.json").write_text(json.dumps(config))
    return folder / "smpler_x_h32.pth.tar"


@pytest.fixture(scope="module")
def model(checkpoint: Path) -> SmplerX:
    return load_smplerx(checkpoint)


def test_sizes_come_from_the_files(model: SmplerX, config: dict) -> None:
    c = model.config
    assert c.feat_dim == config["feat_dim"] and c.upscale == config["upscale"]
    assert c.encoder.num_heads == config["encoder"]["num_heads"]
    assert c.encoder.task_tokens == config["encoder"]["task_tokens_num"]
    assert len(model.encoder.blocks) == config["encoder"]["depth"]
    for key in ("input_img_shape", "input_body_shape", "output_hm_shape", "output_hand_hm_shape", "focal"):
        assert list(getattr(c, key)) == config[key], key


def test_person_crop_matches_the_original(model: SmplerX, case: dict) -> None:
    frame = cv2.imread(str(CASE / "frame.png"))
    x0, y0, x1, y1 = case["det_box_xyxy"].tolist()
    box = process_box(
        np.array([x0, y0, abs(x1 - x0), abs(y1 - y0)]), frame.shape[1], frame.shape[0], model.config
    )
    assert box is not None
    np.testing.assert_allclose(box, case["processed_bbox_xywh"].numpy(), rtol=1e-6)
    torch.testing.assert_close(
        torch.from_numpy(crop_person(frame, box, model.config))[None], case["patch"], **TOLERANCE
    )
    c = model.config
    focal, princpt = crop_camera_in_frame(c.focal, c.princpt, c.input_body_shape, box)
    np.testing.assert_allclose(focal, case["focal"].numpy(), rtol=1e-5)
    np.testing.assert_allclose(princpt, case["princpt"].numpy(), rtol=1e-5)


def test_network_matches_the_original(model: SmplerX, case: dict) -> None:
    with torch.no_grad():
        out = model(case["patch"])
    expected = {
        "smplx_root_pose": out.root_pose,
        "smplx_body_pose": out.body_pose,
        "smplx_lhand_pose": out.lhand_pose,
        "smplx_rhand_pose": out.rhand_pose,
        "smplx_jaw_pose": out.jaw_pose,
        "smplx_shape": out.shape,
        "smplx_expr": out.expression,
        "cam_trans": out.cam_trans,
        "lhand_bbox": out.lhand_box,
        "rhand_bbox": out.rhand_box,
        "face_bbox": out.face_box,
        "joint_img": out.joint_img,
    }
    for name, value in expected.items():
        torch.testing.assert_close(value, case[name], **TOLERANCE, msg=name)


def test_old_key_names_load_like_the_original_loader(checkpoint: Path, tmp_path: Path, config: dict) -> None:
    raw = torch.load(checkpoint, weights_only=True)
    renamed = {}
    for key, value in raw["network"].items():
        key = key.removeprefix("module.").replace("encoder", "backbone", 1)
        renamed[
            key.replace("body_regressor", "body_rotation_net").replace("hand_regressor", "hand_rotation_net")
        ] = value
    path = tmp_path / "old.pth.tar"
    torch.save({"epoch": 1, "network": renamed}, path)
    (tmp_path / "config.json").write_text(json.dumps(config))
    old = load_smplerx(path)
    assert torch.equal(
        old.body_regressor.cam_out[0].weight, raw["network"]["module.body_regressor.cam_out.0.weight"]
    )


def test_incomplete_checkpoint_is_refused_with_the_keys(
    checkpoint: Path, tmp_path: Path, config: dict
) -> None:
    raw = torch.load(checkpoint, weights_only=True)
    del raw["network"]["module.face_regressor.expr_out.0.weight"]
    path = tmp_path / "broken.pth.tar"
    torch.save(raw, path)
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match=r"face_regressor\.expr_out\.0\.weight"):
        load_smplerx(path)


def test_roi_align_follows_mmcv_on_a_hand_computed_case() -> None:
    """A 2x2 output over the box (0.5, 0.5)-(2.5, 2.5) of a ramp: one sample per bin, at the bin centres."""
    features = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)  # value = 4y + x
    out = roi_align(features, torch.tensor([[0.0, 0.5, 0.5, 2.5, 2.5]]), (2, 2))
    centres = torch.tensor([1.0, 2.0])  # bin centres: 0.5 + 0.5, 0.5 + 1.5
    torch.testing.assert_close(out[0, 0], 4 * centres[:, None] + centres[None, :])
    # beyond the far edge a sample is zero; a box smaller than a pixel still spans one
    out = roi_align(features, torch.tensor([[0.0, 3.0, 3.0, 3.2, 3.2], [0.0, 4.6, 0.0, 5.6, 1.0]]), (1, 1))
    assert out[0, 0, 0, 0] == 15.0 and out[1, 0, 0, 0] == 0.0


# -- rdance extract (all three stages) -> render-poses --------------------------------------------


@pytest.mark.slow
def test_extract_then_render_draws_the_body_in_its_box(extraction_weights: Path, tmp_path: Path) -> None:
    person = cv2.imread(str(need(GOLDEN / "dwpose" / "person_960x540.png")))[:, :, ::-1]
    video = write_video(tmp_path / "clip.mp4", [person] * 3, fps=25)
    done = rdance("extract", video, "--weights", extraction_weights)
    assert done.returncode == 0, done.stderr
    assert "smplerx: done, 3 frames, 3 with a person" in done.stdout
    track = Track.open(tmp_path / "clip.rdance")
    people = track.load("smplx")
    assert people.items_per_frame().tolist() == [1, 1, 1] and people.fields["valid"].all()
    x, y, w, h = people.frame(0)["bbox"][0]
    x0, y0, x1, y1 = track.load("dwpose").frame(0)["box"][0]
    assert w >= x1 - x0 and h >= y1 - y0  # grown from the DWPose person box

    rendered = rdance("render-poses", track.path, "--weights", extraction_weights, "--lossless")
    assert rendered.returncode == 0, rendered.stderr
    for name in ("dwpose", "smpl", "hamer"):
        assert len(read_frames(track.path / f"{name}.mp4")) == 3, name
    body = read_frames(track.path / "smpl.mp4")[0]
    drawn = body.any(-1)
    assert drawn.sum() > 1000 and not body[..., 1:].any()  # the table's colour (red), shaded
    ys, xs = np.nonzero(drawn)
    assert x <= np.median(xs) <= x + w and y <= np.median(ys) <= y + h


@pytest.mark.slow
def test_missing_smplerx_files_are_named_with_the_licence(extraction_weights: Path, tmp_path: Path) -> None:
    root = tmp_path / "weights"
    root.mkdir()
    for name in ("dwpose", "hamer", "mano"):
        (root / name).symlink_to((extraction_weights / name).resolve())
    video = write_video(tmp_path / "clip.mp4", [np.zeros((64, 64, 3), np.uint8)], fps=25)
    done = rdance("extract", video, "--weights", root)
    assert_user_error(
        done, "smpler_x_h32.pth.tar", "SMPLX_NEUTRAL.npz", "smpl-x.is.tue.mpg.de", "rdance weights"
    )


def test_people_in_boxes_under_50x150_are_skipped_but_kept(model: SmplerX) -> None:
    frame = np.full((480, 640, 3), 90, np.uint8)
    boxes = np.array([[100.0, 50.0, 300.0, 450.0], [400.0, 100.0, 440.0, 400.0]])  # the second: 40 wide
    (record,) = BodyEstimator(model, torch.device("cpu"), torch.float32)(
        [frame], [{"box": boxes, "keypoints": np.zeros((2, 134, 2)), "scores": np.zeros((2, 134))}]
    )
    assert record["valid"].tolist() == [True, False]
    assert record["bbox"][1].tolist() == [400, 100, 40, 300] and not record["transl"][1].any()
    assert record["focal"][0].min() > 0 and record["transl"][0, 2] > 0
