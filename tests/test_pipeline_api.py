"""RealisDancePipeline the diffusers way: loading and saving, inputs of every kind, outputs,
callbacks, attention processors and model offload order, on the tiny golden network."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import GOLDEN, need
from PIL import Image
from safetensors.torch import load_file

from realisdance_cli import (
    AnimateOptions,
    DiTOptions,
    EvalOptions,
    ExtractOptions,
    PoseInputs,
    RenderOptions,
    RunOptions,
    Selection,
    animate,
)
from realisdance_cli.animator.pipeline import PoseVideos, RealisDancePipeline
from realisdance_cli.errors import UserError

QUICK = {"num_inference_steps": 2, "context_frames": 8, "context_overlap": 4}


@pytest.fixture(scope="module")
def case_dir() -> Path:
    return need(GOLDEN / "animator")


@pytest.fixture(scope="module")
def pipeline(case_dir: Path) -> RealisDancePipeline:
    pipe = RealisDancePipeline.from_original(
        case_dir / "realisdance_tiny.ckpt", case_dir / "tiny_sd", case_dir / "tiny_dinov2"
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def case(case_dir: Path) -> dict:
    return load_file(case_dir / "pipeline_case.safetensors")


def _pixels(seed: int, frames: int | None = None, size: int = 64) -> np.ndarray:
    shape = (size, size, 3) if frames is None else (frames, size, size, 3)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _arrays(frames: int = 6) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    return _pixels(0), {name: _pixels(i + 1, frames) for i, name in enumerate(("dwpose", "hamer", "smpl"))}


def _run(pipe: RealisDancePipeline, reference, poses, **options) -> np.ndarray:
    generator = torch.Generator().manual_seed(0)
    return pipe(reference, poses, height=64, width=64, generator=generator, **QUICK, **options).frames[0]


@pytest.mark.slow
def test_pictures_arrays_tensors_and_files_are_the_same_input(pipeline, tmp_path: Path) -> None:
    from realisdance_cli.video_writer import VideoWriter

    reference, poses = _arrays()
    expected = _run(pipeline, reference, poses)
    assert expected.shape == (6, 64, 64, 3) and expected.dtype == np.float32
    assert expected.min() >= 0 and expected.max() <= 1

    as_pil = {name: [Image.fromarray(f) for f in video] for name, video in poses.items()}
    np.testing.assert_array_equal(_run(pipeline, Image.fromarray(reference), as_pil), expected)

    Image.fromarray(reference).save(tmp_path / "me.png")
    files = {}
    for name, video in poses.items():  # lossless RGB H.264, so the frames read back are the same
        files[name] = tmp_path / f"{name}.mp4"
        with VideoWriter(files[name], 8, lossless=True) as writer:
            for frame in video:
                writer.write(frame)
    np.testing.assert_array_equal(_run(pipeline, tmp_path / "me.png", files), expected)

    tensors = {name: torch.from_numpy(v).permute(0, 3, 1, 2).float() / 255 for name, v in poses.items()}
    as_tensor = _run(pipeline, torch.from_numpy(reference).permute(2, 0, 1).float() / 255, tensors)
    # DINOv2's view of a float picture is resized without rounding to 8 bits: 2.5e-4 measured
    np.testing.assert_allclose(as_tensor, expected, atol=1e-3)


@pytest.mark.slow
def test_output_types_and_return_dict(pipeline) -> None:
    reference, poses = _arrays(frames=4)
    as_np = _run(pipeline, reference, poses)
    as_pt = _run(pipeline, reference, poses, output_type="pt")
    assert as_pt.shape == (4, 3, 64, 64)
    torch.testing.assert_close(as_pt.permute(0, 2, 3, 1), torch.from_numpy(as_np))
    pictures = _run(pipeline, reference, poses, output_type="pil")
    assert [p.size for p in pictures] == [(64, 64)] * 4
    np.testing.assert_array_equal(np.asarray(pictures[0]), (as_np[0] * 255).round().astype(np.uint8))
    latents = _run(pipeline, reference, poses, output_type="latent")
    assert latents.shape == (4, 4, 8, 8)  # (channels, frames, height / 8, width / 8)
    (video,) = pipeline(reference, poses, height=64, width=64, return_dict=False, **QUICK)
    assert video.shape == (1, 4, 64, 64, 3)


@pytest.mark.slow
def test_callback_on_step_end_sees_and_replaces_the_latents(pipeline) -> None:
    reference, poses = _arrays(frames=4)
    seen: list[tuple[int, tuple]] = []

    def record(pipe, step: int, timestep, tensors: dict) -> dict:
        seen.append((step, tuple(tensors["latents"].shape)))
        return {}

    plain = _run(pipeline, reference, poses, callback_on_step_end=record)
    assert seen == [(0, (1, 4, 4, 8, 8)), (1, (1, 4, 4, 8, 8))]

    def zero_at_the_end(pipe, step: int, timestep, tensors: dict) -> dict:
        return {"latents": torch.zeros_like(tensors["latents"])} if step == 1 else {}

    changed = _run(pipeline, reference, poses, callback_on_step_end=zero_at_the_end)
    assert np.abs(changed - plain).max() > 1e-3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"height": 60}, "height and width must be a multiple of 8"),
        ({"output_type": "gif"}, "output_type must be one of"),
        ({"num_inference_steps": 0}, "num_inference_steps must be 1 or more"),
        ({"num_inference_steps": 1001}, "num_inference_steps must be 1 to 1000"),
        ({"context_frames": 40}, "context_frames must be 1 to 32"),
        ({"guidance_scale": float("nan")}, "guidance_scale"),
        ({"callback_on_step_end_tensor_inputs": ["noise"]}, "callback_on_step_end_tensor_inputs"),
    ],
)
def test_bad_settings_are_one_clear_error(pipeline, options: dict, message: str) -> None:
    reference, poses = _arrays(frames=2)
    settings = {"height": 64, "width": 64} | options
    with pytest.raises(UserError, match=message):
        pipeline(reference, poses, **settings)


def test_bad_pose_videos_are_one_clear_error(pipeline) -> None:
    reference, poses = _arrays(frames=3)
    with pytest.raises(UserError, match="missing smpl"):
        pipeline(reference, {k: v for k, v in poses.items() if k != "smpl"}, height=64, width=64)
    shorter = poses | {"hamer": poses["hamer"][:2]}
    with pytest.raises(UserError, match="same frame count and size"):
        pipeline(reference, shorter, height=64, width=64)
    with pytest.raises(
        UserError, match=r"the reference picture must be \(H, W, 3\) uint8 or floats in \[0, 1\]"
    ):
        pipeline(reference[..., :2], poses, height=64, width=64)
    tensors = PoseVideos(*(torch.rand(1, 3, 2, 32, 32) for _ in range(3)))
    with pytest.raises(UserError, match="not 64x64"):
        pipeline(reference, tensors, height=64, width=64)


@contextmanager
def _networks_watched(pipe: RealisDancePipeline) -> Iterator[list[str]]:
    """The names of the models that ran while the block ran (the VAE runs through encode/decode)."""
    calls: list[str] = []
    parts = {name: part for name, part in pipe.components.items() if isinstance(part, torch.nn.Module)}
    parts |= {"vae": pipe.vae.encoder, "vae-decoder": pipe.vae.decoder}
    handles = [
        part.register_forward_pre_hook(lambda *_, name=name: calls.append(name))
        for name, part in parts.items()
    ]
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


def _refused_before_any_network(pipe: RealisDancePipeline, message: str, *args, **kwargs) -> None:
    """One UserError saying `message`, and no model ran before it."""
    with _networks_watched(pipe) as calls, pytest.raises(UserError, match=message):
        pipe(*args, **kwargs)
    assert calls == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"num_inference_steps": 1.5}, "num_inference_steps must be a whole number, got 1.5"),
        ({"num_inference_steps": "2"}, "num_inference_steps must be a whole number, got '2'"),
        ({"context_frames": True}, "context_frames must be a whole number, got True"),
        ({"decode_chunk_size": 2.0}, "decode_chunk_size must be a whole number, got 2.0"),
        ({"guidance_scale": "2"}, "guidance_scale must be a number, got '2'"),
        (
            {"guidance_scale": 0.5},
            r"guidance_scale must be a number of 1 or more \(1 turns guidance off\), got 0.5",
        ),
        ({"callback_on_step_end": "print"}, r"callback_on_step_end must be a function \(pipeline, step,"),
        ({"latents": [0.0]}, r"latents must be \(1, 4, 2, 8, 8\), got list"),
        ({"height": 64.0}, "height must be a whole number of pixels, got 64.0"),
        ({"height": None}, "give height and width together"),
        ({"width": None}, "give height and width together"),
        ({"generator": [torch.Generator(), torch.Generator()]}, "a list of one: the batch is one video"),
        ({"generator": 0}, "generator must be a torch.Generator, got int"),
        ({"clip_image": torch.zeros(3, 10, 10)}, r"clip_image must be a float tensor \(1, 3, h, w\)"),
        ({"clip_image": torch.zeros(1, 3, 10, 28)}, "with h and w at least 14, got \\(1, 3, 10, 28\\)"),
        ({"clip_image": torch.zeros(1, 3, 28, 28, dtype=torch.uint8)}, "torch.uint8"),
    ],
)
def test_bad_types_and_sizes_are_one_error_before_any_network(pipeline, options: dict, message: str) -> None:
    reference, poses = _arrays(frames=2)
    settings = {"height": 64, "width": 64, "num_inference_steps": 1} | options
    _refused_before_any_network(pipeline, message, reference, poses, **settings)


def _as_unit_tensor(video: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(video).permute(0, 3, 1, 2).float() / 255


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda ref, poses: (ref, poses | {"dwpose": poses["dwpose"][:0]}),
            "the dwpose pose video has no frames",
        ),
        (lambda ref, poses: (ref, poses | {"hamer": []}), "the hamer pose video has no frames"),
        (lambda ref, poses: (ref, list(poses.values())), "pose_videos must be a dict of dwpose, hamer, smpl"),
        (lambda ref, poses: (ref, poses | {"smpl": None}), "the smpl pose video must be frames"),
        (
            lambda ref, poses: (torch.full((3, 64, 64), 200.0), poses),
            r"the reference picture must hold values in \[0, 1\] \(pixels / 255\), got 200 to 200",
        ),
        (lambda ref, poses: (torch.from_numpy(ref).permute(2, 0, 1), poses), r"values in \[0, 1\]"),
        (
            lambda ref, poses: (ref, poses | {"hamer": _as_unit_tensor(poses["hamer"]) * 255}),
            r"a frame of the hamer pose video must hold values in \[0, 1\]",
        ),
        (
            lambda ref, poses: (
                ref,
                PoseVideos(*(_as_unit_tensor(v)[None].transpose(1, 2) * 2 for v in poses.values())),
            ),
            r"pose_videos.dwpose must hold values in \[0, 1\]",
        ),
        (
            lambda ref, poses: (ref.astype(np.float64), poses),
            r"the reference picture must hold values in \[0, 1\] \(pixels / 255\), got \d+ to \d+",
        ),
        (
            lambda ref, poses: (ref, poses | {"smpl": np.full((2, 64, 64, 3), np.nan)}),
            r"a frame of the smpl pose video must hold values in \[0, 1\] \(pixels / 255\), got nan",
        ),
        (
            lambda ref, poses: (ref, poses | {"hamer": poses["hamer"].astype(np.int64)}),
            r"a frame of the hamer pose video must be \(H, W, 3\) uint8 or floats in \[0, 1\], got "
            r"\(64, 64, 3\) int64",
        ),
        (
            lambda ref, poses: ([ref, ref], poses),
            "the reference picture must be one picture \\(or a list of one\\), got a list of 2",
        ),
    ],
)
def test_bad_pictures_and_videos_are_one_error_before_any_network(pipeline, change, message: str) -> None:
    reference, poses = change(*_arrays(frames=2))
    _refused_before_any_network(
        pipeline, message, reference, poses, height=64, width=64, num_inference_steps=1
    )


@pytest.mark.slow
def test_a_list_of_one_generator_and_a_callback_returning_none_are_taken(pipeline) -> None:
    """diffusers' list of one generator per prompt draws the same noise; a callback that only
    watches (returns None) changes nothing; one that returns something else than a dict is said."""
    reference, poses = _arrays(frames=2)
    common = {"height": 64, "width": 64, "num_inference_steps": 1, "output_type": "latent"}
    plain = pipeline(reference, poses, generator=torch.Generator().manual_seed(3), **common).frames
    steps: list[int] = []
    listed = pipeline(
        reference,
        poses,
        generator=[torch.Generator().manual_seed(3)],
        callback_on_step_end=lambda pipe, step, t, tensors: steps.append(step),
        **common,
    ).frames
    assert steps == [0]
    torch.testing.assert_close(listed, plain, rtol=0, atol=0)
    with pytest.raises(UserError, match="callback_on_step_end must return a dict \\(or None\\), got Tensor"):
        pipeline(
            reference, poses, callback_on_step_end=lambda pipe, step, t, tensors: tensors["latents"], **common
        )


def test_float_arrays_a_list_of_one_and_a_batch_axis_are_the_uint8_input(pipeline, tmp_path: Path) -> None:
    """Pictures and videos as numpy floats in [0, 1] (pixels / 255), the reference as diffusers'
    list of one, a leading batch axis of 1 and pose videos as image folders (as the DiT pipeline
    takes them; refused before) read as the same pixels: the same video."""
    reference, poses = _arrays(frames=2)
    common = {"height": 64, "width": 64, "num_inference_steps": 1, "output_type": "latent"}

    def latents(picture, videos) -> torch.Tensor:  # type: ignore[no-untyped-def]
        return pipeline(picture, videos, generator=torch.Generator().manual_seed(3), **common).frames

    expected = latents(reference, poses)
    as_floats = latents(
        reference / 255, {name: (video / 255).astype(np.float32) for name, video in poses.items()}
    )
    torch.testing.assert_close(as_floats, expected, rtol=0, atol=0)
    listed = latents([Image.fromarray(reference)], poses)
    torch.testing.assert_close(listed, expected, rtol=0, atol=0)
    batched = latents(reference[None], {name: video[None] for name, video in poses.items()})
    torch.testing.assert_close(batched, expected, rtol=0, atol=0)
    for name, video in poses.items():
        (tmp_path / name).mkdir()
        for index, frame in enumerate(video):
            Image.fromarray(frame).save(tmp_path / name / f"{index}.png")
    folders = latents(reference, {name: tmp_path / name for name in poses})
    torch.testing.assert_close(folders, expected, rtol=0, atol=0)


def test_a_pil_picture_is_turned_upright_as_its_file_is(tmp_path: Path) -> None:
    """An EXIF orientation of 6 (turn 90 degrees clockwise): the file read by path and the PIL
    image of the same file are the same picture."""
    from realisdance_cli.pictures import picture_pixels, read_picture

    stored = np.zeros((40, 20, 3), np.uint8)
    stored[:20] = (255, 0, 0)  # top half red, bottom half blue, as stored
    stored[20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "turned.jpg", exif=exif, quality=95)

    by_path = read_picture(tmp_path / "turned.jpg")
    by_pil = picture_pixels(Image.open(tmp_path / "turned.jpg"))
    assert by_path.shape == by_pil.shape == (20, 40, 3)
    assert by_pil[10, 5, 2] > 200 and by_pil[10, 35, 0] > 200  # turned: blue on the left, red on the right
    assert np.abs(by_pil.astype(int) - by_path.astype(int)).max() <= 8  # two JPEG decoders


@pytest.mark.slow
def test_saved_pipeline_loads_to_the_same_video(pipeline, case, tmp_path: Path) -> None:
    pipeline.save_pretrained(tmp_path / "pipe")
    index = json.loads((tmp_path / "pipe" / "model_index.json").read_text())
    assert index["_class_name"] == "RealisDancePipeline"
    assert index["unet"] == ["realisdance_cli.animator.network", "RealisDanceUNet"]
    assert index["pose_guider"][1] == "PoseGuider" and index["image_encoder"][0] == "transformers"
    for part in ("unet", "reference_unet", "pose_guider", "projector", "vae"):
        assert (tmp_path / "pipe" / part / "diffusion_pytorch_model.safetensors").is_file(), part

    loaded = RealisDancePipeline.from_pretrained(tmp_path / "pipe")
    loaded.set_progress_bar_config(disable=True)
    for name, value in pipeline.network.state_dict().items():
        assert torch.equal(loaded.network.state_dict()[name], value), name
    reference, poses = _arrays(frames=4)
    # The same weights in memory laid out otherwise (views into one loaded file): float32 rounding
    # in the CPU kernels differs, 5.7e-6 at most measured; each is exact from run to run.
    np.testing.assert_allclose(_run(loaded, reference, poses), _run(pipeline, reference, poses), atol=2e-5)


def test_fp16_variant_round_trips(pipeline, tmp_path: Path) -> None:
    half = copy.deepcopy(pipeline).to(torch.float16)
    half.save_pretrained(tmp_path / "pipe", variant="fp16")
    assert (tmp_path / "pipe" / "unet" / "diffusion_pytorch_model.fp16.safetensors").is_file()
    loaded = RealisDancePipeline.from_pretrained(tmp_path / "pipe", variant="fp16", dtype=torch.float16)
    assert loaded.unet.dtype == loaded.pose_guider.dtype == torch.float16
    weight = loaded.unet.conv_in.weight
    torch.testing.assert_close(weight, pipeline.unet.conv_in.weight.half(), rtol=0, atol=0)


@pytest.mark.slow
def test_attention_processors_keep_reference_attention(pipeline, case) -> None:
    """diffusers' processor setters (what xformers and set_default_attn_processor use) leave the
    reference hooks in place: the golden video still comes out."""
    from diffusers.models.attention_processor import AttnProcessor
    from test_animator import TOLERANCE, _case_options, animate_case

    cases = json.loads((GOLDEN / "animator" / "CASES.json").read_text())
    plain = copy.deepcopy(pipeline)
    plain.unet.set_default_attn_processor()
    plain.reference_unet.set_attn_processor(AttnProcessor())
    assert {type(p) for p in plain.unet.attn_processors.values()} == {AttnProcessor}
    video = animate_case(plain, case, **_case_options(cases))
    torch.testing.assert_close(video, case["expected_video"][0].transpose(0, 1), **TOLERANCE)


@pytest.mark.slow
def test_offload_order_frees_the_reference_parts_before_denoising(pipeline) -> None:
    """`model_cpu_offload_seq` names every model, and the reference parts (DINOv2, projector,
    reference UNet) are done before the first UNet call, so offload sends them back to the CPU."""
    calls: list[str] = []
    handles = []
    models = {name: part for name, part in pipeline.components.items() if isinstance(part, torch.nn.Module)}
    assert set(pipeline.model_cpu_offload_seq.split("->")) == set(models)
    watched = {**models, "vae": pipeline.vae.encoder, "vae-decoder": pipeline.vae.decoder}
    for name, part in watched.items():  # the VAE runs through encode/decode, not forward
        label = name.removesuffix("-decoder")
        handles.append(part.register_forward_pre_hook(lambda *_, label=label: calls.append(label)))
    try:
        reference, poses = _arrays(frames=4)
        _run(pipeline, reference, poses)
    finally:
        for handle in handles:
            handle.remove()
    first_unet = calls.index("unet")
    for name in ("image_encoder", "projector", "reference_unet"):
        assert name not in calls[first_unet:], name
    assert "pose_guider" not in calls[first_unet:]  # its features are made up front
    assert calls[-1] == "vae"


@pytest.mark.slow
def test_vae_slicing_gives_the_same_video(pipeline) -> None:
    reference, poses = _arrays(frames=4)
    expected = _run(pipeline, reference, poses)
    sliced = copy.deepcopy(pipeline)
    sliced.enable_vae_slicing()
    np.testing.assert_allclose(_run(sliced, reference, poses), expected, atol=1e-5)


@pytest.mark.parametrize("model", [None, "dit", 3])
def test_animate_options_take_a_model_of_the_two_kinds(model: object) -> None:
    """AnimateOptions(model=None) failed later inside the job with an assertion."""
    from realisdance_cli import AnimateOptions, DiTOptions, SDOptions

    assert AnimateOptions().dit is None and isinstance(AnimateOptions().model, SDOptions)
    assert AnimateOptions(model=DiTOptions(prompt="a dance")).dit == DiTOptions(prompt="a dance")
    with pytest.raises(TypeError, match=r"AnimateOptions.model is SDOptions\(\) or DiTOptions\(...\), got"):
        AnimateOptions(model=model)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (
            lambda: ExtractOptions(stages=["smplx"]),
            "--only takes stages, comma-separated: dwpose, hamer, smplerx; got smplx ('smplx' is the "
            "track stream; its stage is 'smplerx').",
        ),
        (
            lambda: ExtractOptions(stages="dwpose,bogus"),
            "--only takes stages, comma-separated: dwpose, hamer, smplerx; got bogus.",
        ),
        (
            lambda: RenderOptions(videos="mano"),
            "--only takes videos, comma-separated: dwpose, hamer, smpl; got mano ('mano' is the track "
            "stream; its video is 'hamer').",
        ),
        (
            lambda: RenderOptions(size="64x48x3"),
            "--size must look like 768x576 (height x width), got '64x48x3'.",
        ),
        (
            lambda: RenderOptions(size=(64, 48.5)),
            "--size must look like 768x576 (height x width), got (64, 48.5).",
        ),
        (
            lambda: AnimateOptions(size="64by64"),
            "--size must look like 768x576 (height x width), got '64by64'.",
        ),
        (lambda: AnimateOptions(size="1x64"), "--size must be between 2x2 and 8192x8192, got '1x64'."),
        (
            lambda: EvalOptions(metrics="sharpness"),
            "--metrics takes metrics, comma-separated: ssim, psnr, l1, lpips, fid, fid-vid, fvd, pose, "
            "hands3d, identity, smoothness; got sharpness.",
        ),
        (
            lambda: ExtractOptions(selection=Selection(fps=Fraction(16))),
            "extraction reads frames by start and stride, not resampled to a rate (no fps).",
        ),
        (lambda: RunOptions(shard="5/4"), "--shard takes i/n with 1 <= i <= n (for example 1/4), not '5/4'."),
        (
            lambda: RunOptions(shard=(4, 4)),
            "shard is the 0-based (index, count) with 0 <= index < count, or --shard's text i/n "
            "(1/4 is (0, 4)); got (4, 4).",
        ),
        (lambda: EvalOptions(protocol="vbench"), "--protocol must be disco or disco-legacy, got 'vbench'."),
    ],
)
def test_an_option_mistake_is_one_sentence_when_the_options_are_made(make, words: str) -> None:  # type: ignore[no-untyped-def]
    """Mistakes in the library's options surfaced deep inside the work (KeyError 'd', a TypeError
    of a helper's arguments); they are the CLI's sentences, before any work."""
    with pytest.raises(UserError) as caught:
        make()
    assert str(caught.value) == words


def test_one_name_or_the_clis_text_is_taken_for_a_list_or_a_size() -> None:
    """A single name is a list of one (not its letters), and text is read as the CLI reads it."""
    assert ExtractOptions(stages="dwpose").stages == ["dwpose"]
    assert ExtractOptions(stages="smplerx, DWPose").stages == ["dwpose", "smplerx"]
    assert RenderOptions(videos="smpl").videos == ["smpl"]
    assert RenderOptions(size="64x48").size == AnimateOptions(size="64x48").size == (64, 48)
    assert EvalOptions(metrics="ssim").chosen_metrics() == ["ssim"]
    assert RunOptions(shard="2/4").shard == RunOptions(shard=(1, 4)).shard == (1, 4)
    assert RunOptions(evaluation=EvalOptions(metrics=["psnr", "ssim"])).evaluation.chosen_metrics() == [
        "ssim",
        "psnr",
    ]


def test_animate_says_a_pipeline_of_the_other_model(pipeline, tmp_path: Path) -> None:
    """An SD pipeline given for DiT options failed deep inside with an AttributeError, after the
    outputs were claimed; now one sentence first, and nothing is written."""
    options = AnimateOptions(model=DiTOptions(prompt="a dance"), device="cpu")
    out = tmp_path / "out.mp4"
    with pytest.raises(UserError) as caught:
        animate(tmp_path / "me.png", PoseInputs(tmp_path), out, options, pipeline=pipeline)
    assert str(caught.value) == (
        "pipeline is a RealisDancePipeline, but AnimateOptions.model is DiTOptions, which runs a "
        "RealisDanceDiTPipeline; give the pipeline of that model, or the model of that pipeline."
    )
    assert list(tmp_path.iterdir()) == []
