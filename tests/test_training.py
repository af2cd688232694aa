"""Training: the golden loss step, the stages' trainable sets and inflation."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import GOLDEN, need
from safetensors.torch import load_file

from realisdance_cli.animator.checkpoint import load_network
from realisdance_cli.training.objective import Batch, diffusion_loss, noise_scheduler

TOLERANCE = {"atol": 1e-4, "rtol": 1e-4}
CASE = GOLDEN / "animator"


@pytest.fixture(scope="module")
def unet_config() -> dict:
    return json.loads((need(CASE) / "tiny_sd" / "unet" / "config.json").read_text())


@pytest.fixture(scope="module")
def scheduler_config() -> dict:
    return json.loads((need(CASE) / "tiny_sd" / "scheduler" / "scheduler_config.json").read_text())


def _grad_norm(parameters: list[torch.nn.Parameter]) -> torch.Tensor:
    return torch.sqrt(sum((p.grad.double() ** 2).sum() for p in parameters if p.grad is not None))


@pytest.mark.slow
@pytest.mark.parametrize("branch", ["cond", "drop"])
def test_loss_step_matches_the_original(unet_config: dict, scheduler_config: dict, branch: str) -> None:
    case = load_file(CASE / "train_step_case.safetensors")
    tokens = json.loads((CASE / "tiny_dinov2" / "config.json").read_text())["hidden_size"]
    net = load_network(CASE / "realisdance_tiny.ckpt", unet_config, tokens).train()
    batch = Batch(
        case["latents"],
        case["ref_latents"],
        case["encoder_hidden_states"],
        case["dwpose"],
        case["hamer"],
        case["smpl"],
    )
    scheduler = noise_scheduler(scheduler_config)
    loss, weights = diffusion_loss(
        net, scheduler, batch, case["noise"], case["timesteps"], drop=branch == "drop"
    )
    loss.backward()
    torch.testing.assert_close(weights, case[f"{branch}.snr_weights"], **TOLERANCE)
    torch.testing.assert_close(loss.reshape(1), case[f"{branch}.loss"], **TOLERANCE)
    motion = [p for name, p in net.named_parameters() if "motion_modules." in name]
    everything = list(net.parameters())
    torch.testing.assert_close(
        _grad_norm(motion).float().reshape(1), case[f"{branch}.grad_norm_motion_modules"], **TOLERANCE
    )
    torch.testing.assert_close(
        _grad_norm(everything).float().reshape(1), case[f"{branch}.grad_norm_all"], **TOLERANCE
    )


@pytest.fixture(scope="module")
def base_unet() -> dict[str, torch.Tensor]:
    return load_file(need(CASE) / "tiny_sd" / "unet" / "diffusion_pytorch_model.safetensors")


@pytest.fixture(scope="module")
def motion_checkpoint() -> dict[str, torch.Tensor]:
    """An AnimateDiff-layout motion checkpoint for the tiny UNet (the golden network's modules),
    with a mid-block module as the real `mm_sd_v15_v2.ckpt` has."""
    raw = torch.load(need(CASE / "realisdance_tiny.ckpt"), weights_only=True)["state_dict"]
    prefix = "module.unet_main."
    state = {
        k.removeprefix(prefix): v for k, v in raw.items() if k.startswith(prefix) and "motion_modules." in k
    }
    mid = {
        k.replace("up_blocks.1.", "mid_block.", 1): v
        for k, v in state.items()
        if k.startswith("up_blocks.1.")
    }
    return state | mid


def test_stage1_main_unet_on_one_frame_is_the_2d_unet(unet_config: dict, base_unet: dict) -> None:
    from diffusers import UNet2DConditionModel

    from realisdance_cli.training.stages import stage1_network

    net = stage1_network(unet_config, 48, base_unet).eval()
    plain = UNet2DConditionModel.from_config(unet_config).eval()
    plain.load_state_dict(base_unet)
    torch.manual_seed(0)
    sample, tokens = torch.randn(2, 4, 8, 8), torch.randn(2, 5, unet_config["cross_attention_dim"])
    t = torch.tensor([10, 700])
    with torch.no_grad():
        ours = net.unet_main(sample[:, :, None], t, encoder_hidden_states=tokens).sample[:, :, 0]
        theirs = plain(sample, t, encoder_hidden_states=tokens).sample
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    assert all(torch.equal(v, base_unet[k]) for k, v in net.unet_ref.state_dict().items())


def test_stage2_inflation_keeps_every_2d_weight_and_trains_only_motion(
    unet_config: dict, base_unet: dict, motion_checkpoint: dict
) -> None:
    from realisdance_cli.training.stages import is_motion, select_trainable, stage1_network, stage2_network

    first = stage1_network(unet_config, 48, base_unet)
    trained_in_1 = {name for name, _ in select_trainable(first, 1)}
    assert trained_in_1 and not any(is_motion(n) for n in trained_in_1)
    with torch.no_grad():
        first.pose_guider.block_0_out_proj.weight.add_(1.0)  # as if stage 1 had trained it
    stage1_state = {k: v for k, v in first.state_dict().items() if not is_motion(k)}
    with pytest.warns(UserWarning, match="mid-block"):
        second = stage2_network(unet_config, 48, stage1_state, motion_checkpoint)
    for name, value in second.state_dict().items():
        if not is_motion(name):
            assert torch.equal(value, stage1_state[name]), name
    golden = load_network(CASE / "realisdance_tiny.ckpt", unet_config, 48).state_dict()
    main_motion = [k for k in second.state_dict() if k.startswith("unet_main.") and is_motion(k)]
    assert main_motion and all(torch.equal(second.state_dict()[k], golden[k]) for k in main_motion)
    trained = select_trainable(second, 2)
    assert {n for n, _ in trained} == {n for n, _ in second.named_parameters() if "motion_modules." in n}
    assert all(p.requires_grad == ("motion_modules." in n) for n, p in second.named_parameters())


def test_original_format_export_reads_back_identically(unet_config: dict, tmp_path: Path) -> None:
    from realisdance_cli.training.stages import save_original

    net = load_network(CASE / "realisdance_tiny.ckpt", unet_config, 48)
    save_original(net.state_dict(), tmp_path / "stage2.ckpt", global_step=7)
    raw = torch.load(tmp_path / "stage2.ckpt", weights_only=True)
    original = torch.load(CASE / "realisdance_tiny.ckpt", weights_only=True)["state_dict"]
    assert raw["global_step"] == 7 and set(raw["state_dict"]) == {k.removeprefix("module.") for k in original}
    again = load_network(tmp_path / "stage2.ckpt", unet_config, 48).state_dict()
    assert all(torch.equal(v, again[k]) for k, v in net.state_dict().items())


# -- data --------------------------------------------------------------------------------------


def _clip_folder(folder: Path, frames: int = 24, size: tuple[int, int] = (90, 160)) -> Path:
    """A video whose pose videos are the video itself, so crops can be compared picture for picture."""
    from conftest import write_video

    rng = np.random.default_rng(0)
    pictures = [
        cv2.GaussianBlur(rng.integers(0, 256, (*size, 3), dtype=np.uint8), (0, 0), 3) for _ in range(frames)
    ]
    for name in ("video", "dwpose", "hamer", "smpl"):
        write_video(folder / f"{name}.mp4", pictures, fps=24)
    return folder


def test_clips_share_one_crop_across_the_frames_and_the_pose_videos(tmp_path: Path) -> None:
    from realisdance_cli.training.data import ClipDataset, ClipSampling, read_manifest

    _clip_folder(tmp_path / "a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "video.mp4").write_bytes(b"not a video")
    rows = [
        {
            "video": f"{d}/video.mp4",
            "dwpose": f"{d}/dwpose.mp4",
            "hamer": f"{d}/hamer.mp4",
            "smpl": f"{d}/smpl.mp4",
        }
        for d in ("a", "b", "missing")
    ]
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken\n")
    sampling = ClipSampling(frames=4, stride=3, size=(64, 48), clip_size=(40, 30))
    with pytest.warns(UserWarning) as caught:
        entries = read_manifest(manifest, minimum_frames=sampling.span)
    assert len(entries) == 1 and len(caught) == 3  # b corrupt, missing, broken line
    dataset = ClipDataset(entries, sampling, seed=1)
    item = dataset[0]
    assert item["pixels"].shape == (3, 4, 64, 48) and item["reference_clip"].shape == (3, 40, 30)
    for name in ("dwpose", "hamer", "smpl"):
        assert torch.equal(item[name], (item["pixels"] + 1) / 2), name  # one crop for all
    again = ClipDataset(entries, sampling, seed=1)[0]
    assert all(torch.equal(item[k], again[k]) for k in item)  # seed and index decide the clip
    other = ClipDataset(entries, sampling, seed=2)[0]
    assert not torch.equal(item["pixels"], other["pixels"])


# -- the loop ------------------------------------------------------------------------------------


def _training_parts(
    tmp_path: Path, unet_config: dict, scheduler_config: dict, frames: int = 4, copies: int = 1
):
    from diffusers import AutoencoderKL
    from transformers import Dinov2Model

    from realisdance_cli.training.data import ClipDataset, ClipSampling, read_manifest
    from realisdance_cli.training.loop import Encoders
    from realisdance_cli.training.objective import noise_scheduler

    _clip_folder(tmp_path / "clip", frames=12, size=(64, 48))
    manifest = tmp_path / "manifest.jsonl"
    row = json.dumps({name: f"clip/{name}.mp4" for name in ("video", "dwpose", "hamer", "smpl")})
    manifest.write_text("\n".join([row] * copies))
    sampling = ClipSampling(frames=frames, stride=2, size=(64, 48), clip_size=(28, 28))
    dataset = ClipDataset(read_manifest(manifest, sampling.span), sampling, seed=3)
    encoders = Encoders(
        AutoencoderKL.from_pretrained(CASE / "tiny_sd" / "vae"),
        Dinov2Model.from_pretrained(CASE / "tiny_dinov2"),
    )
    net = load_network(CASE / "realisdance_tiny.ckpt", unet_config, 48)
    return net, encoders, noise_scheduler(scheduler_config), dataset


@pytest.mark.slow
def test_a_stopped_run_resumes_to_the_same_losses(
    unet_config: dict, scheduler_config: dict, tmp_path: Path
) -> None:
    """With a DataLoader worker, two batches per step and EMA: all of it is restored exactly."""
    from realisdance_cli.training.loop import TrainOptions, train

    config = {"unet": unet_config, "token_width": 48}
    options = TrainOptions(
        stage=2,
        steps=4,
        learning_rate=1e-3,
        checkpoint_every=2,
        cfg_uncond_ratio=0.3,
        accumulate=2,
        workers=1,
        ema_decay=0.9,
        log_with="none",
    )

    def parts(folder: str):  # three clips: epochs end inside the accumulated steps
        return _training_parts(tmp_path / folder, unet_config, scheduler_config, copies=3)

    straight = train(*parts("a"), options, tmp_path / "a", config)
    first = train(*parts("b"), TrainOptions(**{**options.__dict__, "steps": 2}), tmp_path / "b", config)
    rest = train(*parts("b"), options, tmp_path / "b", config, resume=True)
    assert len(straight) == 4 and first + rest == pytest.approx(straight, rel=1e-5, abs=1e-7)
    for name in ("stage2", "stage2_ema"):
        a = load_file(tmp_path / "a" / f"{name}.safetensors")
        b = load_file(tmp_path / "b" / f"{name}.safetensors")
        assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a), name
    raw, ema = (
        load_file(tmp_path / "a" / "stage2.safetensors"),
        load_file(tmp_path / "a" / "stage2_ema.safetensors"),
    )
    motion = [k for k in raw if "motion_modules." in k and not torch.equal(raw[k], ema[k])]
    assert motion and all(torch.equal(raw[k], ema[k]) for k in raw if "motion_modules." not in k)
    assert torch.load(tmp_path / "b" / "stage2.ckpt", weights_only=True)["global_step"] == 4


@pytest.mark.slow
def test_overfitting_one_clip_drives_the_loss_down(
    unet_config: dict, scheduler_config: dict, tmp_path: Path
) -> None:
    from realisdance_cli.training.loop import TrainOptions, train
    from realisdance_cli.training.stages import stage1_network

    # batches of 2: the pose guider has BatchNorm, which needs more than one value in training
    _, encoders, scheduler, dataset = _training_parts(
        tmp_path, unet_config, scheduler_config, frames=1, copies=2
    )
    base = load_file(CASE / "tiny_sd" / "unet" / "diffusion_pytorch_model.safetensors")
    net = stage1_network(unet_config, 48, base)
    generator = torch.Generator().manual_seed(0)
    batch = encoders({k: v[None] for k, v in dataset[0].items()}, generator)
    noise = torch.randn(batch.latents.shape, generator=generator)
    timesteps = torch.tensor([300])

    def loss_now() -> float:
        with torch.no_grad():
            return diffusion_loss(net.eval(), scheduler, batch, noise, timesteps)[0].item()

    before = loss_now()
    options = TrainOptions(
        stage=1, steps=30, learning_rate=1e-3, batch_size=2, cfg_uncond_ratio=0.0, checkpoint_every=1000
    )
    train(
        net.train(),
        encoders,
        scheduler,
        dataset,
        options,
        tmp_path / "run",
        {"unet": unet_config, "token_width": 48},
    )
    after = loss_now()
    assert after < 0.5 * before, (before, after)
    assert not any("motion_modules." in k for k in load_file(tmp_path / "run" / "stage1.safetensors"))
    original = torch.load(tmp_path / "run" / "stage1.ckpt", weights_only=True)
    assert original["global_step"] == 30 and not any("motion_modules." in k for k in original["state_dict"])


def _tiny_weights_root(tmp_path: Path) -> Path:
    """A weights folder with the tiny golden base model and DINOv2 where the registry expects them."""
    root = tmp_path / "weights"
    for part in ("unet", "vae", "scheduler"):
        (root / "base" / "rv51").mkdir(parents=True, exist_ok=True)
        (root / "base" / "rv51" / part).symlink_to(need(CASE / "tiny_sd" / part))
    (root / "dinov2-large").symlink_to(need(CASE / "tiny_dinov2"))
    return root


def _tiny_run_inputs(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(weights root, a manifest of two 12-frame 64x48 clips, an AnimateDiff-layout motion file)."""
    root = _tiny_weights_root(tmp_path)
    _clip_folder(tmp_path / "data" / "clip", frames=12, size=(64, 48))
    row = json.dumps({name: f"clip/{name}.mp4" for name in ("video", "dwpose", "hamer", "smpl")})
    (tmp_path / "data" / "manifest.jsonl").write_text(f"{row}\n{row}\n")
    raw = torch.load(need(CASE / "realisdance_tiny.ckpt"), weights_only=True)["state_dict"]
    prefix = "module.unet_main."
    motion = {
        k.removeprefix(prefix): v for k, v in raw.items() if k.startswith(prefix) and "motion_modules." in k
    }
    torch.save(motion, tmp_path / "mm.ckpt")
    return root, tmp_path / "data" / "manifest.jsonl", tmp_path / "mm.ckpt"


@pytest.mark.slow
def test_two_processes_train_to_identical_weights(tmp_path: Path) -> None:
    """`rdance train` under torchrun with two CPU processes (gloo): both ranks end equal."""
    import re
    import socket
    import subprocess
    import sys

    root, manifest, motion_file = _tiny_run_inputs(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
        "-m", "realisdance_cli", "train", manifest, "--stage", "2",
        "--stage1", CASE / "realisdance_tiny.ckpt", "--motion", motion_file, "--steps", "2",
        "--frames", "4", "--frame-stride", "2", "--size", "64x48", "--lr", "1e-3", "--weights", root,
        "--out", tmp_path / "run", "--checkpoint-every", "2",
    ]  # fmt: skip
    done = subprocess.run(
        [str(c) for c in command],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "300"},
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    ranks = dict(re.findall(r"rank (\d): 2 steps, last loss [\d.]+; weights (\w+)", done.stdout))
    assert set(ranks) == {"0", "1"} and len(set(ranks.values())) == 1, done.stdout
    trained = load_file(tmp_path / "run" / "stage2.safetensors")
    golden = load_network(
        CASE / "realisdance_tiny.ckpt",
        json.loads((CASE / "tiny_sd" / "unet" / "config.json").read_text()),
        48,
    )
    changed = [
        k for k, v in golden.state_dict().items() if "motion_modules." in k and not torch.equal(v, trained[k])
    ]
    unchanged = [
        k for k, v in golden.state_dict().items() if "motion_modules." not in k and torch.equal(v, trained[k])
    ]
    assert changed and len(unchanged) == sum("motion_modules." not in k for k in trained)


@pytest.mark.slow
def test_an_original_config_trains_validates_and_logs(tmp_path: Path) -> None:
    """The authors' stage2_hamer.yaml (tests/released_configs.py), its values made tiny, drives
    `rdance train`; a flag overrides it; the run writes the validation grid and TensorBoard's loss
    curve."""
    from conftest import rdance
    from released_configs import released_config, write_config
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from realisdance_cli.video import FrameSource

    root, manifest, motion_file = _tiny_run_inputs(tmp_path)
    raw = released_config(2) | {
        "output_dir": str(tmp_path / "run"), "pretrained_mm_path": str(motion_file),
        "unet_checkpoint_path": str(CASE / "realisdance_tiny.ckpt"), "learning_rate": 1e-3,
        "max_train_steps": 100, "checkpointing_steps": 2, "validation_steps": 2, "mixed_precision": "no",
        "global_seed": 7, "manifest": str(manifest), "validation_ddim_steps": 2, "a_key_nobody_knows": 1,
    }  # fmt: skip
    raw["train_data"][0]["dataset"]["args"] |= {
        "sample_size": [64, 48], "clip_size": [27, 20], "sample_n_frames": 4, "sample_stride": 2,
        "ref_mode": "first",
    }  # fmt: skip
    config = write_config(tmp_path / "stage2_hamer.yaml", raw)
    done = rdance("train", "--config", config, "--steps", "2", "--weights", root)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    said = " ".join(done.stderr.split())
    assert "not used here: " in said and "pretrained_model_path" in said and "train_data.root_dir" in said
    assert "unknown keys, ignored: a_key_nobody_knows" in said
    assert "rank 0: 2 steps" in done.stdout  # --steps beat max_train_steps
    last_loss = float(done.stdout.split("last loss ")[1].split(";")[0])

    grid = tmp_path / "run" / "validation" / "0-video-step0000002.mp4"
    frames = list(FrameSource(grid))
    assert len(frames) == 6 and frames[0].shape == (64, 6 * 48, 3)  # 12 frames at stride 2
    source = list(FrameSource(manifest.parent / "clip" / "video.mp4"))[::2]
    for index, frame in enumerate(frames):
        panels = [frame[:, i * 48 : (i + 1) * 48].astype(float) for i in range(6)]
        for panel in (*panels[1:4], panels[5]):  # the pose videos are the video itself here
            assert np.abs(panel - source[index]).mean() < 6
        assert np.abs(panels[0] - source[0]).mean() < 6  # reference: the first frame
    events = EventAccumulator(str(next((tmp_path / "run" / "logs").rglob("events.out.tfevents.*"))))
    losses = [event.value for event in events.Reload().Scalars("loss")]
    assert len(losses) == 2 and losses[-1] == pytest.approx(last_loss, abs=1e-4)


@pytest.mark.slow
def test_configs_translate_original_keys_and_refuse_bad_values(tmp_path: Path) -> None:
    from conftest import rdance

    from realisdance_cli.errors import UserError
    from realisdance_cli.training.config import read_config

    config = tmp_path / "stage1.yaml"
    config.write_text(
        "image_finetune: true\ntrain_batch_size: 4\ngradient_accumulation_steps: 2\n"
        "train_data:\n- dataset:\n    args: {sample_size: [768, 576], sample_n_frames: 1}\n"
        "- dataset: {args: {clip_size: [213, 160], split: train}}\n"
        "checkpointing_steps: -1\ncfg_uncond_ratio: 0.3\nema_decay: 0.999\nsize: 512x384\n"
    )
    with pytest.warns(UserWarning, match=r"not used here: train_data\.split$"):
        settings = read_config(config)
    assert settings == {
        "stage": 1, "batch_size": 4, "accumulate": 2, "size": "512x384", "frames": 1,
        "cfg_uncond": 0.3, "ema_decay": 0.999,
    }  # fmt: skip
    for text, fragment in (
        ("max_train_steps: many\n", "max_train_steps: 'many'"),
        ("image_finetune: 3\n", "image_finetune"),
        ("steps: [1\n", "not valid YAML"),
        ("- a list\n", "key: value"),
    ):
        config.write_text(text)
        with pytest.raises(UserError, match=fragment):
            read_config(config)
    config.write_text("max_train_steps: many\n")
    done = rdance("train", "--config", config)
    assert done.returncode == 2 and "max_train_steps" in done.stderr and "Traceback" not in done.stderr
    config.write_text("steps: 5\n")
    done = rdance("train", "--config", config)
    assert done.returncode == 2 and "give the training manifest" in done.stderr


@pytest.mark.slow
def test_configs_refuse_whole_numbers_that_are_not(tmp_path: Path) -> None:
    """`int` would read 1.9 as 1 and `true` as 1, `float` `true` as 1.0: one sentence naming the
    key instead, exit 2 through the CLI; a float that is whole is taken."""
    from conftest import assert_user_error, rdance

    from realisdance_cli.errors import UserError
    from realisdance_cli.training.config import read_config

    config = tmp_path / "config.yaml"
    for text, said in (
        ("stage: 1.9", "stage: 1.9 is not usable (expected a whole number)"),
        ("steps: 2.9", "steps: 2.9 is not usable"),
        ("seed: 7.7", "seed: 7.7 is not usable"),
        ("frames: true", "frames: True is not usable"),
        ("size: [64.9, 48.2]", "size: [64.9, 48.2] is not usable"),
        ("max_train_steps: 2.5", "max_train_steps: 2.5 is not usable"),
        ("train_data: [dataset: {args: {sample_n_frames: false}}]", "sample_n_frames: False is not usable"),
        ("train_data: {sample_n_frames: 16}", "train_data must be a list of `- dataset:"),
        ("lr: true", "lr: True is not usable (expected a number)"),
    ):
        config.write_text(text + "\n")
        with pytest.raises(UserError, match=re.escape(said)):
            read_config(config)
    config.write_text("steps: 2.0\nsize: [64.0, 48]\nlr: 1\n")
    assert read_config(config) == {"steps": 2, "size": "64x48", "lr": 1.0}
    config.write_text("stage: 1.9\n")
    assert_user_error(rdance("train", "--config", config), "stage: 1.9 is not usable")


@pytest.mark.slow
def test_train_refuses_a_batch_larger_than_the_clips_before_touching_the_run_folder(tmp_path: Path) -> None:
    """Each process needs one whole batch: said before --force clears the earlier run and before
    any weights are looked for (an empty weights folder here), for one process or two."""
    from conftest import assert_user_error, rdance

    cv2.imwrite(str(tmp_path / "photo.png"), np.full((32, 24, 3), 90, np.uint8))
    row = json.dumps({name: "photo.png" for name in ("image", "dwpose", "hamer", "smpl")})
    manifest, run, empty = tmp_path / "manifest.jsonl", tmp_path / "run", tmp_path / "weights"
    manifest.write_text(f"{row}\n{row}\n")
    empty.mkdir()
    (run / "stage1.ckpt").parent.mkdir()
    (run / "stage1.ckpt").write_text("an earlier run's")
    common = (manifest, "--stage", "1", "--out", run, "--force", "--log-with", "none", "--weights", empty)
    done = rdance("train", *common, "--batch-size", "3")
    assert_user_error(done, "the training set holds 2 clips, fewer than one batch of 3; lower --batch-size")
    done = rdance("train", *common, "--batch-size", "2", env={"WORLD_SIZE": "2", "RANK": "0"})
    assert_user_error(done, "holds 2 clips, fewer than one batch of 2 on each of 2 processes")
    assert (run / "stage1.ckpt").read_text() == "an earlier run's"


def test_picture_entries_train_stage1_with_their_own_reference(tmp_path: Path) -> None:
    from realisdance_cli.animator.processing import fit
    from realisdance_cli.training.data import ClipDataset, ClipSampling, read_manifest

    rng = np.random.default_rng(1)
    photo, reference = (rng.integers(0, 256, (80, 60, 3), dtype=np.uint8) for _ in range(2))
    for name in ("photo", "dwpose", "hamer", "smpl"):
        cv2.imwrite(str(tmp_path / f"{name}.png"), photo[:, :, ::-1])
    cv2.imwrite(str(tmp_path / "other.png"), cv2.resize(reference, (120, 100))[:, :, ::-1])
    row = {"image": "photo.png", "dwpose": "dwpose.png", "hamer": "hamer.png", "smpl": "smpl.png"}
    (tmp_path / "images.jsonl").write_text(
        json.dumps(row) + "\n" + json.dumps(row | {"reference": "other.png"})
    )
    sampling = ClipSampling(frames=1, size=(40, 30), clip_size=(20, 15))
    entries = read_manifest(tmp_path / "images.jsonl", sampling.span)
    assert [e.frames for e in entries] == [1, 1]
    plain, own = (ClipDataset(entries, sampling, seed=0)[i] for i in range(2))
    assert plain["pixels"].shape == (3, 1, 40, 30)
    assert torch.equal(plain["reference"], plain["pixels"][:, 0])  # the picture is its own reference
    expected = fit(cv2.resize(reference, (120, 100)), (40, 30))
    assert torch.equal(own["reference"], torch.from_numpy(expected).permute(2, 0, 1).float() / 127.5 - 1)


@pytest.mark.slow
def test_dataset_build_makes_a_manifest_the_trainer_reads(extraction_weights: Path, tmp_path: Path) -> None:
    from conftest import assert_user_error, rdance, write_video

    from realisdance_cli.training.data import read_manifest

    person = cv2.imread(str(need(GOLDEN / "dwpose" / "person_960x540.png")))[:, :, ::-1]
    person = cv2.resize(person, (270, 480))
    videos = tmp_path / "videos"
    write_video(videos / "a.mp4", [person] * 3, fps=25)
    write_video(videos / "c.mp4", [person[:, ::-1]] * 3, fps=25)
    (videos / "b.mp4").write_bytes(b"not a video")
    cv2.imwrite(str(videos / "d.png"), person[:, :, ::-1])  # a photo: a one-frame entry for stage 1
    data = tmp_path / "data"
    done = rdance("dataset", "build", videos, "--out", data, "--weights", extraction_weights)
    assert done.returncode == 0, done.stderr
    assert "b.mp4 left out" in done.stderr and "3 videos" in done.stdout
    said = done.stderr.splitlines()
    names = ["a.mp4", "b.mp4", "c.mp4", "d.png"]
    assert [f"{name} ({number} of 4)" in said for number, name in enumerate(names, 1)] == [True] * 4, said
    entries = read_manifest(data / "manifest.jsonl")
    assert [(e.video.name, e.frames) for e in entries] == [("a.mp4", 3), ("c.mp4", 3), ("d.png", 1)]
    assert entries[0].poses[0] == data / "a.rdance" / "dwpose.mp4"
    lines = [json.loads(line) for line in (data / "manifest.jsonl").read_text().splitlines()]
    assert lines[0]["video"] == "../videos/a.mp4"  # relative to the manifest, as the poses
    assert (lines[0]["frames"], lines[0]["width"], lines[0]["height"]) == (3, 270, 480)
    assert "image" in lines[2] and "video" not in lines[2]
    for index, expected in ((0, ["a.mp4", "c.mp4"]), (1, ["d.png"])):  # sorted a, b, c, d
        again = rdance(
            "dataset",
            "build",
            videos,
            "--out",
            data,
            "--weights",
            extraction_weights,
            "--shard",
            f"{index}/2",
        )
        assert again.returncode == 0, again.stderr
        shard = (data / f"manifest-{index}-of-2.jsonl").read_text().splitlines()
        assert [Path(next(iter(json.loads(line).values()))).name for line in shard] == expected
    assert_user_error(rdance("dataset", "build", videos, "--out", data, "--shard", "2/2"), "--shard")
    (videos / "b.mp4").unlink()  # every video left is built: a re-run needs no weight file
    (tmp_path / "no-weights").mkdir()
    again = rdance("dataset", "build", videos, "--out", data, "--weights", tmp_path / "no-weights")
    assert again.returncode == 0 and "3 videos" in again.stdout, again.stderr
    shutil.copy(videos / "a.mp4", videos / "a.mov")  # two inputs, one track name: said before any work
    assert_user_error(rdance("dataset", "build", videos, "--out", data), "a.mov, a.mp4", "rename one")


@pytest.mark.slow
def test_an_infinite_step_count_in_a_config_is_one_sentence(tmp_path: Path) -> None:
    """`steps: .inf` reads as a float that `int` cannot take (OverflowError, not ValueError)."""
    from conftest import assert_user_error, rdance

    config = tmp_path / "bad.yaml"
    config.write_text("steps: .inf\n")
    assert_user_error(rdance("train", "--config", config), "steps: inf is not usable")


@pytest.mark.slow
def test_validation_clips_of_one_name_get_a_video_each(
    unet_config: dict, scheduler_config: dict, tmp_path: Path
) -> None:
    """Two manifest entries whose videos share a name (`video.mp4` in two folders): one grid each,
    named by the clip's place among the validation clips."""
    from conftest import write_video

    from realisdance_cli.training.data import ClipSampling, read_manifest, validation_clip
    from realisdance_cli.training.validation import validate
    from realisdance_cli.video import FrameSource, read_frames

    net, encoders, _, _ = _training_parts(tmp_path, unet_config, scheduler_config)
    for name in ("video", "dwpose", "hamer", "smpl"):  # the same clip, inverted
        write_video(
            tmp_path / "other" / f"{name}.mp4",
            [255 - f for f in read_frames(tmp_path / "clip" / f"{name}.mp4")],
        )
    rows = [
        {name: f"{d}/{name}.mp4" for name in ("video", "dwpose", "hamer", "smpl")} for d in ("clip", "other")
    ]
    (tmp_path / "two.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    sampling = ClipSampling(frames=2, stride=2, size=(64, 48), clip_size=(28, 28), ref_mode="first")
    clips = [validation_clip(entry, sampling, frames=2) for entry in read_manifest(tmp_path / "two.jsonl")]
    assert clips[0].name == clips[1].name == "video"
    folder = tmp_path / "validation"
    written = validate(net, encoders.vae, encoders.image_encoder, scheduler_config, clips, folder, 3, 1)
    assert written == [folder / "0-video-step0000003.mp4", folder / "1-video-step0000003.mp4"]
    for path, clip in zip(written, clips, strict=True):
        truth = [frame[:, 5 * 48 :].astype(float) for frame in FrameSource(path)]
        assert len(truth) == len(clip.truth)
        assert all(np.abs(got - want).mean() < 6 for got, want in zip(truth, clip.truth, strict=True))


@pytest.mark.slow
def test_the_reported_loss_of_an_accumulated_step_is_the_mean_of_its_batches(
    unet_config: dict, scheduler_config: dict, tmp_path: Path
) -> None:
    """`accumulate 2`: the step's loss is the mean of both batches' losses, not the last one's. The
    reference redoes the step's two batches by hand: one clip, so batch k is the clip of epoch k,
    with the step's generator (seeded by (seed, step, rank)); a zero learning rate keeps the
    weights of both batches the same."""
    from realisdance_cli.training.loop import TrainOptions, _loss, train

    net, encoders, scheduler, dataset = _training_parts(tmp_path, unet_config, scheduler_config)
    options = TrainOptions(stage=2, steps=1, learning_rate=0.0, accumulate=2, log_with="none", seed=5)
    generator = torch.Generator().manual_seed(hash((options.seed, 0, 0)) % 2**63)
    expected = []
    with torch.no_grad():
        for epoch in (0, 1):
            dataset.epoch = epoch
            batch = encoders({k: v[None] for k, v in dataset[0].items()}, generator)
            expected.append(_loss(net, batch, scheduler, options, generator).item())
    assert abs(expected[0] - expected[1]) > 0.01 * expected[1]  # the last alone would not pass
    reported: list[float] = []
    config = {"unet": unet_config, "token_width": 48}
    losses = train(net, encoders, scheduler, dataset, options, tmp_path / "run", config,
                   report=lambda step, loss: reported.append(loss))  # fmt: skip
    assert losses == reported and reported[0] == pytest.approx(sum(expected) / 2, rel=1e-5), expected


@pytest.mark.slow
def test_a_run_killed_while_swapping_its_state_resumes_and_checkpoints_again(
    unet_config: dict, scheduler_config: dict, tmp_path: Path
) -> None:
    """The swap is state -> state.old, state.partial -> state, remove state.old. Killed while
    removing state.old, the next checkpoint must still swap; killed between the renames, the run
    resumes from state.old (the last whole state), not from the unswapped state.partial."""
    import shutil

    from realisdance_cli.training.loop import TrainOptions, train

    config = {"unet": unet_config, "token_width": 48}
    options = TrainOptions(stage=2, learning_rate=1e-3, checkpoint_every=1, log_with="none")

    def run(folder: str, steps: int, resume: bool = False) -> list[float]:
        parts = _training_parts(tmp_path / folder, unet_config, scheduler_config)
        return train(*parts, TrainOptions(**{**options.__dict__, "steps": steps}), tmp_path / folder, config,
                     resume=resume)  # fmt: skip

    straight = run("a", 2)
    out = tmp_path / "b"
    assert run("b", 1) == pytest.approx(straight[:1], rel=1e-5)
    shutil.copytree(out / "state", tmp_path / "step1")
    # Killed while removing state.old (an earlier state): part of it is gone, the rest stays.
    shutil.copytree(tmp_path / "step1", out / "state.old")
    for path in sorted((out / "state.old").iterdir())[:2]:
        path.unlink()
    assert run("b", 2, resume=True) == pytest.approx(straight[1:], rel=1e-5)
    assert json.loads((out / "state" / "step.json").read_text())["step"] == 2
    assert not (out / "state.old").exists() and not (out / "state.partial").exists()
    # Killed between the renames: state (step 1) became state.old, the step-2 state.partial stays.
    (out / "state").replace(out / "state.partial")
    shutil.copytree(tmp_path / "step1", out / "state.old")
    assert run("b", 2, resume=True) == pytest.approx(straight[1:], rel=1e-5)  # step 2 again
    assert json.loads((out / "state" / "step.json").read_text())["step"] == 2
    assert not (out / "state.old").exists() and not (out / "state.partial").exists()
    a, b = load_file(tmp_path / "a" / "stage2.safetensors"), load_file(out / "stage2.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


class _Unpickled:
    """A pickle that creates `marker` when it is loaded (as a crafted file in a copied run would run code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (str(self.marker), "w"))


EMA_OPTIONS = {"stage": 2, "steps": 2, "learning_rate": 1e-3, "checkpoint_every": 1, "ema_decay": 0.9,
               "log_with": "none"}  # fmt: skip


def _ema_train(data: Path, out: Path, unet_config: dict, scheduler_config: dict, **kwargs) -> list[float]:
    """The tiny two-step EMA run of `EMA_OPTIONS` on the clips in `data`, into `out`."""
    from realisdance_cli.training.loop import TrainOptions, train

    parts = _training_parts(data, unet_config, scheduler_config)
    config = {"unet": unet_config, "token_width": 48}
    return train(*parts, TrainOptions(**EMA_OPTIONS), out, config, **kwargs)


@pytest.fixture(scope="module")
def ema_run(unet_config: dict, scheduler_config: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The EMA run straight through (`run`), with a copy of its folder as step 1 left it (`step1`:
    taken while step 2 ran, before its save)."""
    import shutil

    root = tmp_path_factory.mktemp("ema")

    def keep_step1(step: int, loss: float) -> None:
        if step == 2:
            shutil.copytree(root / "run", root / "step1")

    losses = _ema_train(root / "data", root / "run", unet_config, scheduler_config, report=keep_step1)
    return {"root": root, "run": root / "run", "step1": root / "step1", "losses": losses}


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _same_exports(a: Path, b: Path, step: int) -> None:
    """Both forms of both exports of run folder `b` are those of `a`, bit for bit, at `step`."""
    for name in ("stage2", "stage2_ema"):
        assert _equal(load_file(a / f"{name}.safetensors"), load_file(b / f"{name}.safetensors")), name
        original_a, original_b = (torch.load(f / f"{name}.ckpt", weights_only=True) for f in (a, b))
        assert original_b["global_step"] == step, name
        assert _equal(original_a["state_dict"], original_b["state_dict"]), name


@pytest.mark.slow
def test_an_ema_run_resumes_exactly_without_unpickling_its_state(
    ema_run: dict, unet_config: dict, scheduler_config: dict, tmp_path: Path
) -> None:
    """The moving average is saved as safetensors and JSON and read back as such: a pickle planted
    where accelerate kept it (custom_checkpoint_0.pkl, loaded with weights_only=False) is refused,
    never run, and the resumed run ends exactly where the straight one did."""
    import shutil

    from realisdance_cli.errors import UserError

    out, marker = tmp_path / "run", tmp_path / "unpickled"
    shutil.copytree(ema_run["step1"], out)
    assert json.loads((out / "state" / "step.json").read_text())["step"] == 1
    planted = out / "state" / "custom_checkpoint_0.pkl"
    torch.save(_Unpickled(marker), planted)
    with pytest.raises(UserError, match=f"{planted} is a pickle, which a resume never loads"):
        _ema_train(ema_run["root"] / "data", out, unet_config, scheduler_config, resume=True)
    assert not marker.exists()
    planted.unlink()
    rest = _ema_train(ema_run["root"] / "data", out, unet_config, scheduler_config, resume=True)
    assert rest == ema_run["losses"][1:]
    _same_exports(ema_run["run"], out, step=2)
    assert json.loads((out / "state" / "ema.json").read_text())["optimization_step"] == 2
    straight = load_file(ema_run["run"] / "state" / "ema.safetensors")
    assert _equal(straight, load_file(out / "state" / "ema.safetensors"))
    assert straight and all("motion_modules." in k for k in straight)


@pytest.mark.slow
def test_a_run_killed_after_its_last_state_before_its_exports_exports_again(
    ema_run: dict, unet_config: dict, scheduler_config: dict, tmp_path: Path
) -> None:
    """The last save swaps the step-2 state in, then writes the exports: killed between the two,
    the folder holds the state of step 2 and the exports of step 1. The rerun has no step left to
    train, and must still leave the exports of step 2."""
    import shutil

    out = tmp_path / "run"
    shutil.copytree(ema_run["run"], out)
    for path in ema_run["step1"].glob("stage2*"):
        shutil.copy(path, out / path.name)
    stale = load_file(out / "stage2.safetensors")
    fresh = load_file(ema_run["run"] / "stage2.safetensors")
    assert not all(torch.equal(stale[k], fresh[k]) for k in fresh)  # step 1 differs from step 2
    assert _ema_train(ema_run["root"] / "data", out, unet_config, scheduler_config, resume=True) == []
    _same_exports(ema_run["run"], out, step=2)


@pytest.mark.slow
def test_dataset_build_renders_again_what_extract_made_anew(extraction_weights: Path, tmp_path: Path) -> None:
    """Pose videos follow the streams: a rebuild whose extraction redoes the stages (another
    channel order here) renders them again, and so does one after `extract` was run by hand with
    other options (every stage then skipped by the build; the extraction removed the videos of
    the streams it made anew)."""
    from conftest import write_video

    from realisdance_cli.conditions import POSE_NAMES
    from realisdance_cli.extraction import ExtractOptions, extract
    from realisdance_cli.rendering import RenderOptions
    from realisdance_cli.training.dataset_build import build
    from realisdance_cli.video import read_frames

    person = cv2.resize(
        cv2.imread(str(need(GOLDEN / "dwpose" / "person_960x540.png")))[:, :, ::-1], (270, 480)
    )
    videos, data = tmp_path / "videos", tmp_path / "data"
    write_video(videos / "a.mp4", [person] * 2, fps=25)
    render = RenderOptions(weights_root=extraction_weights)

    def options(rgb: bool) -> ExtractOptions:
        return ExtractOptions(device="cpu", weights_root=extraction_weights, rgb=rgb)

    def rebuilt(rgb: bool) -> dict[str, np.ndarray]:
        assert build(videos, data, options(rgb), render).built == ["a.mp4"]
        return {name: read_frames(data / "a.rdance" / f"{name}.mp4") for name in POSE_NAMES}

    first = rebuilt(rgb=False)
    with pytest.warns(UserWarning, match=r"removed .*dwpose\.mp4: it showed the earlier dwpose stream"):
        second = rebuilt(rgb=True)  # extraction removes the videos of the streams it makes anew
    assert not np.array_equal(first["dwpose"], second["dwpose"])
    with pytest.warns(UserWarning, match=r"removed .*hamer\.mp4: it showed the earlier mano stream"):
        extract(videos / "a.mp4", data / "a.rdance", options(False))
    assert not any((data / "a.rdance" / f"{name}.mp4").exists() for name in POSE_NAMES)
    third = rebuilt(rgb=False)
    assert all(np.array_equal(first[name], third[name]) for name in POSE_NAMES)


TRACK_HOLDER = """
import sys, time
from pathlib import Path
from realisdance_cli.track import Track

with Track.lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


@pytest.mark.slow
def test_dataset_build_writes_no_manifest_short_of_a_video_another_process_builds(
    extraction_weights: Path, tmp_path: Path
) -> None:
    """A `--shard 0/2` build meeting a.png's track held by another build (here a process holding
    its lock, as an unsharded build does while it extracts a.png) builds its other video, but writes
    no manifest and exits 2: a.png was "left out" with exit 0, a manifest silently short of it. Run
    again once the other is done, it finishes a.png and writes the manifest whole."""
    import subprocess
    import sys

    from conftest import assert_user_error, rdance

    person = cv2.resize(cv2.imread(str(need(GOLDEN / "dwpose" / "person_960x540.png"))), (135, 240))
    videos, data = tmp_path / "videos", tmp_path / "data"
    videos.mkdir()
    for index, name in enumerate("abcd"):
        cv2.imwrite(str(videos / f"{name}.png"), np.roll(person, 8 * index, axis=1))
    build = ("dataset", "build", videos, "--out", data, "--weights", extraction_weights, "--shard", "0/2")
    manifest = data / "manifest-0-of-2.jsonl"
    holder = subprocess.Popen(
        [sys.executable, "-c", TRACK_HOLDER, str(data / "a.rdance")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        busy = rdance(*build, "--device", "cpu")
    finally:
        holder.kill()
        holder.wait()
    assert busy.returncode != 0 and not manifest.exists(), (busy.returncode, busy.stdout, busy.stderr)
    assert_user_error(
        busy,
        f"{manifest} is not written, as a.png is busy: the pose track {data / 'a.rdance'} is in use by "
        f"another process (process {holder.pid}); wait for it to finish, then run the build again",
    )
    assert "left out" not in busy.stderr
    assert (data / "c.rdance" / "dwpose.mp4").is_file()  # the free video is built all the same
    again = rdance(*build, "--device", "cpu")
    assert again.returncode == 0 and "2 videos in" in again.stdout, again.stderr
    shard = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert [Path(line["image"]).name for line in shard] == ["a.png", "c.png"]


def test_dataset_build_takes_every_picture_kind_frame_sources_read(tmp_path: Path) -> None:
    """A .tif/.tiff picture is a one-frame video to `FrameSource`, so the build takes it too."""
    from realisdance_cli.training.dataset_build import sources
    from realisdance_cli.video import FrameSource

    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a.tif", "b.TIFF"):
        cv2.imwrite(str(videos / name), np.full((32, 24, 3), 90, np.uint8))
        assert FrameSource(videos / name).info.frame_count == 1
    (videos / "notes.txt").write_text("not a picture")
    assert [path.name for path in sources(videos)] == ["a.tif", "b.TIFF"]


def _pictures(folder: Path, count: int = 2) -> Path:
    folder.mkdir()
    for index in range(count):
        cv2.imwrite(str(folder / f"{index}.png"), np.full((32, 24, 3), 90 + index, np.uint8))
    return folder


@pytest.mark.slow
def test_dataset_build_checks_the_weights_and_the_device_once_before_any_video(tmp_path: Path) -> None:
    """Missing weights (or an absent GPU) would fail every video alike: one sentence instead, before
    the first video, and no data folder."""
    from conftest import assert_user_error, rdance

    videos, data, empty = _pictures(tmp_path / "videos"), tmp_path / "data", tmp_path / "weights"
    empty.mkdir()
    done = rdance("dataset", "build", videos, "--out", data, "--weights", empty)
    assert_user_error(done, "missing weights:", f"(not in {empty} nor", "weights download dwpose smplerx")
    assert "left out" not in done.stderr and not data.exists()
    if not torch.cuda.is_available():
        done = rdance("dataset", "build", videos, "--out", data, "--weights", empty, "--device", "cuda")
        assert_user_error(done, "--device cuda", "no CUDA GPU")
        assert "left out" not in done.stderr and not data.exists()


def test_dataset_build_exits_1_when_every_video_is_left_out(tmp_path: Path) -> None:
    """The weight files are present (empty: every video fails before a network loads), the videos
    are not videos: each is reported, the manifest is empty, and the exit code tells scripts."""
    from conftest import rdance

    from realisdance_cli import weights

    root = tmp_path / "weights"
    for name in ("dwpose-det", "dwpose-pose", "hamer", "hamer-config", "mano", "smplerx", "smplx"):
        (root / weights.get(name).path).parent.mkdir(parents=True, exist_ok=True)
        (root / weights.get(name).path).touch()
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a.mp4", "b.mov"):
        (videos / name).write_bytes(b"not a video")
    data = tmp_path / "data"
    done = rdance("dataset", "build", videos, "--out", data, "--weights", root, "--device", "cpu")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    said = " ".join(done.stderr.split())
    assert "a.mp4 left out:" in said and "b.mov left out:" in said
    assert "0 videos in" in done.stdout and "2 left out" in done.stdout
    assert (data / "manifest.jsonl").read_text() == ""
    assert "exit code is 1" in " ".join(rdance("dataset", "build", "--help").stdout.split())


def test_dataset_build_checks_out_and_shard_before_any_video(tmp_path: Path) -> None:
    from conftest import assert_user_error, rdance

    videos, a_file, empty = _pictures(tmp_path / "videos"), tmp_path / "a_file", tmp_path / "weights"
    a_file.write_text("mine")
    empty.mkdir()
    done = rdance("dataset", "build", videos, "--out", a_file, "--weights", empty)
    assert_user_error(done, f"--out {a_file} is a file; give a folder")
    assert "left out" not in done.stderr and a_file.read_text() == "mine"
    done = rdance("dataset", "build", videos, "--out", tmp_path / "data", "--shard", "0/0")
    assert_user_error(done, "--shard 0/0: n, the number of shards, must be 1 or more")


@pytest.mark.slow
def test_train_refuses_a_size_off_the_8_pixel_grid_and_a_config_seed_before_any_work(tmp_path: Path) -> None:
    """Both would fail only once the models are loaded (the size in the first training step)."""
    from conftest import assert_user_error, rdance

    run = tmp_path / "run"
    common = ("--stage", "1", "--out", run, "--log-with", "none")
    done = rdance("train", tmp_path / "manifest.jsonl", *common, "--size", "63x48")
    assert_user_error(done, "--size must be a multiple of 8", "got 63x48")
    config = tmp_path / "seed.yaml"
    config.write_text("seed: -1\n")
    done = rdance("train", "--config", config, tmp_path / "manifest.jsonl", *common)
    assert_user_error(done, "--seed must be 0 to 9223372036854775807, got -1")
    assert not run.exists()


@pytest.mark.slow
def test_train_says_a_binary_config_or_manifest_is_not_text(tmp_path: Path) -> None:
    from conftest import assert_user_error, numbered_frames, rdance, write_video

    picture, video, run = tmp_path / "some.png", tmp_path / "video.mp4", tmp_path / "run"
    cv2.imwrite(str(picture), numbered_frames(1)[0])
    write_video(video, numbered_frames(3))
    done = rdance("train", "--config", picture, "--out", run)
    assert_user_error(done, f"{picture} is not a UTF-8 text file; give a YAML config")
    done = rdance("train", video, "--stage", "1", "--out", run, "--log-with", "none")
    assert_user_error(done, f"{video} is not a UTF-8 text file; give a JSON-lines manifest")
    assert not run.exists()


def test_train_help_says_what_gradient_checkpointing_does() -> None:
    from conftest import rdance

    assert "Recompute activations" in rdance("train", "--help").stdout


@pytest.mark.slow
def test_loading_is_said_first_and_verbose_names_the_device_and_the_weights(tmp_path: Path) -> None:
    """Importing the libraries and loading the networks took seconds without a word before the
    first training step; -v said neither where the networks came from nor what trains them."""
    from conftest import rdance

    root, manifest, motion_file = _tiny_run_inputs(tmp_path)
    stage1 = CASE / "realisdance_tiny.ckpt"
    args = [
        "train", manifest, "--stage", "2", "--stage1", stage1, "--motion", motion_file, "--steps", "1",
        "--frames", "4", "--frame-stride", "2", "--size", "64x48", "--weights", root,
    ]  # fmt: skip
    done = rdance("-v", *args, "--out", tmp_path / "run")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].startswith("loading networks (MB) 0/"), done.stderr
    for line in (
        f"INFO realisdance_cli.progress: loaded DINOv2 from {root / 'dinov2-large'}",
        f"INFO realisdance_cli.progress: loaded the RealisDance network from {stage1}, {motion_file}",
        "INFO realisdance_cli.training.loop: training on cpu with mixed precision no, 1 process(es)",
    ):
        assert line in lines, done.stderr
    assert lines.index(line) < lines.index(next(line for line in lines if line.startswith("training ")))
    quiet = rdance("-q", *args, "--out", tmp_path / "quiet")
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
