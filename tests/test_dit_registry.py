"""RealisDance-DiT's weights entry (a folder laid out as the release is found whole, a missing
shard is named) and the tiny UMT5-style tokenizer the DiT tests use."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import GOLDEN, need, rdance
from dit_models import build_release_folder, build_tiny_tokenizer

from realisdance_cli import weights
from realisdance_cli.errors import UserError


def test_the_entry_is_the_release_folder() -> None:
    entry = weights.get("realisdance-dit")
    assert entry.is_folder and entry.group == "dit" and entry.path == "realisdance-dit"
    assert entry.where() == "hf://theFoxofSky/RealisDance-DiT@main"
    assert entry.licence.startswith("academic use only")
    assert [e.name for e in weights.select(["dit"])] == ["realisdance-dit"]


def test_a_release_folder_is_whole_and_a_missing_shard_is_named(tmp_path: Path) -> None:
    folder = build_release_folder(tmp_path / "realisdance-dit")
    found = weights.status(weights.get("realisdance-dit"), tmp_path, structure="full")
    assert found.ok, found.problem
    assert found.path == folder
    shard = "diffusion_pytorch_model-00002-of-00002.safetensors"
    (folder / "transformer" / shard).unlink()
    found = weights.status(weights.get("realisdance-dit"), tmp_path)
    assert not found.ok
    index = "transformer/diffusion_pytorch_model.safetensors.index.json"
    assert found.problem == f"{index}: shard {shard} is missing"
    done = rdance("weights", "check", "realisdance-dit", "--weights", tmp_path, env={"COLUMNS": "2000"})
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"shard {shard} is missing" in done.stdout
    assert "rdance weights download dit" in done.stdout


def test_a_folder_without_its_tokenizer_is_missing(tmp_path: Path) -> None:
    folder = build_release_folder(tmp_path / "realisdance-dit")
    (folder / "tokenizer" / "tokenizer.json").unlink()
    assert not weights.status(weights.get("realisdance-dit"), tmp_path).found


def test_the_tiny_tokenizer_pads_truncates_and_ends_prompts(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    vocab_size = json.loads(need(GOLDEN / "dit" / "tiny_dit" / "text_encoder" / "config.json").read_text())[
        "vocab_size"
    ]
    tokenizer = AutoTokenizer.from_pretrained(build_tiny_tokenizer(tmp_path / "tokenizer"))
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 1, 2)
    assert len(tokenizer) <= 64 and tokenizer.model_max_length == 512
    prompts = ["a person dancing on the stage", "the dance " * 20]
    encoded = tokenizer(
        prompts,
        padding="max_length",
        max_length=20,
        truncation=True,
        add_special_tokens=True,
        return_attention_mask=True,
    )
    short, long = encoded["input_ids"]
    assert tokenizer.convert_ids_to_tokens(short[:7]) == [
        "\N{LOWER ONE EIGHTH BLOCK}" + word for word in prompts[0].split()
    ] + ["</s>"]
    assert short[7:] == [0] * 13 and encoded["attention_mask"][0] == [1] * 7 + [0] * 13
    assert len(long) == 20 and long[-1] == 1 and 0 not in long  # truncated, still ended
    assert encoded["attention_mask"][1] == [1] * 20
    assert max(short + long) < min(vocab_size, len(tokenizer))


def test_the_dit_weights_are_fetched_and_checked_only_when_named() -> None:
    everything = {entry.name for entry in weights.select()}
    assert "realisdance-dit" not in everything and "realisdance" in everything
    assert [entry.name for entry in weights.select(["dit"])] == ["realisdance-dit"]


# Damage a reviewer found to give tracebacks when the release loads (the loader caught only
# OSError and ValueError), each with the part of the release then named.
DAMAGED_RELEASE = {
    "transformer config a list": ("transformer", lambda folder: (folder / "config.json").write_text("[1]")),
    "scheduler config nested": (
        "scheduler",
        lambda folder: (folder / "scheduler_config.json").write_text("[" * 100_000 + "]" * 100_000),
    ),
    "image encoder cut": (
        "image_encoder",
        lambda folder: (folder / "model.safetensors").write_bytes(
            (folder / "model.safetensors").read_bytes()[:3000]
        ),
    ),
}


@pytest.mark.parametrize("damage", list(DAMAGED_RELEASE))
def test_a_damaged_release_folder_is_one_sentence(tmp_path: Path, damage: str) -> None:
    from test_dit import release_folder

    from realisdance_cli.dit.pipeline import RealisDanceDiTPipeline

    folder = release_folder(tmp_path)
    part, make = DAMAGED_RELEASE[damage]
    make(folder / part)
    with pytest.raises(
        UserError, match=rf"^cannot load {re.escape(str(folder / part))}, it is damaged \(.+\); "
    ):
        RealisDanceDiTPipeline.from_pretrained(folder)


@pytest.mark.parametrize(
    ("part", "setting"),
    [("transformer", "num_layers"), ("text_encoder", "num_layers"), ("image_encoder", "num_hidden_layers")],
)
def test_a_release_part_of_a_hundred_million_layers_is_refused_before_it_is_built(
    tmp_path: Path, part: str, setting: str
) -> None:
    """A config of a size no model has (which built layers for minutes, filling memory) is named
    in one sentence before any network is built."""
    from test_dit import release_folder

    from realisdance_cli.dit.pipeline import RealisDanceDiTPipeline

    folder = release_folder(tmp_path)
    config = folder / part / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), setting: 100_000_000}))
    said = f"cannot load {folder / part}, it is damaged (config.json says {setting} is 100000000, more than"
    with pytest.raises(UserError, match=f"^{re.escape(said)}"):
        RealisDanceDiTPipeline.from_pretrained(folder)


def test_running_out_of_memory_while_loading_is_not_called_damage(tmp_path: Path) -> None:
    """The CLI says out-of-memory in its own sentence (what makes a job lighter), so loading lets it pass."""
    import torch

    from realisdance_cli.state_dicts import loading_from

    with pytest.raises(torch.OutOfMemoryError), loading_from(tmp_path):
        raise torch.OutOfMemoryError("CUDA out of memory")
