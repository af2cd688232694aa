"""RealisDance-DiT against the authors' code: the golden cases of ../shared/golden/dit (made with
the original `rd_dit.py` and `rd_dit_pipeline.py` under diffusers 0.33.1), loading the release's
folder layout, long videos as windows, and bad input."""

from __future__ import annotations

import itertools
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import GOLDEN, need
from dit_models import build_tiny_tokenizer
from safetensors.torch import load_file

from realisdance_cli.dit.job import place
from realisdance_cli.errors import UserError

DIT = GOLDEN / "dit"
SHIFTS = {
    "out_shift_fhw": (True, True, True),
    "out_shift_hw": (False, True, True),
    "out_shift_none": (False,) * 3,
}
PIPELINE_CASES = {
    "pipeline_case": ("pipeline", "tiny_dit/scheduler"),
    "pipeline_flowmatch_case": ("pipeline", "scheduler_flowmatch"),
    "teacache_case": ("teacache", "tiny_dit/scheduler"),
}


def cases() -> dict:
    return json.loads(need(DIT / "CASES.json").read_text())


@pytest.fixture(scope="module")
def pipeline():
    from realisdance_cli.dit.pipeline import RealisDanceDiTPipeline

    pipe = RealisDanceDiTPipeline.from_pretrained(need(DIT / "tiny_dit"))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def call_settings(case: dict, settings: dict) -> dict:
    """The pipeline arguments of a golden pipeline case."""
    kwargs = {
        "max_resolution": settings["max_resolution"],
        "num_frames": settings["num_frames"],
        "num_inference_steps": settings["num_inference_steps"],
        "guidance_scale": settings["guidance_scale"],
        "latents": case["latents"],
        "prompt_embeds": case["prompt_embeds"],
        "negative_prompt_embeds": case["negative_prompt_embeds"],
    }
    if "teacache_thresh" in settings:
        kwargs.update(
            teacache_threshold=settings["teacache_thresh"], use_timestep_proj=settings["use_timestep_proj"]
        )
    return kwargs


@pytest.mark.parametrize("output", sorted(SHIFTS))
def test_transformer_forward_equals_the_original(pipeline, output: str) -> None:
    case = load_file(need(DIT / "forward_case.safetensors"))
    transformer = pipeline.transformer
    shift = dict(zip(("shift_f", "shift_h", "shift_w"), SHIFTS[output], strict=True))
    saved = {name: transformer.config[name] for name in shift}
    transformer.register_to_config(**shift)
    try:
        with torch.no_grad():
            out = transformer(
                case["hidden_states"],
                case["timestep"],
                case["encoder_hidden_states"],
                case["encoder_hidden_states_image"],
                case["add_cond"],
                case["attn_cond"],
                return_dict=False,
            )[0]
    finally:
        transformer.register_to_config(**saved)
    torch.testing.assert_close(out, case[output], rtol=1e-4, atol=1e-4)
    assert not torch.allclose(case["out_shift_fhw"], case["out_shift_none"], atol=1e-3)  # the shift matters


def test_text_embeddings_are_cut_to_each_prompt_and_zero_padded(pipeline) -> None:
    case = load_file(need(DIT / "text_case.safetensors"))
    with torch.no_grad():
        embeds = pipeline.text_embeddings(case["input_ids"], case["attention_mask"])
    torch.testing.assert_close(embeds, case["prompt_embeds"], rtol=1e-5, atol=1e-5)
    lengths = case["attention_mask"].sum(1)
    assert lengths[0] != lengths[1] and not embeds[0, lengths[0] :].any()


@pytest.mark.parametrize("faithful", [False, True], ids=["default", "faithful"])
@pytest.mark.parametrize("name", sorted(PIPELINE_CASES))
def test_pipeline_equals_the_original(pipeline, name: str, faithful: bool) -> None:
    from realisdance_cli.dit.pipeline import scheduler_from_folder

    settings_key, scheduler = PIPELINE_CASES[name]
    settings = cases()[settings_key]
    case = load_file(need(DIT / f"{name}.safetensors"))
    pipeline.scheduler = scheduler_from_folder(DIT / scheduler)
    kwargs = call_settings(case, settings) | {"faithful": faithful}
    result = pipeline(case["image"], case["smpl"], case["hamer"], output_type="latent", **kwargs)
    torch.testing.assert_close(result.frames, case["final_latents"], rtol=1e-4, atol=1e-4)
    # the threshold skipped some block passes; without it none are
    assert (result.teacache_skipped > 0) == (name == "teacache_case")
    video = pipeline(case["image"], case["smpl"], case["hamer"], output_type="np", **kwargs).frames
    assert video.shape == case["video"].shape
    np.testing.assert_allclose(video, case["video"].numpy(), atol=1e-4)


def release_folder(tmp_path: Path) -> Path:
    """The tiny golden models in the release's layout: the transformer and the text encoder in
    shards with an index file, a tokenizer, and a model_index.json naming the authors' classes
    (which the loader does not need)."""
    from transformers import UMT5EncoderModel

    from realisdance_cli.dit.transformer import RealisDanceDiT

    folder = tmp_path / "RealisDance-DiT"
    for part in ("vae", "image_encoder", "scheduler"):
        shutil.copytree(need(DIT / "tiny_dit" / part), folder / part)
    RealisDanceDiT.from_pretrained(DIT / "tiny_dit/transformer").save_pretrained(
        folder / "transformer", max_shard_size="200KB"
    )
    UMT5EncoderModel.from_pretrained(DIT / "tiny_dit/text_encoder").save_pretrained(
        folder / "text_encoder", max_shard_size="60KB"
    )
    build_tiny_tokenizer(folder / "tokenizer")
    index = {
        "_class_name": "RealisDanceDiTPipeline",
        "transformer": ["rd_dit", "RealisDanceDiT"],
        "vae": ["diffusers", "AutoencoderKLWan"],
    }
    (folder / "model_index.json").write_text(json.dumps(index))
    return folder


def test_a_release_folder_with_shards_and_a_tokenizer_loads_and_follows_the_prompt(
    pipeline, tmp_path: Path
) -> None:
    from realisdance_cli.dit.pipeline import RealisDanceDiTPipeline

    folder = release_folder(tmp_path)
    assert (folder / "transformer/diffusion_pytorch_model.safetensors.index.json").is_file()
    assert len(list((folder / "transformer").glob("*-of-*.safetensors"))) > 1
    loaded = RealisDanceDiTPipeline.from_pretrained(folder)
    loaded.set_progress_bar_config(disable=True)
    assert type(loaded.scheduler).__name__ == "UniPCMultistepScheduler"
    for name, tensor in pipeline.transformer.state_dict().items():
        assert torch.equal(loaded.transformer.state_dict()[name], tensor), name

    case = load_file(need(DIT / "pipeline_case.safetensors"))
    common = {
        "max_resolution": 64 * 48,
        "num_inference_steps": 2,
        "latents": case["latents"],
        "output_type": "latent",
    }
    dancing = loaded(case["image"], case["smpl"], case["hamer"], prompt="a person dancing", **common).frames
    again = loaded(case["image"], case["smpl"], case["hamer"], prompt="a person dancing", **common).frames
    other = loaded(case["image"], case["smpl"], case["hamer"], prompt="the stage", **common).frames
    assert torch.equal(dancing, again)
    assert not torch.allclose(dancing, other, atol=1e-4)


def test_a_folder_without_a_transformer_is_refused(tmp_path: Path) -> None:
    from realisdance_cli.dit.pipeline import RealisDanceDiTPipeline

    shutil.copytree(need(DIT / "tiny_dit/vae"), tmp_path / "vae")
    with pytest.raises(UserError, match="it has no image_encoder/, transformer/, scheduler/"):
        RealisDanceDiTPipeline.from_pretrained(tmp_path)


def test_torch_dtype_is_the_older_name_of_dtype() -> None:
    """diffusers callers write torch_dtype= (it was taken for a component, and after loading
    everything the folder was called damaged)."""
    from realisdance_cli.dit.pipeline import RealisDanceDiTPipeline

    pipe = RealisDanceDiTPipeline.from_pretrained(need(DIT / "tiny_dit"), torch_dtype=torch.bfloat16)
    assert pipe.transformer.dtype == torch.bfloat16 and pipe.text_encoder.dtype == torch.bfloat16
    assert pipe.vae.dtype == torch.float32 and pipe.image_encoder.dtype == torch.float32  # as the original
    with pytest.raises(ValueError, match="give dtype or torch_dtype"):
        RealisDanceDiTPipeline.from_pretrained(
            DIT / "tiny_dit", dtype=torch.float16, torch_dtype=torch.float16
        )


def test_an_unknown_keyword_is_refused_before_anything_loads(tmp_path: Path) -> None:
    """The folder's transformer is damaged: the keyword is said, not the damage (nothing loaded)."""
    from realisdance_cli.dit.pipeline import RealisDanceDiTPipeline

    folder = release_folder(tmp_path)
    (folder / "transformer/config.json").write_text("[1]")
    with pytest.raises(
        TypeError,
        match=r"^from_pretrained\(\) got an unexpected keyword argument 'dtypes'; it takes the components "
        r"tokenizer, text_encoder, image_encoder, transformer, vae, scheduler and the options dtype, "
        r"progress, torch_dtype, variant, revision, cache_dir, token, local_files_only, force_download\.$",
    ):
        RealisDanceDiTPipeline.from_pretrained(folder, dtypes=torch.float16)


def test_a_missing_folder_is_said_not_looked_up_on_the_hub(tmp_path: Path, monkeypatch) -> None:
    """A path that cannot be a hub id (a leading "/" or ".", more than one "/") is a missing
    folder; one that can, found neither here nor on the hub, is said as both."""
    from realisdance_cli.dit.pipeline import RealisDanceDiTPipeline

    monkeypatch.chdir(tmp_path)
    for missing in (tmp_path / "weights/realisdance-dit", "./weights/realisdance-dit", "a/weights/dit"):
        with pytest.raises(UserError, match=rf"^the folder {Path(missing)} does not exist\.$"):
            RealisDanceDiTPipeline.from_pretrained(missing)
    with pytest.raises(
        UserError,
        match=r"^there is no folder weights/realisdance-dit, and the hub model weights/realisdance-dit is "
        r"not in the cache \(the hub cannot be reached, or local_files_only is set\)\.$",
    ):
        RealisDanceDiTPipeline.from_pretrained("weights/realisdance-dit", local_files_only=True)
    (tmp_path / "weights/file").parent.mkdir()
    (tmp_path / "weights/file").write_text("")
    with pytest.raises(UserError, match=r"^weights/file is a file, not a RealisDance-DiT folder\.$"):
        RealisDanceDiTPipeline.from_pretrained("weights/file")


def test_a_hub_id_is_fetched_with_the_hub_keywords(pipeline, tmp_path: Path) -> None:
    """revision, cache_dir and local_files_only reach the hub's download: a cache holding the tiny
    release at revision v1 only (as huggingface_hub lays it out) serves it offline."""
    from realisdance_cli.dit.pipeline import RealisDanceDiTPipeline

    model = tmp_path / "cache/models--someone--tiny-dit"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (model / "snapshots").mkdir(parents=True)
    (model / "snapshots" / commit).symlink_to(need(DIT / "tiny_dit"), target_is_directory=True)
    (model / "refs").mkdir()
    (model / "refs/v1").write_text(commit)
    hub = {"cache_dir": tmp_path / "cache", "local_files_only": True}
    loaded = RealisDanceDiTPipeline.from_pretrained("someone/tiny-dit", revision="v1", **hub)
    for name, tensor in pipeline.transformer.state_dict().items():
        assert torch.equal(loaded.transformer.state_dict()[name], tensor), name
    with pytest.raises(UserError, match="the hub model someone/tiny-dit is not in the cache"):
        RealisDanceDiTPipeline.from_pretrained("someone/tiny-dit", **hub)  # main: not cached


def test_a_variant_picks_the_weight_files_of_that_name(pipeline, tmp_path: Path) -> None:
    from realisdance_cli.dit.pipeline import RealisDanceDiTPipeline

    folder = shutil.copytree(need(DIT / "tiny_dit"), tmp_path / "tiny_dit")
    for weights in folder.glob("*/*.safetensors"):
        weights.rename(weights.with_suffix(".fp16.safetensors"))
    loaded = RealisDanceDiTPipeline.from_pretrained(folder, variant="fp16")
    for name, tensor in pipeline.vae.state_dict().items():
        assert torch.equal(loaded.vae.state_dict()[name], tensor), name


def long_video(pipeline, frames: int, latents: torch.Tensor | None = None, steps: int = 4, **kwargs):
    """The golden case's poses looped to `frames` frames, seeded noise unless given."""
    case = load_file(need(DIT / "pipeline_case.safetensors"))
    loop = torch.arange(frames) % case["smpl"].shape[2]
    return pipeline(
        case["image"], case["smpl"][:, :, loop], case["hamer"][:, :, loop],
        prompt_embeds=case["prompt_embeds"], negative_prompt_embeds=case["negative_prompt_embeds"],
        max_resolution=64 * 48, num_inference_steps=steps, generator=torch.Generator().manual_seed(0),
        latents=latents, **kwargs,
    ).frames  # fmt: skip


def test_a_video_that_fits_one_window_is_the_original_computation(pipeline) -> None:
    from realisdance_cli.dit.pipeline import scheduler_from_folder

    pipeline.scheduler = scheduler_from_folder(DIT / "tiny_dit/scheduler")
    whole = long_video(pipeline, 9, output_type="latent")
    windowed = long_video(pipeline, 9, output_type="latent", context_frames=9, context_overlap=4)
    assert torch.equal(whole, windowed)


def test_long_videos_are_windows_without_a_jump_at_their_borders(pipeline) -> None:
    """33 frames (9 latent frames) as windows of 13 frames (4 latent frames) sharing 4 (1):
    windows [0, 4), [3, 7), [5, 9). From noise that is the same in every frame, the change from
    one latent frame to the next where windows hand over stays within the change inside them
    (cutting over from one window to the next instead of blending fails this)."""
    from realisdance_cli.animator.windows import sliding
    from realisdance_cli.dit.pipeline import scheduler_from_folder

    pipeline.scheduler = scheduler_from_folder(DIT / "tiny_dit/scheduler")
    noise = torch.randn(1, 16, 1, 8, 6, generator=torch.Generator().manual_seed(0)).repeat(1, 1, 9, 1, 1)
    latents = long_video(pipeline, 33, noise, context_frames=13, context_overlap=4, output_type="latent")[0]
    windows = sliding(9, 4, 1)
    assert windows == [range(0, 4), range(3, 7), range(5, 9)]
    change = (latents[:, 1:] - latents[:, :-1]).abs().mean(dim=(0, 2, 3))  # latent frame k -> k+1
    hand_over = {
        k for before, after in itertools.pairwise(windows) for k in range(after.start - 1, before.stop)
    }
    inside = [change[k] for k in range(len(change)) if k not in hand_over]
    assert max(change[k] for k in hand_over) <= max(inside), change

    video = long_video(pipeline, 33, context_frames=13, context_overlap=4)
    assert video.shape == (1, 33, 64, 48, 3)


def test_the_branches_share_one_copy_of_the_pose_tokens(pipeline) -> None:
    """Conditions encoded for both guidance branches hold the pose tokens once (batch 1), and the
    batch of two through them is each branch on its own."""
    case = load_file(need(DIT / "forward_case.safetensors"))
    text = torch.cat([case["encoder_hidden_states"], -case["encoder_hidden_states"]])
    image = torch.cat(
        [case["encoder_hidden_states_image"], torch.zeros_like(case["encoder_hidden_states_image"])]
    )
    reference = torch.cat([case["attn_cond"], torch.zeros_like(case["attn_cond"])])
    transformer = pipeline.transformer
    with torch.no_grad():
        conditions = transformer.encode_conditions(text, image, case["add_cond"], reference)
        hidden_states = case["hidden_states"].expand(2, -1, -1, -1, -1)
        batch = transformer(
            hidden_states, case["timestep"].expand(2), conditions=conditions, return_dict=False
        )[0]
        alone = [
            transformer(
                case["hidden_states"], case["timestep"], text[i : i + 1], image[i : i + 1], case["add_cond"],
                reference[i : i + 1], return_dict=False,
            )[0]
            for i in range(2)
        ]  # fmt: skip
    assert conditions.pose.shape == (1, 3 * 3 * 4, 48) and conditions.context.shape[0] == 2
    torch.testing.assert_close(batch, torch.cat(alone), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(alone[0], alone[1], atol=1e-3)


def test_windows_after_the_first_encode_their_pose_tokens_when_they_run(pipeline) -> None:
    """No window's pose tokens but the first's are kept between steps (they would hold ~0.5 GB
    each on the accelerator for the 14B): a video of one window encodes them once for both
    branches, one of three windows once plus once per step for each later window."""
    made: list[tuple[int, ...]] = []
    hook = pipeline.transformer.add_proj.register_forward_hook(lambda _m, _in, out: made.append(out.shape))
    try:
        long_video(pipeline, 9, steps=1, output_type="latent")
        one_window = list(made)
        made.clear()
        long_video(pipeline, 33, steps=2, output_type="latent", context_frames=13, context_overlap=4)
    finally:
        hook.remove()
    assert one_window == [(1, 3 * 12, 48)]  # 3 latent frames of 4x3 patches
    assert made == [(1, 4 * 12, 48)] * (1 + 2 * 2)


def test_a_pose_video_reaches_the_vae_a_few_frames_at_a_time(pipeline) -> None:
    """Each causal piece is converted as the encoder reads it, never the whole video at once (on
    a GPU the whole copy held 6.8 GB per minute of 768x768 video): the first layer only ever sees
    storage of its own few frames, and the latents equal those of a whole conversion."""
    video = torch.rand(1, 3, 13, 32, 24, generator=torch.Generator().manual_seed(0)) * 2 - 1
    stored: list[tuple[int, int]] = []
    spy = pipeline.vae.encoder.conv_in.register_forward_pre_hook(
        lambda _m, args: stored.append((args[0].untyped_storage().nbytes(), args[0].nbytes))
    )
    pipeline.vae.double()  # a conversion on arrival, as from the CPU's float32 to the GPU's
    try:
        streamed = pipeline.encode_video(video)
        spy.remove()
        whole = pipeline.encode_video(video.double())
    finally:
        spy.remove()
        pipeline.vae.float()
    assert len(stored) == 4 and all(storage == size for storage, size in stored)  # 1 + 3 pieces of 4
    assert streamed.dtype == torch.float64 and torch.equal(streamed, whole)


def test_decoding_piece_by_piece_gives_diffusers_frames_on_the_cpu(pipeline) -> None:
    """The frames leave the VAE one latent frame at a time (diffusers gathers a long video on the
    accelerator, twice over at the end): the same numbers as diffusers' decode."""
    from realisdance_cli.dit.vae import decode_streamed

    vae = pipeline.vae
    latents = torch.randn(1, vae.config.z_dim, 4, 6, 5, generator=torch.Generator().manual_seed(1))
    told: list[int] = []
    frames = decode_streamed(vae, latents, told.append)
    assert frames.shape == (1, 3, 13, 48, 40) and frames.device.type == "cpu"
    assert told == [1, 1, 1, 1]  # a progress bar moves with each latent frame
    assert torch.equal(frames, vae.decode(latents, return_dict=False)[0])


def test_the_clip_view_is_made_where_the_reference_is() -> None:
    from realisdance_cli.dit.processing import clip_view

    view = clip_view(torch.zeros(1, 3, 1, 8, 8, device="meta"))
    assert view.device.type == "meta" and view.shape == (1, 3, 224, 224)


def test_a_lora_scale_in_attention_kwargs_scales_the_lora_layers_for_that_call() -> None:
    peft = pytest.importorskip("peft")
    from realisdance_cli.dit.transformer import RealisDanceDiT

    case = load_file(need(DIT / "forward_case.safetensors"))
    transformer = RealisDanceDiT.from_pretrained(need(DIT / "tiny_dit/transformer"))
    inputs = [case[name] for name in ("hidden_states", "timestep", "encoder_hidden_states")]
    inputs += [case[name] for name in ("encoder_hidden_states_image", "add_cond", "attn_cond")]
    with torch.no_grad():
        plain = transformer(*inputs, return_dict=False)[0]
        transformer.add_adapter(peft.LoraConfig(r=2, target_modules=["to_q"], init_lora_weights=False))
        lora = transformer(*inputs, return_dict=False)[0]
        off = transformer(*inputs, return_dict=False, attention_kwargs={"scale": 0.0})[0]
        again = transformer(*inputs, return_dict=False)[0]
    assert not torch.allclose(lora, plain, atol=1e-3)
    torch.testing.assert_close(off, plain, rtol=1e-6, atol=1e-6)
    assert torch.equal(again, lora)  # the scale holds for that call only


def test_bad_calls_are_one_sentence_before_any_work(pipeline) -> None:
    case = load_file(need(DIT / "pipeline_case.safetensors"))
    image, smpl, hamer = case["image"], case["smpl"], case["hamer"]
    embeds = {
        "prompt_embeds": case["prompt_embeds"],
        "negative_prompt_embeds": case["negative_prompt_embeds"],
    }
    with pytest.raises(UserError, match="give a prompt or prompt_embeds"):
        pipeline(image, smpl, hamer)
    with pytest.raises(UserError, match="no tokenizer"):
        pipeline(image, smpl, hamer, prompt="a person dancing")
    with pytest.raises(UserError, match="same number of frames, got 9 and 5"):
        pipeline(image, smpl, hamer[:, :, :5], **embeds)
    with pytest.raises(UserError, match="context_frames must be 4k\\+1"):
        pipeline(image, smpl, hamer, context_frames=10, **embeds)
    with pytest.raises(UserError, match=r"context_overlap must be a multiple of 4 from 0 to 4 \(context_"):
        pipeline(image, smpl, hamer, context_frames=9, context_overlap=8, **embeds)
    with pytest.raises(UserError, match="must have one shape to run as one batch"):
        pipeline(image, smpl, hamer, **{**embeds, "negative_prompt_embeds": embeds["prompt_embeds"][:, :3]})
    with pytest.raises(UserError, match=r"latents must be \(1, 16, 3, 8, 6\)"):
        pipeline(image, smpl, hamer, max_resolution=64 * 48, latents=torch.zeros(1, 16, 2, 8, 6), **embeds)
    with pytest.raises(UserError, match=r"the reference tensor must be \(B, 3, 1, H, W\)"):
        pipeline(image[:, :, 0], smpl, hamer, **embeds)


def test_the_sd_pipelines_tensors_in_zero_to_one_are_the_same_video(pipeline) -> None:
    """RealisDancePipeline's form, (F, 3, H, W) pose videos and a (3, H, W) reference in [0, 1],
    is the original's (1, 3, F, H, W) in [-1, 1] (x * 2 - 1), without a warning; out of [0, 1],
    it is said in its own words."""
    case = load_file(need(DIT / "pipeline_case.safetensors"))
    smpl, hamer = ((case[name][0] * 0.5 + 0.5).transpose(0, 1) for name in ("smpl", "hamer"))
    image = case["image"][0, :, 0] * 0.5 + 0.5
    assert image.shape[0] == 3 and smpl.shape[:2] == (9, 3)  # (3, H, W), (F, 3, H, W)
    common = {
        "prompt_embeds": case["prompt_embeds"],
        "negative_prompt_embeds": case["negative_prompt_embeds"],
        "max_resolution": 64 * 48,
        "num_inference_steps": 1,
        "latents": case["latents"],
        "output_type": "latent",
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        unit = pipeline(image, smpl, hamer, **common).frames
    signed = [picture[:, None][None] * 2 - 1 for picture in (image,)]
    signed += [video.transpose(0, 1)[None] * 2 - 1 for video in (smpl, hamer)]
    assert torch.equal(unit, pipeline(*signed, **common).frames)
    with pytest.raises(
        UserError,
        match=r"^the HaMeR video tensor \(F, 3, H, W\) must hold values in \[0, 1\] \(pixels / 255\), got -1 "
        "to 1",
    ):
        pipeline(image, smpl, hamer * 2 - 1, **common)


def golden_latents(pipe) -> tuple[torch.Tensor, torch.Tensor]:
    """The UniPC golden case through `pipe`, and its expected final latents."""
    from realisdance_cli.dit.pipeline import scheduler_from_folder

    case = load_file(need(DIT / "pipeline_case.safetensors"))
    pipe.scheduler = scheduler_from_folder(DIT / "tiny_dit/scheduler")
    kwargs = call_settings(case, cases()["pipeline"])
    return pipe(case["image"], case["smpl"], case["hamer"], output_type="latent", **kwargs).frames, case[
        "final_latents"
    ]


def test_fp8_weight_storage_keeps_the_blocks_in_fp8_and_the_result_close() -> None:
    from realisdance_cli.dit.pipeline import RealisDanceDiTPipeline

    pipe = RealisDanceDiTPipeline.from_pretrained(need(DIT / "tiny_dit"))
    pipe.set_progress_bar_config(disable=True)
    place(pipe, "none", torch.device("cpu"), torch.float32, fp8=True)  # as `rdance animate --fp8` places it
    stored = dict(pipe.transformer.named_parameters())
    assert stored["blocks.0.attn1.to_q.weight"].dtype == torch.float8_e4m3fn
    assert stored["add_conv_in.weight"].dtype == torch.float32  # the pose and reference inputs stay exact
    latents, expected = golden_latents(pipe)
    error = (latents - expected).abs()
    assert 0 < error.max() < 0.02 * expected.abs().max()  # fp8 rounds the weights, a little


@pytest.mark.slow
def test_compiled_blocks_give_the_same_video() -> None:
    from realisdance_cli.dit.pipeline import RealisDanceDiTPipeline

    pipe = RealisDanceDiTPipeline.from_pretrained(need(DIT / "tiny_dit"))
    pipe.set_progress_bar_config(disable=True)
    pipe.transformer.compile_repeated_blocks()
    latents, expected = golden_latents(pipe)
    torch.testing.assert_close(latents, expected, rtol=1e-4, atol=1e-4)
