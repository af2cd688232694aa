"""Tiny stand-ins for RealisDance-DiT's parts, built offline (no download): a UMT5-style tokenizer
and a folder laid out as the release."""

from __future__ import annotations

import json
import string
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, pre_tokenizers, processors
from tokenizers.models import Unigram

# UMT5's special tokens and their ids: padding 0, end of sequence 1, unknown 2.
SPECIALS = ("<pad>", "</s>", "<unk>")
# Whole words of test prompts; single letters spell any other lower-case word.
WORDS = ("a", "person", "dancing", "dance", "the", "in", "on", "of", "with", "and", "room", "stage")
MARKER = "\N{LOWER ONE EIGHTH BLOCK}"  # SentencePiece's word boundary, "▁"


def tiny_vocab() -> list[tuple[str, float]]:
    """Special tokens, whole words (likelier, so preferred), then the word boundary and letters."""
    vocab = [(token, 0.0) for token in SPECIALS]
    vocab += [(f"{MARKER}{word}", -1.0) for word in WORDS]
    vocab += [(MARKER, -2.0)]
    vocab += [(letter, -3.0) for letter in string.ascii_lowercase]
    return vocab


def _json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


def build_tiny_tokenizer(folder: Path) -> Path:
    """A tokenizer folder `transformers.AutoTokenizer` loads as a T5 (UMT5) tokenizer: a Unigram
    model behind SentencePiece's word boundary marker, `</s>` appended, ids below 64 (ids the
    tiny golden UMT5 encoder embeds), 512 tokens at most, as Wan2.1's. No normalizer: transformers
    5 rebuilds a T5 tokenizer's pipeline without one, so capitals and punctuation are unknown."""
    tokenizer = Tokenizer(Unigram(tiny_vocab(), unk_id=SPECIALS.index("<unk>"), byte_fallback=False))
    words = pre_tokenizers.WhitespaceSplit()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [words, pre_tokenizers.Metaspace(replacement=MARKER, prepend_scheme="always")]
    )
    tokenizer.decoder = decoders.Metaspace(replacement=MARKER, prepend_scheme="always")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", SPECIALS.index("</s>"))]
    )
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    special = {"pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>"}
    config = {
        "tokenizer_class": "T5Tokenizer",
        "model_max_length": 512,
        "extra_ids": 0,  # T5's <extra_id_N> sentinels: the encoder never sees them
        "additional_special_tokens": [],
        **special,
    }
    _json(folder / "tokenizer_config.json", config)
    _json(folder / "special_tokens_map.json", special)
    return folder


def _weights(path: Path, seed: int) -> list[str]:
    """A small whole safetensors file; the names of its tensors."""
    from safetensors.numpy import save_file

    tensors = {
        f"block{seed}.weight": np.full((4, 2), seed, np.float32),
        f"block{seed}.bias": np.zeros(2, np.float32),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return list(tensors)


def _sharded(folder: Path, stem: str, shards: int) -> None:
    """`shards` safetensors files named as the hub names them, and their index."""
    weight_map = {}
    for number in range(1, shards + 1):
        name = f"{stem}-{number:05d}-of-{shards:05d}.safetensors"
        weight_map.update(dict.fromkeys(_weights(folder / name, number), name))
    _json(folder / f"{stem}.safetensors.index.json", {"metadata": {}, "weight_map": weight_map})


def build_release_folder(folder: Path) -> Path:
    """A folder laid out as the RealisDance-DiT release (a diffusers Wan2.1 image-to-video
    pipeline): JSON configs, whole but tiny safetensors, the transformer and the text encoder in
    two shards each, the tiny tokenizer. For the weights registry's checks, not for running."""
    _json(folder / "model_index.json", {"_class_name": "WanImageToVideoPipeline"})
    _json(folder / "transformer/config.json", {"_class_name": "WanTransformer3DModel"})
    _json(folder / "vae/config.json", {"_class_name": "AutoencoderKLWan"})
    _json(folder / "image_encoder/config.json", {"architectures": ["CLIPVisionModelWithProjection"]})
    _json(folder / "text_encoder/config.json", {"architectures": ["UMT5EncoderModel"]})
    _json(folder / "scheduler/scheduler_config.json", {"_class_name": "UniPCMultistepScheduler"})
    _sharded(folder / "transformer", "diffusion_pytorch_model", 2)
    _sharded(folder / "text_encoder", "model", 2)
    _weights(folder / "vae/diffusion_pytorch_model.safetensors", 0)
    _weights(folder / "image_encoder/model.safetensors", 0)
    build_tiny_tokenizer(folder / "tokenizer")
    return folder
