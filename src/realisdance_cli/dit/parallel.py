"""RealisDance-DiT on several GPUs (or CPU processes) at once: sequence parallelism through
diffusers' context parallelism, for jobs started by `torchrun` or `accelerate launch`.

Every process runs the whole pipeline on the same inputs and noise; the transformer splits its
joint token sequence (video then reference) across the processes for self-attention, Ulysses
(all-to-all over heads, the default) or ring (key/value blocks passed around), and gathers it
again after its blocks, so each GPU holds 1/N of the activations and every process ends with
the same latents. Only rank 0 writes files.

What `rdance animate` does, once the pipeline is loaded and before it runs:

    world = world_from_environment()  # None when started as one process: nothing changes
    if world is not None:
        start_parallel(pipeline, world)  # joined, split, on cuda:LOCAL_RANK (or the CPU)
        seed = world.common_seed(seed)  # the same noise everywhere
        ...  # progress and files only where world.writes_outputs
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
import torch.distributed as dist

from realisdance_cli.errors import UserError

if TYPE_CHECKING:
    from realisdance_cli.dit.pipeline import RealisDanceDiTPipeline
    from realisdance_cli.dit.transformer import RealisDanceDiT

Attention = Literal["ulysses", "ring"]
# Ring attention merges partial results by their log-sum-exp; diffusers' native (SDPA) backend
# returns none, its flash kernel does (CUDA only, half precision).
RING_BACKEND = "_native_flash"


@dataclass(frozen=True)
class World:
    """This process's place in a multi-process job."""

    rank: int
    local_rank: int
    size: int

    @property
    def device(self) -> torch.device:
        """The GPU of this process on its machine (cuda:LOCAL_RANK), or the CPU without CUDA."""
        return torch.device("cuda", self.local_rank) if torch.cuda.is_available() else torch.device("cpu")

    @property
    def writes_outputs(self) -> bool:
        """Whether this process writes files and shows progress: rank 0 (all hold the same video)."""
        return self.rank == 0

    def common_seed(self, seed: int | None) -> int:
        """Rank 0's seed (drawn there when None) on every rank, so all draw the same noise."""
        value = torch.tensor([secrets.randbits(62) if seed is None else seed], device=self.device)
        dist.broadcast(value, src=0)
        return int(value.item())


def world_from_environment(environ: Mapping[str, str] = os.environ) -> World | None:
    """The job `torchrun` / `accelerate launch` started (WORLD_SIZE, RANK, LOCAL_RANK), or None
    for a single process."""
    size = int(environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return None
    rank = int(environ["RANK"])
    return World(rank, int(environ.get("LOCAL_RANK", rank)), size)


def join(world: World) -> None:
    """Joins the job's process group: NCCL with one GPU per process where CUDA is, gloo on CPUs."""
    if torch.cuda.is_available():
        if world.local_rank >= torch.cuda.device_count():
            raise UserError(
                f"process {world.rank} would use cuda:{world.local_rank}, but this machine has "
                f"{torch.cuda.device_count()} GPU(s); start at most that many processes per machine."
            )
        torch.cuda.set_device(world.local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")


def leave() -> None:
    """Leaves the job's process group once its work is done (NCCL warns of one left open at exit)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def enable_sequence_parallel(
    transformer: RealisDanceDiT, processes: int, attention: Attention = "ulysses"
) -> None:
    """Splits `transformer`'s sequence across `processes` ranks of the joined process group."""
    from diffusers.models._modeling_parallel import ContextParallelConfig

    heads = transformer.config.num_attention_heads
    if attention == "ulysses" and heads % processes:
        raise UserError(
            f"Ulysses attention gives each process an equal share of the model's {heads} attention heads, "
            f"which {processes} processes cannot have; start a number of processes that divides {heads}."
        )
    if attention == "ring":
        if not torch.cuda.is_available():
            raise UserError(
                "ring attention needs CUDA GPUs (diffusers has no CPU attention kernel that returns "
                "the log-sum-exp it merges by); use Ulysses attention."
            )
        if transformer.dtype not in (torch.bfloat16, torch.float16):
            raise UserError("ring attention needs the transformer in bf16 or fp16 (its flash kernel).")
        transformer.set_attention_backend(RING_BACKEND)
    degree = {"ulysses_degree" if attention == "ulysses" else "ring_degree": processes}
    transformer.enable_parallelism(config=ContextParallelConfig(**degree))


def start_parallel(pipeline: RealisDanceDiTPipeline, world: World, attention: Attention = "ulysses") -> None:
    """Joins `world`'s job, splits the pipeline's transformer sequence across its processes and
    puts the pipeline on this process's device. The caller then takes `world.common_seed(seed)`
    for its noise and writes outputs only where `world.writes_outputs`."""
    join(world)
    enable_sequence_parallel(pipeline.transformer, world.size, attention)
    pipeline.to(world.device)
