"""One process of the `torchrun` jobs of test_dit_parallel.py: the tiny golden RealisDance-DiT
with its sequence split across the job's processes (`realisdance_cli.dit.parallel`), on the golden
forward case and short pipeline calls. Every rank saves what it computed, and the sentence that
refuses a sequence the processes cannot split evenly, and the seed it got from rank 0 (which
drew it), to OUT/rank<N>.safetensors.

    python -m torch.distributed.run --nproc_per_node 2 tests/dit_parallel_worker.py \\
        DIT_FOLDER OUT_FOLDER ulysses|ring fp32|bf16
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file

from realisdance_cli.dit.parallel import start_parallel, world_from_environment
from realisdance_cli.dit.pipeline import RealisDanceDiTPipeline, scheduler_from_folder
from realisdance_cli.errors import UserError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def load_pipeline(dit: Path, dtype: torch.dtype) -> RealisDanceDiTPipeline:
    pipeline = RealisDanceDiTPipeline.from_pretrained(dit / "tiny_dit", dtype=dtype)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def forward(pipeline: RealisDanceDiTPipeline, dit: Path, reference_rows: int | None = None) -> torch.Tensor:
    """The golden forward case (its reference cut to `reference_rows` latent rows)."""
    transformer = pipeline.transformer
    case = {
        name: tensor.to(transformer.device, transformer.dtype)
        for name, tensor in load_file(dit / "forward_case.safetensors").items()
    }
    with torch.no_grad():
        return transformer(
            case["hidden_states"], case["timestep"], case["encoder_hidden_states"],
            case["encoder_hidden_states_image"], case["add_cond"], case["attn_cond"][..., :reference_rows, :],
            return_dict=False,
        )[0].float()  # fmt: skip


def computed(pipeline: RealisDanceDiTPipeline, dit: Path) -> dict[str, torch.Tensor]:
    """The forward case (and the tokens its first block got), and the golden pipeline case's
    latents after a few steps: conditions encoded once (plain, and with TeaCache skipping steps)
    and re-encoded by every call."""
    case = load_file(dit / "pipeline_case.safetensors")
    pipeline.scheduler = scheduler_from_folder(dit / "tiny_dit/scheduler")
    common = {
        "max_resolution": 64 * 48,
        "latents": case["latents"],
        "prompt_embeds": case["prompt_embeds"],
        "negative_prompt_embeds": case["negative_prompt_embeds"],
        "output_type": "latent",
    }
    calls = {
        "pipeline": {"num_inference_steps": 2},
        "teacache": {"num_inference_steps": 3, "teacache_threshold": 20.0, "use_timestep_proj": False},
        "faithful": {"num_inference_steps": 2, "faithful": True},
    }
    seen: list[int] = []  # the sequence length the first block gets: this rank's share
    hook = pipeline.transformer.blocks[0].register_forward_pre_hook(
        lambda _block, args: seen.append(args[0].shape[1])
    )
    results = {"forward": forward(pipeline, dit), "block_tokens": torch.tensor(seen[0])}
    hook.remove()
    for name, settings in calls.items():
        output = pipeline(case["image"], case["smpl"], case["hamer"], **common, **settings)
        results[name] = output.frames.float().cpu()
        if name == "teacache":
            results["teacache_skipped"] = torch.tensor(output.teacache_skipped)
    return {name: tensor.cpu().contiguous() for name, tensor in results.items()}


def main(dit: Path, out: Path, attention: str, dtype: str) -> None:
    pipeline = load_pipeline(dit, DTYPES[dtype])
    world = world_from_environment()
    assert world is not None, "start this under torchrun with 2 or more processes"
    start_parallel(pipeline, world, attention)  # type: ignore[arg-type]
    results = computed(pipeline, dit)
    results["seed"] = torch.tensor(world.common_seed(None if world.writes_outputs else 1))
    try:
        forward(pipeline, dit, reference_rows=6)  # 36 video tokens + 3x3 reference tokens
        refused = ""
    except UserError as error:
        refused = str(error)
    save_file(results, out / f"rank{world.rank}.safetensors", metadata={"refused": refused})
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4])
