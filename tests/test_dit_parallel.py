"""RealisDance-DiT's sequence parallelism for real: `torchrun` jobs of dit_parallel_worker.py,
checked against one process. On the CPU two gloo processes run Ulysses attention (ring attention
needs a CUDA kernel, see `realisdance_cli.dit.parallel`); with two or more GPUs, NCCL processes
run both in bf16."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import GOLDEN, ROOT, need
from dit_parallel_worker import DTYPES, computed, load_pipeline
from safetensors import safe_open
from safetensors.torch import load_file

from realisdance_cli.dit.parallel import World, enable_sequence_parallel, world_from_environment
from realisdance_cli.dit.transformer import RealisDanceDiT
from realisdance_cli.errors import UserError

DIT = GOLDEN / "dit"
TOKENS = 3 * 3 * 4 + 4 * 3  # the forward case: 3x3x4 latent patches and the reference's 4x3


def run_job(tmp_path: Path, attention: str, dtype: str) -> tuple[dict, dict, str]:
    """Rank 0's and rank 1's results of a 2-process job, and rank 0's refusal sentence."""
    done = subprocess.run(
        [
            sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            ROOT / "tests/dit_parallel_worker.py", need(DIT), tmp_path, attention, dtype,
        ],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    ranks = [tmp_path / f"rank{rank}.safetensors" for rank in (0, 1)]
    with safe_open(ranks[0], "pt") as saved:
        refused = saved.metadata()["refused"]
    return load_file(ranks[0]), load_file(ranks[1]), refused


def check_job(tmp_path: Path, attention: str, dtype: str, device: str, tolerance: float) -> None:
    """Each rank's blocks get half the sequence, both ranks end with one process's results, a
    sequence they cannot halve is refused, and they share rank 0's seed."""
    rank0, rank1, refused = run_job(tmp_path, attention, dtype)
    pipeline = load_pipeline(need(DIT), DTYPES[dtype]).to(device)
    single = computed(pipeline, DIT)
    assert (int(single["block_tokens"]), int(rank0["block_tokens"])) == (TOKENS, TOKENS // 2)
    assert int(rank0["teacache_skipped"]) == int(single["teacache_skipped"]) > 0
    for name in ("forward", "pipeline", "teacache", "faithful"):
        torch.testing.assert_close(rank0[name], single[name], rtol=tolerance, atol=tolerance, msg=name)
        assert torch.equal(rank1[name], rank0[name]), name
    assert "multiple of the 2 processes, but this video has 45" in refused
    assert rank1["seed"] == rank0["seed"] != 1  # rank 0's noise seed everywhere


def test_two_cpu_processes_with_ulysses_attention_equal_one_process(tmp_path: Path) -> None:
    check_job(tmp_path, "ulysses", "fp32", "cpu", tolerance=1e-5)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 or more CUDA GPUs (NCCL)")
@pytest.mark.parametrize("attention", ["ulysses", "ring"])
def test_two_gpus_equal_one_gpu_within_bf16_rounding(tmp_path: Path, attention: str) -> None:
    check_job(tmp_path, attention, "bf16", "cuda", tolerance=5e-2)


def test_the_launcher_environment_names_the_process_that_writes() -> None:
    assert world_from_environment({}) is None
    assert world_from_environment({"WORLD_SIZE": "1", "RANK": "0"}) is None
    job = {"WORLD_SIZE": "4", "LOCAL_RANK": "0"}
    worlds = [world_from_environment({**job, "RANK": str(rank)}) for rank in range(4)]
    assert worlds[2] == World(rank=2, local_rank=0, size=4)
    assert [world.writes_outputs for world in worlds if world] == [True, False, False, False]


def test_splits_the_engine_cannot_do_are_one_sentence() -> None:
    transformer = RealisDanceDiT.from_pretrained(need(DIT / "tiny_dit/transformer"))  # 2 heads
    with pytest.raises(UserError, match=r"2 attention heads, which 3 processes cannot"):
        enable_sequence_parallel(transformer, 3, "ulysses")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="ring attention needs CUDA GPUs"):
            enable_sequence_parallel(transformer, 2, "ring")
