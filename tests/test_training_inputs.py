"""`rdance train` and `rdance dataset build` with what users bring: a run folder holding more than
the run (their notes, the other stage's checkpoints, the stage-1 input itself), bad inputs next
to a finished run, the authors' own config files, manifests with many bad lines."""

from __future__ import annotations

import json
import re
import shutil
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_user_error, rdance, write_video
from released_configs import released_config, write_config
from test_training import CASE, _clip_folder, _tiny_run_inputs

from realisdance_cli.errors import UserError


def _stage2_args(tmp_path: Path, out: Path, stage1: Path = CASE / "realisdance_tiny.ckpt") -> list:
    """One tiny stage-2 step into `out` (the inputs of `_tiny_run_inputs`, made once per test)."""
    if not (tmp_path / "mm.ckpt").exists():
        _tiny_run_inputs(tmp_path)
    return [
        "train", tmp_path / "data" / "manifest.jsonl", "--stage", "2", "--stage1", stage1,
        "--motion", tmp_path / "mm.ckpt", "--steps", "1", "--frames", "4", "--frame-stride", "2",
        "--size", "64x48", "--weights", tmp_path / "weights", "--out", out, "--validate-every", "0",
        "--log-with", "none",
    ]  # fmt: skip


def _saved_run(out: Path, stage: int) -> dict[Path, bytes]:
    """A folder as a finished run of `stage` leaves it (a state and both exports, their contents
    only placeholders: nothing here may read them); returns its files and their bytes."""
    (out / "state").mkdir(parents=True)
    (out / "state" / "step.json").write_text(json.dumps({"step": 1, "settings": {"stage": stage}}))
    for suffix in (".safetensors", ".ckpt"):
        (out / f"stage{stage}{suffix}").write_text(f"stage-{stage} weights")
    return {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}


@pytest.mark.slow
def test_a_run_removes_only_its_own_outputs_and_says_what_force_removed(tmp_path: Path) -> None:
    """A fresh run clears what a stopped run of ours left (tensorboard events), never the user's
    files in logs/ and validation/; --force then removes this stage's state and exports only."""
    out = tmp_path / "outputs"
    mine = {
        out / "logs" / "experiment-notes.txt": "what I tried",
        out / "validation" / "my-clip.mp4": "my clip",
        out / "stage2_keep_step1.safetensors": "kept by hand",
        out / "stage1.ckpt": "the stage-1 run",
    }
    for path, text in mine.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (out / "logs" / "events.out.tfevents.1.host").write_text("a stopped run's")
    done = rdance(*_stage2_args(tmp_path, out))
    assert done.returncode == 0, done.stderr
    assert not (out / "logs" / "events.out.tfevents.1.host").exists()
    assert (out / "stage2.ckpt").is_file() and (out / "state" / "step.json").is_file()
    done = rdance(*_stage2_args(tmp_path, out), "--force")
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stderr.split())
    assert f"removed from {out}: stage2.ckpt, stage2.safetensors, state" in said, said
    assert all(path.read_text() == text for path, text in mine.items())


@pytest.mark.slow
def test_force_refuses_to_remove_an_input_of_the_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    saved = _saved_run(out, stage=2)
    done = rdance(*_stage2_args(tmp_path, out, stage1=out / "stage2.safetensors"), "--force")
    said = f"--stage1 {out / 'stage2.safetensors'} is among what this run removes of the earlier one in {out}"
    assert_user_error(done, said, "another --out")
    assert {path: path.read_bytes() for path in saved} == saved


@pytest.mark.slow
def test_force_reads_the_inputs_before_it_removes_the_earlier_run(tmp_path: Path) -> None:
    out, junk = tmp_path / "run", tmp_path / "junk.ckpt"
    saved = _saved_run(out, stage=2)
    junk.write_bytes(b"not a checkpoint")
    done = rdance(*_stage2_args(tmp_path, out, stage1=junk), "--force")
    assert_user_error(done, str(junk))
    assert {path: path.read_bytes() for path in saved} == saved


@pytest.mark.slow
@pytest.mark.parametrize("how", ["--resume", "--force", None])
def test_a_folder_of_the_other_stage_is_refused(tmp_path: Path, how: str | None) -> None:
    """The released configs send both stages to `outputs`: stage 2 there must not resume the
    stage-1 state (a traceback in accelerate) nor remove it."""
    out = tmp_path / "outputs"
    saved = _saved_run(out, stage=1)
    done = rdance(*_stage2_args(tmp_path, out), *([how] if how else []))
    assert_user_error(done, f"{out} holds a stage-1 run; train stage 2 in another --out")
    assert {path: path.read_bytes() for path in saved} == saved


@pytest.mark.slow
def test_stage2_refuses_more_frames_than_the_motion_modules_see(tmp_path: Path) -> None:
    done = rdance(*_stage2_args(tmp_path, tmp_path / "run"), "--frames", "33")
    assert_user_error(done, "--frames 33", "at most 32 frames")
    assert not (tmp_path / "run").exists()


def _manifest(folder: Path, rows: list[dict | str]) -> Path:
    manifest = folder / "manifest.jsonl"
    manifest.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return manifest


POSES = ("dwpose", "hamer", "smpl")


def test_pose_videos_of_another_size_are_left_out(tmp_path: Path) -> None:
    from realisdance_cli.training.data import read_manifest

    _clip_folder(tmp_path / "clip", frames=3, size=(64, 48))
    pictures = [np.zeros((32, 24, 3), np.uint8)] * 3
    write_video(tmp_path / "clip" / "small.mp4", pictures)
    row = {"video": "clip/video.mp4", **{name: f"clip/{name}.mp4" for name in POSES}}
    manifest = _manifest(tmp_path, [row, row | {"hamer": "clip/small.mp4"}])
    with pytest.warns(UserWarning) as warned:
        entries = read_manifest(manifest)
    assert len(entries) == 1 and len(warned) == 1
    said = str(warned[0].message)
    assert "manifest.jsonl:2 left out: hamer is 32x24, the video 64x48 (height x width)" in said, said


def test_a_manifest_report_names_the_problem_and_stops_after_ten_lines(tmp_path: Path) -> None:
    from realisdance_cli.training.data import read_manifest

    _clip_folder(tmp_path / "clip", frames=3, size=(64, 48))
    good = {"video": "clip/video.mp4", **{name: f"clip/{name}.mp4" for name in POSES}}
    no_pose = {k: v for k, v in good.items() if k != "dwpose"}
    rows: list[dict | str] = [good | {"hamer": 3}, no_pose, *[no_pose] * 23, good]
    with pytest.warns(UserWarning) as warned:
        entries = read_manifest(_manifest(tmp_path, rows))
    said = [str(w.message) for w in warned]
    assert len(entries) == 1 and len(said) == 11, said
    assert 'manifest.jsonl:1 left out: "hamer" must be a path in quotes, not 3' in said[0]
    assert 'manifest.jsonl:2 left out: a line needs a "dwpose" path' in said[1]
    assert said[10].endswith("and 15 more lines of it left out.")


def test_run_settings_name_files_by_where_they_are(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same run given relative or absolute paths is one run; the base model folder counts."""
    from realisdance_cli.training.job import TrainJob, run_settings

    monkeypatch.chdir(tmp_path)
    base, job = tmp_path / "weights" / "base", TrainJob(Path("m.jsonl"), Path("run"), stage1=Path("s1.ckpt"))
    absolute = TrainJob(tmp_path / "m.jsonl", tmp_path / "run", stage1=tmp_path / "s1.ckpt")
    assert run_settings(job, base) == run_settings(absolute, base)
    assert run_settings(job, base)["base_model"] == str(base.resolve())
    assert run_settings(job, tmp_path / "other") != run_settings(job, base)


# -- the authors' configs ---------------------------------------------------------------------------


def test_the_released_configs_read_as_they_train(tmp_path: Path, recwarn: pytest.WarningsRecorder) -> None:
    from realisdance_cli.training.config import read_config

    first, second = (
        read_config(write_config(tmp_path / f"stage{n}_hamer.yaml", released_config(n))) for n in (1, 2)
    )
    common = {
        "out": Path("outputs"), "lr": 1e-5, "warmup": 5000, "checkpoint_every": 10000, "seed": 42,
        "mixed_precision": "fp16", "size": "768x576", "ref_mode": "random", "cfg_uncond": 0.0,
    }  # fmt: skip
    assert first == common | {"stage": 1, "steps": 200000, "batch_size": 5}
    assert second == common | {
        "stage": 2, "steps": 100000, "batch_size": 1, "frames": 16, "pose_shuffle": 0.05,
        "motion": Path("pretrained_models/MM/mm_v2.ckpt"),
        "stage1": Path("outputs/stage1_hamer/checkpoints/checkpoint-final.ckpt"),
    }  # fmt: skip
    said = [str(w.message) for w in recwarn]
    assert not any("unknown" in line for line in said), said
    assert any("not used here:" in line and "checkpointing_steps_tuple" in line for line in said), said


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"lr_scheduler": "cosine"}, "lr_scheduler"),
        ({"zero_snr": False}, "zero_snr"),
        ({"max_train_epoch": 3}, "max_train_epoch"),
        ({"trainable_modules": ["."]}, "trainable_modules"),
        ({"validation_kwargs": {"guidance_scale": 7.5}}, "validation_kwargs"),
        ({"train_data": [{"dataset": {"args": {"scale": [0.8, 1.0]}}}]}, "train_data.scale"),
        ({"train_data": [{"dataset": {"args": {"draw_face": True}}}]}, "train_data.draw_face"),
        ({"train_data": [{"dataset": {"args": {"start_index": 0}}}]}, "train_data.start_index"),
    ],
)
def test_config_values_that_cannot_be_honoured_are_refused(tmp_path: Path, change: dict, key: str) -> None:
    from realisdance_cli.training.config import read_config

    config = write_config(tmp_path / "stage2.yaml", released_config(2) | change)
    with pytest.raises(UserError, match=f"{key}: .* cannot be honoured here"):
        read_config(config)


def test_a_config_clip_size_other_than_five_twelfths_of_the_frame_is_refused(tmp_path: Path) -> None:
    """The released configs' clip_size (320x240 for 768x576) is how DINOv2 sees the reference here;
    with the frame made smaller and clip_size left, training would silently differ."""
    from realisdance_cli.training.config import read_config

    raw = released_config(1)
    for dataset in raw["train_data"]:
        dataset["dataset"]["args"]["sample_size"] = [512, 384]
    config = write_config(tmp_path / "stage1.yaml", raw)
    said = (
        "train_data.clip_size: 320x240 cannot be honoured here, where the reference is seen at 5/12 "
        "of the 512x384 frame (213x160)"
    )
    with pytest.raises(UserError, match=re.escape(said)):
        read_config(config)
    for dataset in raw["train_data"]:
        dataset["dataset"]["args"]["clip_size"] = [213, 160]
    with pytest.warns(UserWarning, match="not used here"):  # the folders of the original's data sets
        assert read_config(write_config(config, raw))["size"] == "512x384"


def test_a_config_of_nested_aliases_or_huge_values_is_one_short_sentence(tmp_path: Path) -> None:
    """A few hundred bytes of YAML aliases nest into 10^9 items: the message printed the value
    whole (6 GB, minutes); a 5000-digit number or lists nested 100000 deep were tracebacks."""
    from realisdance_cli.training.config import read_config

    levels = "abcdefghi"
    lines = ["xa: &a [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"x{new}: &{new} [{', '.join([f'*{old}'] * 10)}]" for old, new in pairwise(levels)]
    config = tmp_path / "laughs.yaml"
    config.write_text("\n".join([*lines, "stage: *i"]) + "\n")
    with pytest.raises(UserError, match=r"stage: \[\[\[.*\.\.\..* is not usable") as caught:
        read_config(config)
    assert len(str(caught.value)) < 400
    for text in (f"steps: {'9' * 5000}\n", "steps: " + "[" * 100_000 + "]" * 100_000 + "\n"):
        config.write_text(text)
        with pytest.raises(UserError, match="holds a number too long or lists nested too deep"):
            read_config(config)


def test_config_keys_that_yaml_reads_as_numbers_or_none_are_unknown_keys(tmp_path: Path) -> None:
    """`1:`, `2.5:` and `null:` are no text to YAML: naming them in the warning was a traceback."""
    config = tmp_path / "odd.yaml"
    config.write_text("1: a\n2.5: b\nnull: c\nsteps: 3\n")
    done = rdance("train", "--config", config, "--out", tmp_path / "run")
    assert_user_error(done, "give the training manifest")
    assert "unknown keys, ignored: 1, 2.5, None" in " ".join(done.stderr.split())


def test_a_config_key_given_twice_is_refused_naming_it_and_its_lines(tmp_path: Path) -> None:
    """PyYAML kept the last of two `learning_rate:` silently, a run trained at a rate its trainer
    did not mean; a key of a data set's args given twice too. Keys merged from an anchor
    (`<<: *base`) may still be overridden, as YAML means them to be."""
    from realisdance_cli.training.config import read_config

    config = tmp_path / "stage1.yaml"
    config.write_text("stage: 1\nlearning_rate: 1.0e-5\nsteps: 30\nlearning_rate: 1.0e-4\n")
    done = rdance("train", tmp_path / "manifest.jsonl", "--config", config, "--out", tmp_path / "run")
    assert_user_error(done, f"{config} line 4: learning_rate: is given on line 2 already; keep one of them.")
    text = write_config(config, released_config(1)).read_text()  # a data set's args: nested keys
    config.write_text(
        re.sub(r"^( *)ref_mode: random$", r"\g<0>\n\1ref_mode: first", text, count=1, flags=re.M)
    )
    with pytest.raises(UserError, match=r"line \d+: ref_mode: is given on line \d+ already"):
        read_config(config)
    config.write_text(
        "base: &base {lr: 1.0e-5, steps: 30}\nnot_ours:\n  <<: *base\n  lr: 2.0e-5\nlr: 3.0e-5\n"
    )
    with pytest.warns(UserWarning, match="unknown keys, ignored: base, not_ours"):
        assert read_config(config) == {"lr": 3.0e-5}


def test_a_number_of_workers_no_machine_runs_is_refused_before_any_work(tmp_path: Path) -> None:
    """--workers 100000 (or `num_workers: 100000` in a config) went on to read the manifest and
    would have started that many DataLoader processes."""
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("{}\n")  # read only after the options are checked: never, here
    config = tmp_path / "stage1.yaml"
    config.write_text("num_workers: 100000\n")
    for given in (("--workers", "100000"), ("--config", config)):
        done = rdance("train", manifest, "--stage", "1", *given, "--out", tmp_path / "run")
        assert_user_error(done, "--workers must be 0 to 64, got 100000.")
    assert not (tmp_path / "run").exists()


def test_config_data_sets_that_disagree_are_refused(tmp_path: Path) -> None:
    from realisdance_cli.training.config import read_config

    raw = released_config(1)
    raw["train_data"][1]["dataset"]["args"]["sample_size"] = [512, 384]
    config = write_config(tmp_path / "stage1.yaml", raw)
    said = "train_data: the data sets give sample_size [768, 576] and [512, 384]"
    with pytest.raises(UserError, match=re.escape(said)):
        read_config(config)


@pytest.mark.parametrize(
    "damage", ["unet config a list", "no training timesteps", "vae config cut", "a billion layers per block"]
)
def test_a_damaged_base_folder_is_one_sentence(tmp_path: Path, damage: str) -> None:
    """Training names the damaged folder of the base model as animate does, never a traceback."""
    from test_animate_cli import DAMAGE_REASONS, DAMAGED_BASE

    args = _stage2_args(tmp_path, tmp_path / "run")
    folder, make = DAMAGED_BASE[damage]
    linked = tmp_path / "weights" / folder
    shutil.copytree(linked.resolve(), linked.with_name("copy"))
    linked.unlink()
    linked.with_name("copy").rename(linked)
    make(tmp_path / "weights")
    done = rdance(*args, timeout=120)
    assert_user_error(
        done,
        f"cannot load {tmp_path / 'weights' / folder}, it is damaged {DAMAGE_REASONS.get(damage, '')}",
        "`rdance weights check` names",
    )
    assert not (tmp_path / "run" / "stage2.safetensors").exists()


# -- dataset build ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_dataset_build_says_what_it_skipped(tmp_path: Path) -> None:
    from realisdance_cli import weights

    root = tmp_path / "weights"
    for name in ("dwpose-det", "dwpose-pose", "hamer", "hamer-config", "mano", "smplerx", "smplx"):
        (root / weights.get(name).path).parent.mkdir(parents=True, exist_ok=True)
        (root / weights.get(name).path).touch()
    videos = tmp_path / "videos"
    (videos / "more dances").mkdir(parents=True)
    (videos / "a.mp4").write_bytes(b"not a video")
    (videos / "notes.txt").write_text("not a video")
    data = tmp_path / "data"
    done = rdance("dataset", "build", videos, "--out", data, "--weights", root, "--device", "cpu")
    said = " ".join(done.stderr.split())
    assert "skipped 2 entries of" in said and "more dances/, notes.txt" in said, said


def test_dataset_build_writes_video_paths_relative_to_the_manifest(tmp_path: Path) -> None:
    """The manifest moves with its data folder and the videos beside it."""
    from realisdance_cli.training.dataset_build import manifest_path

    assert manifest_path(tmp_path / "videos" / "a.mp4", tmp_path / "data") == "../videos/a.mp4"
