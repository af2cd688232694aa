"""Training settings from a YAML file, in our own keys or the original's.

Our keys are the `rdance train` option names with underscores (`steps: 30000`, `size: 768x576`).
The original RealisDance configs (`configs/stage1_hamer.yaml`, `configs/stage2_hamer.yaml` of the
RealisDance-SD branch) are read too, so a user can bring theirs: their keys are translated to ours
(`max_train_steps` -> `steps`, `image_finetune: true` -> `stage: 1`, `train_cfg: false` ->
`cfg_uncond: 0`, the `sample_size` of the `train_data` data sets -> `size` ...). Keys whose value
training here has fixed (`lr_scheduler`, `zero_snr`, `trainable_modules` ...) take that value and
refuse any other, since the run would silently train otherwise. The original's keys that change
nothing here (model and data folders, the architecture that the released weights fix) are named
in one warning; keys nobody knows in another. Options given on the command line override the
file. Relative paths are relative to the working folder, as in the original.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from realisdance_cli.errors import UserError, brief
from realisdance_cli.files import read_text
from realisdance_cli.training.options import MIN_SNR_GAMMA, VALIDATION_GUIDANCE


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
# The args of the original's training data sets (`train_data: [- dataset: {dataset_class, args}]`).
DATASET_ARGS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "sample_size": ("size", _size),
    "sample_n_frames": ("frames", _whole),
    "sample_stride": ("frame_stride", _whole),
    "ref_mode": ("ref_mode", str),
}
# The original's keys whose value is fixed here (by the released weights, the paper and our loop):
# that value is taken, any other refused, since training would silently do something else.
FIXED: dict[str, Any] = {
    "lr_scheduler": "constant_with_warmup",
    "zero_snr": True,
    "v_pred": True,
    "snr_gamma": MIN_SNR_GAMMA,
    "fix_ref_t": True,
    "fusion_blocks": "full",
    "scale_lr": False,
    "max_train_epoch": -1,
    "checkpointing_epochs": -1,
    "pretrained_vae_path": "",
    "validation_kwargs": {"guidance_scale": VALIDATION_GUIDANCE},
}
TRAINABLE = {1: ["."], 2: ["motion_modules."]}  # `trainable_modules` of each stage, as released
# The original's keys that change nothing here: model folders (--weights), data folders and the
# validation set (our manifests), the architecture (the released weights), extra checkpoints,
# launching and logging.
NOT_USED = {
    "name", "use_wandb", "launcher", "pretrained_model_path", "pretrained_clip_path",
    "noise_scheduler_kwargs", "unet_additional_kwargs", "pose_guider_kwargs", "clip_projector_kwargs",
    "checkpointing_steps_tuple", "validation_steps_tuple", "validation_data", "validation_batch_size",
    "vae_slicing", "fps", "cfg_random_null_text", "cfg_random_null_text_ratio",
    "enable_xformers_memory_efficient_attention", "is_debug", "resume", "resume_from_checkpoint",
}  # fmt: skip
# Data set args whose value is fixed here: no zoom of the random crop, no face drawn, a random start.
DATASET_FIXED: dict[str, Any] = {"scale": [1.0, 1.0], "draw_face": False, "start_index": -1}
DATASET_NOT_USED = {
    "dataset_class", "root_dir", "split", "data_lst_file_path_lst", "image_finetune", "fix_gap", "version",
}  # fmt: skip


def _converted(key: str, convert: Callable[[Any], Any], value: Any, path: Path) -> Any:
    try:
        return convert(value)
    except (TypeError, ValueError, OverflowError) as error:  # Overflow: a huge whole number to a float
        raise UserError(f"{path}: {key}: {brief(value)} is not usable ({error}).") from None


def _same(value: Any, fixed: Any) -> bool:
    """`value == fixed`, where `true` is not 1 and 5 is 5.0."""
    return isinstance(value, bool) == isinstance(fixed, bool) and value == fixed


def _check_fixed(key: str, value: Any, fixed: Any, path: Path) -> None:
    if not _same(value, fixed):
        raise UserError(
            f"{path}: {key}: {brief(value)} cannot be honoured here, which trains with {key}: {fixed!r}; "
            "set that or remove the key."
        )


def _datasets(value: Any, path: Path) -> list[Mapping[str, Any]]:
    """The args of each data set of the original's `train_data` list."""
    shape = "a list of `- dataset: {dataset_class, args: {...}}` as in the original configs"
    if not isinstance(value, list):
        raise UserError(f"{path}: train_data must be {shape}.")
    found: list[Mapping[str, Any]] = []
    for item in value:
        dataset = item.get("dataset") if isinstance(item, Mapping) else None
        if not isinstance(dataset, Mapping) or not isinstance(dataset.get("args", {}), Mapping):
            raise UserError(f"{path}: train_data must be {shape}.")
        found.append({**{k: v for k, v in dataset.items() if k != "args"}, **dataset.get("args", {})})
    return found


class _Reading:
    """One config file's settings so far, and the keys it names that change nothing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.settings: dict[str, Any] = {}
        self.not_used: list[str] = []
        self.unknown: list[str] = []
        self.from_data: dict[str, tuple[str, Any]] = {}  # our key -> (the original's, its value)
        self.clip_sizes: list[str] = []

    def take(self, key: str, convert: Callable[[Any], Any], value: Any, ours: str) -> None:
        converted = _converted(key, convert, value, self.path)
        if converted is not None:
            self.settings[ours] = converted

    def take_dataset(self, args: Mapping[str, Any]) -> None:
        """One data set's args; every data set must give the same clips (one run, one size)."""
        for key, value in args.items():
            if key in DATASET_ARGS:
                ours, convert = DATASET_ARGS[key]
                earlier = self.from_data.setdefault(ours, (key, value))
                if earlier[1] != value:
                    raise UserError(
                        f"{self.path}: train_data: the data sets give {key} {brief(earlier[1])} and "
                        f"{brief(value)}; one run trains on one, so give the same in all."
                    )
                self.take(f"train_data.{key}", convert, value, ours)
            elif key == "clip_size":
                self.clip_sizes.append(_converted(f"train_data.{key}", _size, value, self.path))
            elif key in DATASET_FIXED:
                _check_fixed(f"train_data.{key}", value, DATASET_FIXED[key], self.path)
            elif key in DATASET_NOT_USED:
                self.not_used.append(f"train_data.{key}")
            else:
                self.unknown.append(f"train_data.{key}")

    def take_key(self, key: str, value: Any) -> None:
        if key in OURS:
            self.take(key, OURS[key], value, key)
        elif key in ORIGINAL:
            ours, convert = ORIGINAL[key]
            self.take(key, convert, value, ours)
        elif key == "train_data":
            for args in _datasets(value, self.path):
                self.take_dataset(args)
        elif key in FIXED:
            _check_fixed(key, value, FIXED[key], self.path)
        elif key in NOT_USED:
            self.not_used.append(key)
        elif key not in ("train_cfg", "trainable_modules"):  # read with the whole file
            self.unknown.append(str(key))  # YAML reads `1:`, `yes:` and `null:` as 1, True and None


def _check_clip_sizes(clip_sizes: list[str], size: str | None, path: Path) -> None:
    """The reference's DINOv2 input is 5/12 of the frame here, as in the released configs (320x240
    for 768x576); a data set asking for another would train otherwise."""
    from realisdance_cli.animator.processing import CLIP_SCALE, SIZE
    from realisdance_cli.rendering import parse_size

    try:
        height, width = parse_size(size) or SIZE
    except UserError:  # a bad size is said with the other options
        return
    taken = f"{round(height * CLIP_SCALE)}x{round(width * CLIP_SCALE)}"
    for clip_size in dict.fromkeys(clip_sizes):
        if clip_size != taken:
            raise UserError(
                f"{path}: train_data.clip_size: {clip_size} cannot be honoured here, where the reference "
                f"is seen at 5/12 of the {height}x{width} frame ({taken}); set that or remove the key."
            )


class _DuplicateKey(yaml.YAMLError):
    """A key given twice in one mapping: the key as written and the lines (1-based) of both."""

    def __init__(self, key: str, first: int, again: int) -> None:
        super().__init__(f"{key} on lines {first} and {again}")
        self.key, self.first, self.again = key, first, again


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping: PyYAML keeps the last
    silently, and a second `learning_rate:` pasted below the first is a mistake, not a setting
    (YAML itself says keys are unique). Keys merged in (`<<: *base`) may still be overridden."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=False)  # kept: constructed once
                line = key_node.start_mark.line + 1
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key, which the safe loader refuses in its words
                    continue
                if first is not None:
                    raise _DuplicateKey(str(key_node.value), first, line)
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def read_config(path: Path) -> dict[str, Any]:
    """Our settings (keys of `OURS`) from a YAML file in our keys, the original's, or a mix."""
    try:
        raw = yaml.load(read_text(path, "a YAML config"), Loader=_UniqueKeyLoader)  # a SafeLoader
    except _DuplicateKey as error:
        raise UserError(
            f"{path} line {error.again}: {error.key}: is given on line {error.first} already; "
            "keep one of them."
        ) from None
    except yaml.YAMLError as error:
        raise UserError(f"{path} is not valid YAML: {str(error).splitlines()[0]}.") from None
    except (ValueError, RecursionError):  # a number of thousands of digits; nesting without end
        raise UserError(
            f"{path} is not a config: it holds a number too long or lists nested too deep."
        ) from None
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise UserError(f"{path} must hold key: value pairs at its top level.")
    reading = _Reading(path)
    for key, value in raw.items():
        reading.take_key(key, value)
    settings = reading.settings
    if "train_cfg" in raw and not _converted("train_cfg", _flag, raw["train_cfg"], path):
        settings["cfg_uncond"] = 0.0  # the original drops no condition then, whatever the ratio
    _check_clip_sizes(reading.clip_sizes, settings.get("size"), path)
    trainable = TRAINABLE.get(settings.get("stage", 2))  # the file's stage (a wrong one is said later)
    if "trainable_modules" in raw and trainable is not None:
        _check_fixed("trainable_modules", raw["trainable_modules"], trainable, path)
    for said, keys in (("not used here", reading.not_used), ("unknown keys, ignored", reading.unknown)):
        if keys:
            warnings.warn(f"{path}: {said}: {', '.join(dict.fromkeys(keys))}", stacklevel=2)
    return settings
