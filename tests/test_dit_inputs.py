"""RealisDanceDiTPipeline's inputs on the tiny golden pipeline: every mistake is one sentence, the
settings before any video is read, the videos before any network runs, in the words the SD
pipeline uses for the same mistake; what the rotary tables hold, said without a model; prompts,
callbacks and windows as diffusers callers give them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import GOLDEN, need
from dit_models import build_tiny_tokenizer
from safetensors.torch import load_file
from test_pipeline_api import _networks_watched

from realisdance_cli.errors import UserError

DIT = GOLDEN / "dit"
MISSING = Path("/nonexistent/pose.mp4")  # a video that would be refused if it were read


@pytest.fixture(scope="module")
def pipeline():
    from realisdance_cli.dit.pipeline import RealisDanceDiTPipeline

    pipe = RealisDanceDiTPipeline.from_pretrained(need(DIT / "tiny_dit"))
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def case() -> dict:
    return load_file(need(DIT / "pipeline_case.safetensors"))


def _common(case: dict) -> dict:
    """The golden case's texts and size, one step."""
    return {
        "prompt_embeds": case["prompt_embeds"],
        "negative_prompt_embeds": case["negative_prompt_embeds"],
        "max_resolution": 64 * 48,
        "num_inference_steps": 1,
    }


def _refused_before_any_network(pipe, message: str, *args, **kwargs) -> None:
    with _networks_watched(pipe) as calls, pytest.raises(UserError, match=message):
        pipe(*args, **kwargs)
    assert calls == []


PROMPT = torch.zeros(1, 12, 32)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"num_inference_steps": 1.5}, "num_inference_steps must be a whole number, got 1.5"),
        ({"num_inference_steps": 1001}, "num_inference_steps must be 1 to 1000, got 1001"),
        ({"num_frames": -3}, r"num_frames must be 1 or more \(None for every pose frame\), got -3"),
        ({"num_frames": 0}, "num_frames must be 1 or more"),
        ({"teacache_threshold": -1}, r"teacache_threshold must be a number more than 0 \(None turns"),
        (
            {"guidance_scale": math.nan},
            r"guidance_scale must be a number of 1 or more \(1 turns guidance off\)",
        ),
        ({"guidance_scale": -2.0}, "guidance_scale must be a number of 1 or more .* got -2.0"),
        (
            {"guidance_scale": 1.0},
            "guidance_scale 1 turns guidance off, which would ignore the negative prompt",
        ),
        (
            {"guidance_scale": 1, "negative_prompt_embeds": None, "negative_prompt": "blurry"},
            "would ignore the negative prompt",
        ),
        ({"negative_prompt": "blurry"}, "give negative_prompt or negative_prompt_embeds, not both"),
        ({"negative_prompt_embeds": None}, "no tokenizer and text encoder; give negative_prompt_embeds too"),
        (
            {"prompt": ["a person", "the stage"], "prompt_embeds": None},
            r"prompt must be one str \(or a list of one: the batch is one video\), got a list of 2",
        ),
        ({"prompt_embeds": PROMPT[0]}, r"prompt_embeds must be a tensor \(1, tokens, 32\) .*got \(12, 32\)"),
        ({"negative_prompt_embeds": PROMPT[:, :3]}, "must have one shape to run as one batch"),
        (
            {"generator": [torch.Generator(), torch.Generator()]},
            r"generator must be one torch.Generator \(or a list of one: the batch is one video\), got a "
            "list of 2",
        ),
        ({"height": 32}, "give height and width together, or neither for max_resolution pixels"),
        ({"height": 40, "width": 48}, "height and width must be multiples of 16, got 40x48"),
        ({"max_resolution": 100}, r"max_resolution must be at least 256 pixels \(one 16x16 patch\), got 100"),
        ({"output_type": "gif"}, "output_type must be one of np, pil, pt, latent, got 'gif'"),
        (
            {"callback_on_step_end_tensor_inputs": ["noise"]},
            r"callback_on_step_end_tensor_inputs may name \['latents'\] only, got \['noise'\]",
        ),
        ({"callback_on_step_end": "print"}, "callback_on_step_end must be a function"),
        ({"context_frames": 9.0}, "context_frames must be a whole number, got 9.0"),
    ],
)
def test_a_bad_setting_is_one_sentence_before_any_video_is_read(pipeline, case, options, message) -> None:
    """The pose videos are files that do not exist: a setting is said before they are read."""
    settings = _common(case) | {"prompt_embeds": PROMPT, "negative_prompt_embeds": PROMPT} | options
    _refused_before_any_network(pipeline, message, case["image"], MISSING, MISSING, **settings)


def _pixels(tensor: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 255], as a caller forgetting the original's scale would pass them."""
    return tensor * 127.5 + 127.5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda image, smpl, hamer: (image, np.zeros((64, 48, 3), np.uint8), hamer),
            r"the SMPL-CS video must be a list of frames, an \(F, H, W, 3\) array \(uint8 or floats in "
            r"\[0, 1\]\), .*got an array \(64, 48, 3\) uint8",
        ),
        (
            lambda image, smpl, hamer: (image, np.full((2, 64, 48, 3), 255.0), hamer),
            r"a frame of the SMPL-CS video must hold values in \[0, 1\] \(pixels / 255\), got 255 to 255",
        ),
        (
            lambda image, smpl, hamer: (image, smpl, np.zeros((2, 64, 48, 4), np.uint8)),
            r"a frame of the HaMeR video must be \(H, W, 3\) uint8 or floats in \[0, 1\], got \(64, 48, 4\)",
        ),
        (lambda image, smpl, hamer: (image, smpl, []), "the HaMeR video has no frames to animate"),
        (lambda image, smpl, hamer: (image, smpl[:, :, :0], hamer), "the SMPL-CS video has no frames"),
        (
            lambda image, smpl, hamer: (image, _pixels(smpl), hamer),
            r"the SMPL-CS video tensor must hold values in \[-1, 1\] \(pixels / 127.5 - 1\), got [\d.]+ "
            "to 255",
        ),
        (
            lambda image, smpl, hamer: (_pixels(image), smpl, hamer),
            r"the reference tensor must hold values in \[-1, 1\]",
        ),
        (
            lambda image, smpl, hamer: (image, smpl.long(), hamer),
            r"the SMPL-CS video tensor must hold floats in \[-1, 1\] \(or uint8 pixels\), got torch.int64",
        ),
        (
            lambda image, smpl, hamer: (torch.full((1, 3, 1, 300, 1), -0.5), smpl, hamer),
            r"the reference picture \(300x1, height x width\) is too narrow for a 64x48 video",
        ),
    ],
)
def test_a_bad_picture_or_video_is_one_sentence_before_any_network(pipeline, case, change, message) -> None:
    image, smpl, hamer = change(case["image"], case["smpl"], case["hamer"])
    _refused_before_any_network(pipeline, message, image, smpl, hamer, **_common(case))


def test_a_float_array_of_frames_is_the_list_of_them(pipeline, case, tmp_path: Path) -> None:
    """A diffusers caller gives a video as a list of frames or as one array, of uint8 or of floats
    in [0, 1]: the whole float array (refused before), with a batch axis or not, animates as the
    list of the same frames, as their uint8 pixels and as their image folder do."""
    pixels = ((case["smpl"][0].permute(1, 2, 3, 0) + 1) * 127.5).round().to(torch.uint8).numpy()
    floats = pixels.astype(np.float32) / 255
    folder = tmp_path / "smpl"
    folder.mkdir()
    for index, frame in enumerate(pixels):
        cv2.imwrite(str(folder / f"{index}.png"), frame[:, :, ::-1])
    common = _common(case) | {"latents": case["latents"], "output_type": "latent"}

    def latents(smpl: object) -> torch.Tensor:
        return pipeline(case["image"], smpl, case["hamer"], **common).frames

    listed = latents(list(floats))
    for same in (floats, floats[None], pixels, folder):
        assert torch.equal(latents(same), listed)


def test_a_pose_tensor_in_zero_to_one_is_warned_about(pipeline, case) -> None:
    """[0, 1] lies inside [-1, 1], so it cannot be refused; a pose video (black background, -1)
    with no value below 0 is said."""
    unit = case["smpl"] * 0.5 + 0.5
    with pytest.warns(
        UserWarning,
        match=r"^the SMPL-CS video tensor \(B, 3, F, H, W\) holds no value below 0, as if it were in "
        r"\[0, 1\]: the pipeline takes \(B, 3, F, H, W\) in \[-1, 1\] \(x \* 2 - 1\) or \(F, 3, H, W\) "
        r"in \[0, 1\]\.$",
    ):
        pipeline(case["image"], unit, case["hamer"], output_type="latent", **_common(case))


def test_an_elongated_reference_or_a_long_window_is_said_before_the_transformer_fails(pipeline, case) -> None:
    """A 4x9216 reference at a 400x400 video's area is 16x19200 pixels: with the video's 25 patch
    columns, 1225 rotary positions where the tables hold 1024 (it failed as a reshape error in the
    transformer). A window of 82 latent frames would reach the reference's frame position, 81."""
    reference = torch.full((1, 3, 1, 4, 9216), -0.5)
    _refused_before_any_network(
        pipeline,
        r"the video's width and the reference's scaled to the video's area \(400 and 19200 pixels\) need "
        r"1225 of the transformer's 1024 rotary positions, one per 16 pixels: together they may be 16384",
        reference, case["smpl"], case["hamer"], height=400, width=400, **_common(case),
    )  # fmt: skip
    long = torch.full((1, 3, 325, 16, 16), -0.5)
    _refused_before_any_network(
        pipeline,
        r"a window of 325 frames is more than the 321 \(81 latent frames\) .*; give context_frames 321 or "
        "fewer",
        case["image"], long, long, height=16, width=16, context_frames=325, context_overlap=0,
        **_common(case),
    )  # fmt: skip


def test_the_rotary_limits_need_only_the_config() -> None:
    """What the CLI can check before loading 14B weights: the release's config values (its shifts
    left out are the defaults, on), sizes in pixels, windows in frames."""
    from realisdance_cli.dit.transformer import check_positions_fit

    release = {"patch_size": [1, 2, 2], "rope_max_seq_len": 1024}
    check_positions_fit(release, 81, (768, 768), (768, 768))  # the original's setting
    check_positions_fit(release, 321, (768, 768), (16, 15616))  # 81 latent frames; 48 + 976 columns
    with pytest.raises(UserError, match=r"a window of 325 frames .* give --context 321 or fewer"):
        check_positions_fit(release, 325, (768, 768), (768, 768), window_name="--context")
    with pytest.raises(UserError, match=r"\(768 and 15632 pixels\) need 1025 .* together they may be 16384"):
        check_positions_fit(release, 81, (768, 768), (16, 15632))
    with pytest.raises(UserError, match=r"the video's height and the reference's .* \(16384 and 16 pixels\)"):
        check_positions_fit(release, 81, (16384, 16), (16, 16))
    unshifted = release | {"shift_f": False, "shift_w": False}  # positions shared, not appended
    check_positions_fit(unshifted, 4093, (768, 768), (16, 16384))  # 1024 latent frames
    with pytest.raises(UserError, match="each may be 16384 pixels at most"):
        check_positions_fit(unshifted, 81, (768, 768), (16, 16400))
    with pytest.raises(UserError, match=r"a window of 4097 frames is more than the 4093 \(1024 latent"):
        check_positions_fit(unshifted, 4097, (768, 768), (16, 16))


def test_a_callback_that_only_watches_changes_nothing(pipeline, case) -> None:
    """A callback returning None replaces nothing (as in the SD pipeline); one returning something
    else than a dict is said."""
    common = _common(case) | {"num_inference_steps": 2, "latents": case["latents"], "output_type": "latent"}
    image, smpl, hamer = case["image"], case["smpl"], case["hamer"]
    plain = pipeline(image, smpl, hamer, **common).frames
    steps: list[int] = []
    watched = pipeline(
        image, smpl, hamer, callback_on_step_end=lambda pipe, step, t, tensors: steps.append(step), **common
    ).frames
    assert steps == [0, 1]
    assert torch.equal(watched, plain)
    with pytest.raises(UserError, match=r"callback_on_step_end must return a dict \(or None\), got Tensor"):
        pipeline(
            image,
            smpl,
            hamer,
            callback_on_step_end=lambda pipe, step, t, tensors: tensors["latents"],
            **common,
        )


def test_a_prompt_in_a_list_of_one_is_that_prompt(case, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from realisdance_cli.dit.pipeline import RealisDanceDiTPipeline

    tokenizer = AutoTokenizer.from_pretrained(build_tiny_tokenizer(tmp_path / "tokenizer"))
    pipe = RealisDanceDiTPipeline.from_pretrained(need(DIT / "tiny_dit"), tokenizer=tokenizer)
    pipe.set_progress_bar_config(disable=True)
    common = {
        "max_resolution": 64 * 48,
        "num_inference_steps": 1,
        "latents": case["latents"],
        "output_type": "latent",
    }
    image, smpl, hamer = case["image"], case["smpl"], case["hamer"]
    alone = pipe(image, smpl, hamer, prompt="a person dancing", negative_prompt="the stage", **common).frames
    listed = pipe(
        image, smpl, hamer, prompt=["a person dancing"], negative_prompt=["the stage"], **common
    ).frames
    assert torch.equal(listed, alone)


def test_windows_follow_the_vae_temporal_factor(case) -> None:
    """A VAE that halves the frames (not Wan's quarter): windows of 9 frames are 5 latent frames,
    sharing 2 for an overlap of 4, as `check_context` counts them (they were cut by 4 frames per
    latent frame, 3 of them, and met an image condition of 5)."""
    from diffusers import AutoencoderKLWan

    from realisdance_cli.dit.pipeline import RealisDanceDiTPipeline

    config = json.loads(need(DIT / "tiny_dit/vae/config.json").read_text())
    torch.manual_seed(0)
    vae = AutoencoderKLWan.from_config(config | {"temperal_downsample": [False, False, True]})
    pipe = RealisDanceDiTPipeline.from_pretrained(need(DIT / "tiny_dit"), vae=vae)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.temporal_factor == 2
    frames: list[int] = []
    hook = pipe.transformer.register_forward_pre_hook(lambda _module, args: frames.append(args[0].shape[2]))
    loop = torch.arange(17) % case["smpl"].shape[2]
    try:
        latents = pipe(
            case["image"], case["smpl"][:, :, loop], case["hamer"][:, :, loop], context_frames=9,
            context_overlap=4, output_type="latent", generator=torch.Generator().manual_seed(0),
            **_common(case),
        ).frames  # fmt: skip
    finally:
        hook.remove()
    assert latents.shape == (1, 16, 9, 8, 6)  # 17 frames: 9 latent frames
    assert frames == [5, 5, 5]  # windows [0, 5), [3, 8), [4, 9), both branches in one call


def test_both_pipelines_say_a_shared_mistake_in_the_same_words(pipeline, case) -> None:
    """One home for the checks the two pipelines share: the same sentence for the same mistake."""
    from test_pipeline_api import _arrays

    from realisdance_cli.animator.pipeline import RealisDancePipeline

    sd_golden = need(GOLDEN / "animator")
    sd = RealisDancePipeline.from_original(
        sd_golden / "realisdance_tiny.ckpt", sd_golden / "tiny_sd", sd_golden / "tiny_dinov2"
    )
    reference, poses = _arrays(frames=2)
    mistakes = [
        {"num_inference_steps": 1.5},
        {"guidance_scale": math.nan},
        {"guidance_scale": 0.5},
        {"generator": [torch.Generator(), torch.Generator()]},
        {"callback_on_step_end_tensor_inputs": ["noise"]},
        {"callback_on_step_end": "print"},
    ]
    for mistake in mistakes:
        with pytest.raises(UserError) as said_by_sd:
            sd(reference, poses, **({"height": 64, "width": 64, "num_inference_steps": 1} | mistake))
        with pytest.raises(UserError) as said_by_dit:
            pipeline(case["image"], case["smpl"], case["hamer"], **(_common(case) | mistake))
        assert str(said_by_dit.value) == str(said_by_sd.value), mistake
