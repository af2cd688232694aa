"""Sizes no real model has in a model's settings: the released settings all pass, and each kind
of size too large is named by where it is."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import FIXTURES, GOLDEN, need

from realisdance_cli.config_sizes import MAX_BYTES, MAX_LOOKS, size_problem


def real_configs() -> list[Path]:
    """Every model and scheduler config of the golden and fixture data (the tiny test models)."""
    found = [path for root in (GOLDEN, FIXTURES) for path in need(root).rglob("*config.json")]
    assert found
    return sorted(found)


def test_every_real_config_passes() -> None:
    for path in real_configs():
        assert size_problem(json.loads(path.read_text())) is None, path


def test_the_released_models_largest_sizes_pass() -> None:
    """The largest of the models run (Wan2.1-14B, UMT5-XXL, CLIP ViT-H/14, SD-1.5's UNet)."""
    wan = {"num_layers": 40, "num_attention_heads": 40, "attention_head_dim": 128, "ffn_dim": 13824}
    umt5 = {"d_model": 4096, "d_ff": 10240, "vocab_size": 256384, "num_layers": 24, "num_heads": 64}
    clip = {"vision_config": {"hidden_size": 1280, "num_hidden_layers": 32, "image_size": 224}}
    unet = {"block_out_channels": [320, 640, 1280, 1280], "layers_per_block": 2, "cross_attention_dim": 768}
    for config in (wan, umt5, clip, unet, {"num_train_timesteps": 1000, "rope_max_seq_len": 1024}):
        assert size_problem(config) is None, config


@pytest.mark.parametrize(
    ("config", "said"),
    [
        ({"layers_per_block": 10**9}, "layers_per_block is 1000000000"),
        ({"text_config": {"num_hidden_layers": 10**8}}, "text_config.num_hidden_layers is 100000000"),
        ({"block_out_channels": [320, 10**12]}, "block_out_channels[1] is 1000000000000"),
        ({"transformer_layers_per_block": [[1], [2, 5000]]}, "transformer_layers_per_block[1][1] is 5000"),
        ({"hidden_size": 1e300}, "hidden_size is 1e+300"),
        ({"vocab_size": 2**30}, "vocab_size is 1073741824"),
        ({"down_block_types": ["DownBlock2D"] * 1000}, "down_block_types has 1000 items"),
        ({"stage_names": ["stage"] * 10**5}, "stage_names has 100000 items"),
    ],
)
def test_a_size_no_model_has_is_named_where_it_is(config: dict, said: str) -> None:
    assert size_problem(config) == f"{said}, more than any real model"


def test_true_and_text_are_no_sizes() -> None:
    assert size_problem({"num_layers": True, "hidden_size": "1000000000000"}) is None


def test_any_file_of_the_largest_size_is_judged_in_a_blink() -> None:
    """Lists and objects by the hundred thousand are not walked one by one (a bound on looks)."""
    many = {"k": [[[] for _ in range(4000)] for _ in range(MAX_BYTES // 12_000)]}
    started = time.perf_counter()
    assert (
        size_problem(many)
        == f"it holds over {MAX_LOOKS} lists, objects and large numbers, which no real model has"
    )
    numbers = {f"k{index}": [0] * 4000 for index in range(MAX_BYTES // 8000)}
    assert size_problem(numbers) is None
    assert time.perf_counter() - started < 1
