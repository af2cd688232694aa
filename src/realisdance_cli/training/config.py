"""Training settings from a YAML file, in our own keys or the original's.

Our keys are the `rdance train` option names with underscores (`steps: 30000`, `size: 768x576`).
The original RealisDance configs (`configs/stage1_hamer.yaml`, `configs/stage2_hamer.yaml`, built
on AnimateDiff's `train.py`) are read too, so a user can bring theirs: their keys are translated to
ours (`max_train_steps` -> `steps`, `image_finetune: true` -> `stage: 1`, `train_data.sample_size`
-> `size` ...). Keys that describe the architecture or the objective (fixed by the released
weights and the paper here) and the original's data-folder layout (replaced by our manifest) are
named in one warning and ignored; keys nobody knows are named in another. Options given on the
command line override the file. Relative paths are relative to the working folder, as in the
original.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from realisdance_cli.errors import UserError
from realisdance_cli.files import read_text


def _whole(value: Any) -> int:
    """A whole number: `int` alone would read 2.9 as 2 and `true` as 1."""
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError("expected a whole number")
    return int(value)


def _number(value: Any) -> float:
    """A number: `float` alone would read `true` as 1.0."""
    if isinstance(value, bool):
        raise ValueError("expected a number")
    return float(value)


def _size(value: Any) -> str:
    """`[768, 576]` (the original's `sample_size`) or `768x576` -> `768x576`."""
    if isinstance(value, list | tuple) and len(value) == 2:
        return f"{_whole(value[0])}x{_whole(value[1])}"
    return str(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


# Our keys and how a YAML value becomes one.
OURS: dict[str, Callable[[Any], Any]] = {
    "manifest": Path,
    "stage": _whole,
    "out": Path,
    "stage1": Path,
    "motion": Path,
    "steps": _whole,
    "lr": _number,
    "warmup": _whole,
    "batch_size": _whole,
    "accumulate": _whole,
    "frames": _whole,
    "frame_stride": _whole,
    "size": _size,
    "ref_mode": str,
    "cfg_uncond": _number,
    "pose_shuffle": _number,
    "adam_beta1": _number,
    "adam_beta2": _number,
    "weight_decay": _number,
    "adam_epsilon": _number,
    "max_grad_norm": _number,
    "mixed_precision": str,
    "gradient_checkpointing": _flag,
    "ema_decay": _number,
    "checkpoint_every": _whole,
    "validate_every": _whole,
    "validation_manifest": Path,
    "validation_ddim_steps": _whole,
    "log_with": str,
    "seed": _whole,
    "workers": _whole,
}

# The original's keys that carry over, as (our key, value -> our value).
ORIGINAL: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "image_finetune": ("stage", lambda finetune: 1 if _flag(finetune) else 2),
    "output_dir": ("out", Path),
    "unet_checkpoint_path": ("stage1", lambda path: Path(path) if path else None),
    "pretrained_mm_path": ("motion", lambda path: Path(path) if path else None),
    "max_train_steps": ("steps", _whole),
    "learning_rate": ("lr", _number),
    "lr_warmup_steps": ("warmup", _whole),
    "train_batch_size": ("batch_size", _whole),
    "gradient_accumulation_steps": ("accumulate", _whole),
    "cfg_uncond_ratio": ("cfg_uncond", _number),
    "pose_shuffle_ratio": ("pose_shuffle", _number),
    "adam_weight_decay": ("weight_decay", _number),
    "mixed_precision_training": ("mixed_precision", lambda on: "fp16" if _flag(on) else "no"),
    "checkpointing_steps": ("checkpoint_every", lambda n: _whole(n) if _whole(n) > 0 else None),
    "validation_steps": ("validate_every", _whole),
    "global_seed": ("seed", _whole),
    "num_workers": ("workers", _whole),
}
ORIGINAL_SECTIONS: dict[str, dict[str, tuple[str, Callable[[Any], Any]]]] = {
    "train_data": {
        "manifest": ("manifest", Path),
        "sample_size": ("size", _size),
        "sample_n_frames": ("frames", _whole),
        "sample_stride": ("frame_stride", _whole),
        "ref_mode": ("ref_mode", str),
    },
    "validation_data": {"num_inference_steps": ("validation_ddim_steps", _whole)},
}
# Fixed here by the released weights and the paper, or replaced by our manifest and CLI.
IGNORED = {
    "name", "use_wandb", "launcher", "pretrained_model_path", "pretrained_clip_path",
    "noise_scheduler_kwargs", "unet_additional_kwargs", "pose_guider_kwargs", "clip_projector_kwargs",
    "fix_ref_t", "fusion_blocks", "zero_snr", "v_pred", "snr_gamma", "trainable_modules",
    "max_train_epoch", "checkpointing_epochs", "validation_steps_tuple", "lr_scheduler", "scale_lr",
    "cfg_random_null_text", "cfg_random_null_text_ratio", "enable_xformers_memory_efficient_attention",
    "is_debug", "resume_from_checkpoint",
}  # fmt: skip


def _converted(key: str, convert: Callable[[Any], Any], value: Any, path: Path) -> Any:
    try:
        return convert(value)
    except (TypeError, ValueError, OverflowError) as error:  # Overflow: a huge whole number to a float
        raise UserError(f"{path}: {key}: {value!r} is not usable ({error}).") from None


def read_config(path: Path) -> dict[str, Any]:
    """Our settings (keys of `OURS`) from a YAML file in our keys, the original's, or a mix."""
    import yaml

    try:
        raw = yaml.safe_load(read_text(path, "a YAML config"))
    except yaml.YAMLError as error:
        raise UserError(f"{path} is not valid YAML: {str(error).splitlines()[0]}.") from None
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise UserError(f"{path} must hold key: value pairs at its top level.")
    settings: dict[str, Any] = {}
    ignored, unknown = [], []

    def take(key: str, value: Any, table: Mapping[str, tuple[str, Callable[[Any], Any]]]) -> None:
        ours, convert = table[key]
        converted = _converted(key, convert, value, path)
        if converted is not None:
            settings[ours] = converted

    for key, value in raw.items():
        if key in OURS:
            settings[key] = _converted(key, OURS[key], value, path)
        elif key in ORIGINAL:
            take(key, value, ORIGINAL)
        elif key in ORIGINAL_SECTIONS and isinstance(value, Mapping):
            section = ORIGINAL_SECTIONS[key]
            for inner, inner_value in value.items():
                if inner in section:
                    take(inner, inner_value, section)
                else:
                    ignored.append(f"{key}.{inner}")
        elif key in IGNORED:
            ignored.append(key)
        else:
            unknown.append(key)
    if ignored:
        warnings.warn(f"{path}: not used here: {', '.join(ignored)}", stacklevel=2)
    if unknown:
        warnings.warn(f"{path}: unknown keys, ignored: {', '.join(unknown)}", stacklevel=2)
    return settings
