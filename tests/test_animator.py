"""The animator against the original code's golden cases (../shared/golden/animator)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from conftest import GOLDEN, need
from safetensors.torch import load_file

from realisdance_cli.animator import windows
from realisdance_cli.animator.checkpoint import FORMAT, load_network, save_network
from realisdance_cli.animator.pipeline import (
    SCHEDULER_OVERRIDES,
    PoseVideos,
    RealisDancePipeline,
    zero_snr_ddim,
)
from realisdance_cli.errors import UserError

TOLERANCE = {"atol": 1e-4, "rtol": 1e-4}


@pytest.fixture(scope="module")
def case_dir() -> Path:
    return need(GOLDEN / "animator")


@pytest.fixture(scope="module")
def cases(case_dir: Path) -> dict:
    return json.loads((case_dir / "CASES.json").read_text())


@pytest.fixture(scope="module")
def unet_config(case_dir: Path) -> dict:
    return json.loads((case_dir / "tiny_sd" / "unet" / "config.json").read_text())


@pytest.fixture(scope="module")
def encoder(case_dir: Path):
    from transformers import Dinov2Model

    return Dinov2Model.from_pretrained(case_dir / "tiny_dinov2").eval()


@pytest.fixture(scope="module")
def network(case_dir: Path, unet_config: dict, encoder):
    return load_network(case_dir / "realisdance_tiny.ckpt", unet_config, encoder.config.hidden_size)


@pytest.fixture(scope="module")
def pipeline(case_dir: Path, cases: dict, network, encoder) -> RealisDancePipeline:
    from diffusers import AutoencoderKL

    config = json.loads((case_dir / "tiny_sd" / "scheduler" / "scheduler_config.json").read_text())
    scheduler = zero_snr_ddim(config)
    assert type(scheduler).__name__ == cases["scheduler"]["class"]
    for key, value in cases["scheduler"].items():
        if key in SCHEDULER_OVERRIDES:
            assert scheduler.config[key] == value, key
    assert cases["scheduler"]["eta"] == 0.0  # DDIM's default, which the pipeline uses
    vae = AutoencoderKL.from_pretrained(case_dir / "tiny_sd" / "vae").eval()
    return RealisDancePipeline.from_network(network, vae, encoder, scheduler)


def test_network_structure_follows_the_case(network, cases: dict) -> None:
    motion = cases["motion_module_kwargs"]
    blocks = [m for name, m in network.named_modules() if name.endswith("motion_modules.0")]
    assert blocks and all(
        m.transformer_blocks[0].attn1.heads == motion["num_attention_heads"] for m in blocks
    )
    assert (
        network.pose_guider.motion_modules[0].transformer_blocks[0].pos_embed.pe.shape[1]
        == (motion["temporal_position_encoding_max_len"])
    )
    outputs = [getattr(network.pose_guider, f"block_{i}_out_proj").out_channels for i in range(5)]
    assert outputs == cases["pose_guider_out_channels"]
    projector = network.clip_projector
    assert (projector.identity.in_features, projector.post_proj.out_features) == (
        cases["clip_projector"]["in_features"],
        cases["clip_projector"]["out_features"],
    )


@pytest.mark.slow
@pytest.mark.parametrize("drop_reference", [False, True])
def test_forward_matches_the_original(network, case_dir: Path, cases: dict, drop_reference: bool) -> None:
    case = load_file(case_dir / "forward_case.safetensors")
    assert int(case["timestep"]) == cases["forward_timestep"]
    tokens = case["encoder_hidden_states"]
    with torch.no_grad():
        out = network(
            case["sample"],
            case["ref_sample"],
            case["dwpose"],
            case["hamer"],
            case["smpl"],
            case["timestep"],
            torch.zeros_like(tokens) if drop_reference else tokens,
            drop_reference=drop_reference,
        )
    expected = case["expected_drop_reference" if drop_reference else "expected"]
    torch.testing.assert_close(out, expected, **TOLERANCE)


def _case_options(cases: dict, **changes) -> dict:
    schedule = cases["context_schedule"].split()[0]
    assert schedule == "uniform" and cases["fix_ref_t"] and cases["do_color_restore"]
    options = {
        "num_inference_steps": cases["num_inference_steps"],
        "guidance_scale": cases["guidance_scale"],
        "unconditional": "fake" if cases["fake_uncond"] else "real",
        "context_frames": cases["context_frames"],
        "context_overlap": cases["context_overlap"],
        "context_stride": cases["context_stride"],
        "context_schedule": schedule,
    }
    return options | changes


def animate_case(pipeline: RealisDancePipeline, case: dict, **options) -> torch.Tensor:
    """The case's video (F, 3, H, W) from its exact inputs (the reference in [-1, 1] as the case holds it)."""
    poses = PoseVideos(case["dwpose"], case["hamer"], case["smpl"])
    result = pipeline(
        (case["ref_image"] + 1) / 2,
        poses,
        clip_image=case["ref_image_clip"],
        latents=case["latents"],
        output_type="pt",
        **options,
    )
    return result.frames[0]


@pytest.fixture(scope="module")
def case() -> dict:
    return load_file(need(GOLDEN / "animator") / "pipeline_case.safetensors")


@pytest.mark.slow
@pytest.mark.parametrize(
    "changes",
    [{"faithful": True}, {}, {"context_batch_size": 3}],
    ids=["faithful", "default", "batched-windows"],
)
def test_pipeline_matches_the_original(pipeline, case: dict, cases: dict, changes: dict) -> None:
    """The faithful loop, and the cached/batched default, give the original's video."""
    assert case["latents"].shape[2] == cases["frames"]
    assert case["ref_image"].shape[2:] == (cases["height"], cases["width"])
    video = animate_case(pipeline, case, **_case_options(cases, **changes))
    torch.testing.assert_close(video, case["expected_video"][0].transpose(0, 1), **TOLERANCE)


@pytest.mark.slow
def test_channels_last_gives_the_original_video(pipeline, case: dict, cases: dict) -> None:
    nhwc = copy.deepcopy(pipeline).to_channels_last()
    conv = nhwc.unet.conv_in.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    video = animate_case(nhwc, case, **_case_options(cases))
    torch.testing.assert_close(video, case["expected_video"][0].transpose(0, 1), **TOLERANCE)


@pytest.mark.slow
def test_real_unconditional_branch_uses_the_tokens_of_a_black_picture(pipeline, case: dict) -> None:
    """`unconditional="real"` guides against DINOv2's view of an all-zero input instead of zeroed tokens."""
    options = {"num_inference_steps": 2, "context_frames": 8}  # one linspace step would be t=0 alone
    fake, real = (animate_case(pipeline, case, unconditional=u, **options) for u in ("fake", "real"))
    assert torch.isfinite(real).all() and (fake - real).abs().max() > 1e-3
    alone = animate_case(pipeline, case, guidance_scale=1.0, **options)
    assert (alone - fake).abs().max() > 1e-3


@pytest.mark.slow
def test_checkpoint_without_module_prefix_loads(
    case_dir: Path, unet_config: dict, tmp_path: Path, network
) -> None:
    state = torch.load(case_dir / "realisdance_tiny.ckpt", weights_only=True)["state_dict"]
    plain = tmp_path / "plain.ckpt"
    torch.save({k.removeprefix("module."): v for k, v in state.items()}, plain)
    loaded = load_network(plain, unet_config, 48)
    for key, value in network.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


@pytest.mark.parametrize("change", ["missing", "unexpected"])
def test_incomplete_checkpoint_is_refused_with_the_keys_named(
    case_dir: Path, unet_config: dict, tmp_path: Path, change: str
) -> None:
    raw = torch.load(case_dir / "realisdance_tiny.ckpt", weights_only=True)
    state = raw["state_dict"]
    key = "module.pose_guider.blocks_4.2.bias"
    if change == "missing":
        del state[key]
    else:
        state["module.pose_guider.extra.weight"] = torch.zeros(1)
    broken = tmp_path / "broken.ckpt"
    torch.save(raw, broken)
    with pytest.raises(UserError, match=f"1 {change} keys") as error:
        load_network(broken, unet_config, 48)
    named = "pose_guider.blocks_4.2.bias" if change == "missing" else "pose_guider.extra.weight"
    assert named in str(error.value)


def test_pickled_code_is_refused(unet_config: dict, tmp_path: Path) -> None:
    """weights_only loading: a checkpoint that would run code on load is rejected, not executed."""
    hostile = tmp_path / "hostile.ckpt"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "hook": Path("/")}, hostile)
    with pytest.raises(UserError, match="holds objects besides tensors and plain values, which are never"):
        load_network(hostile, unet_config, 48)


@pytest.mark.slow
def test_converted_form_loads_identically(case_dir: Path, unet_config: dict, tmp_path: Path, network) -> None:
    from safetensors import safe_open

    target = tmp_path / "net.safetensors"
    count = save_network(network.state_dict(), target, unet_config, 48)
    assert count == len(network.state_dict())
    with safe_open(str(target), framework="pt") as f:
        assert f.metadata()["format"] == FORMAT
    loaded = load_network(target)  # needs no base config: it travels in the metadata
    for key, value in network.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_uniform_schedule_is_the_original_formula() -> None:
    # step 0: no shift; windows of 8 every 4 frames, wrapping past frame 11 onto frame 0
    assert windows.uniform(0, 12, 8, 1, 4) == [
        tuple(range(8)),
        (4, 5, 6, 7, 8, 9, 10, 11),
        (8, 9, 10, 11, 0, 1, 2, 3),
    ]
    # step 1: ordered_halving(1) = 1/2, so everything shifts by half the clip
    assert windows.ordered_halving(1) == 0.5 and windows.ordered_halving(2) == 0.25
    assert windows.uniform(1, 12, 8, 1, 4)[0] == (6, 7, 8, 9, 10, 11, 0, 1)
    assert windows.uniform(3, 6, 8) == [tuple(range(6))]


@pytest.mark.parametrize("frames", [8, 12, 17, 80])
def test_sliding_windows_cover_every_frame_without_wrapping(frames: int) -> None:
    found = windows.sliding(frames, 8, 4)
    assert all(len(w) == min(8, frames) and list(w) == sorted(w) for w in found)
    assert {f for w in found for f in w} == set(range(frames))
    assert found[0][0] == 0 and found[-1][-1] == frames - 1
    assert windows.schedule("sliding", 8, 4)(5, frames) == found
