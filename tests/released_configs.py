"""What the authors' training configs hold (configs/stage1_hamer.yaml and stage2_hamer.yaml of
damo-cv/RealisDance, branch RealisDance-SD), as PyYAML reads them: the keys, their nesting and
their values, for the tests of `rdance train --config`. Written as YAML into a test's folder.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

_DATA_SET = {"sample_size": [768, 576], "clip_size": [320, 240]}
_VIDEOS = {"root_dir": "~/video_dance_data"}

_BOTH: dict[str, Any] = {
    "output_dir": "outputs",
    "pretrained_model_path": "pretrained_models/RV/rv-5-1",
    "pretrained_clip_path": "pretrained_models/DINO/dinov2",
    "pose_guider_kwargs": {
        "pose_guider_type": "side_guider",
        "args": {"out_channels": [320, 320, 640, 1280, 1280]},
    },
    "clip_projector_kwargs": {"projector_type": "ff", "in_features": 1024, "out_features": 768},
    "zero_snr": True,
    "v_pred": True,
    "train_cfg": False,
    "snr_gamma": 5.0,
    "fix_ref_t": True,
    "validation_kwargs": {"guidance_scale": 2},
    "lr_scheduler": "constant_with_warmup",
    "learning_rate": "1e-5",  # `1e-5` without a dot: a string to PyYAML (YAML 1.1)
    "lr_warmup_steps": 5000,
    "max_train_epoch": -1,
    "checkpointing_epochs": -1,
    "checkpointing_steps": 10000,
    "checkpointing_steps_tuple": [2, 5000],
    "global_seed": 42,
    "mixed_precision": "fp16",
    "is_debug": False,
}

_STAGE1: dict[str, Any] = {
    "image_finetune": True,
    "train_data": [
        {
            "dataset": {
                "dataset_class": "VideoDataset",
                "args": {
                    **_VIDEOS, "split": "train", **_DATA_SET, "image_finetune": True, "ref_mode": "random",
                },
            }
        },
        {
            "dataset": {
                "dataset_class": "ImageDataset",
                "args": {
                    "split": "train", "data_lst_file_path_lst": ["~/image_dance_train_list.txt"], **_DATA_SET,
                },
            }
        },
    ],
    "validation_data": {
        "dataset_class": "ImageDataset",
        "args": {
            "data_lst_file_path_lst": ["~/image_dance_val_list.txt"], "split": "val", **_DATA_SET,
            "version": "v1",
        },
    },
    "trainable_modules": ["."],
    "unet_checkpoint_path": "",
    "train_batch_size": 5,
    "validation_batch_size": 5,
    "max_train_steps": 200000,
}  # fmt: skip

_STAGE2: dict[str, Any] = {
    "image_finetune": False,
    "pretrained_mm_path": "pretrained_models/MM/mm_v2.ckpt",
    "unet_additional_kwargs": {
        "use_motion_module": True,
        "motion_module_resolutions": [1, 2, 4, 8],
        "unet_use_cross_frame_attention": False,
        "unet_use_temporal_attention": False,
        "motion_module_type": "Vanilla",
        "motion_module_kwargs": {
            "num_attention_heads": 8,
            "num_transformer_block": 1,
            "attention_block_types": ["Temporal_Self", "Temporal_Self"],
            "temporal_position_encoding": True,
            "temporal_position_encoding_max_len": 32,
            "temporal_attention_dim_div": 1,
            "zero_initialize": True,
        },
    },
    "pose_shuffle_ratio": 0.05,
    "vae_slicing": True,
    "fps": 8,
    "train_data": [
        {
            "dataset": {
                "dataset_class": "VideoDataset",
                "args": {
                    **_VIDEOS, "split": "train", **_DATA_SET, "image_finetune": False, "ref_mode": "random",
                    "sample_n_frames": 16,
                },
            }
        }
    ],
    "validation_data": {
        "dataset_class": "VideoDataset",
        "args": {
            **_VIDEOS, "split": "val", **_DATA_SET, "image_finetune": False, "ref_mode": "first",
            "sample_n_frames": 16, "start_index": 0, "fix_gap": True,
        },
    },
    "trainable_modules": ["motion_modules."],
    "unet_checkpoint_path": "outputs/stage1_hamer/checkpoints/checkpoint-final.ckpt",
    "train_batch_size": 1,
    "validation_batch_size": 1,
    "max_train_steps": 100000,
}  # fmt: skip


def released_config(stage: int) -> dict[str, Any]:
    """A fresh copy of the stage's config (the tests change them)."""
    return copy.deepcopy(_BOTH | (_STAGE1 if stage == 1 else _STAGE2))


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
