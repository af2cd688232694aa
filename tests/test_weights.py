"""The weights registry, `rdance weights`, structural checks of every weight format, models found
in the Hugging Face cache, and real downloads from a loopback hub into the weights folder and the
cache."""

from __future__ import annotations

import io
import json
import os
import pickle
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import onnx
import pytest
import torch
import yaml
from conftest import assert_user_error, rdance, start_rdance
from dit_models import build_release_folder
from hub_server import HubServer
from onnx import TensorProto, helper, numpy_helper
from safetensors.torch import save, save_file

from realisdance_cli import weights
from realisdance_cli.errors import UserError


def test_registry_is_consistent() -> None:
    names = [entry.name for entry in weights.REGISTRY]
    assert len(names) == len(set(names))
    paths = [entry.path for entry in weights.REGISTRY]
    assert len(paths) == len(set(paths))
    for entry in weights.REGISTRY:
        if isinstance(entry.source, weights.HubFile):  # downloads mirror the repository's layout
            in_repo = PurePosixPath(entry.source.filename).parts
            assert PurePosixPath(entry.path).parts[-len(in_repo) :] == in_repo, entry.name
        assert entry.licence and entry.purpose
    # Every file of DESIGN.md's table is there.
    needed_files = (
        "yolox_l.onnx dw-ll_ucoco_384.onnx hamer.ckpt model_config.yaml MANO_RIGHT.pkl smpler_x_h32.pth.tar "
        "SMPLX_NEUTRAL.npz stage_2_hamer_release.ckpt mm_sd_v15_v2.ckpt smplx_color.pt"
    )
    for needed in needed_files.split():
        assert any(p.endswith(needed) for p in paths), needed
    assert {e.source.repo for e in weights.REGISTRY if isinstance(e.source, weights.HubFolder)} >= {
        "SG161222/Realistic_Vision_V5.1_noVAE",
        "facebook/dinov2-large",
    }


def test_root_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RDANCE_HOME", raising=False)
    assert weights.weights_root() == Path("~/.cache/realisdance").expanduser()
    monkeypatch.setenv("RDANCE_HOME", str(tmp_path / "env"))
    assert weights.weights_root() == tmp_path / "env"
    assert weights.weights_root(tmp_path / "flag") == tmp_path / "flag"


def test_select_by_name_and_group() -> None:
    assert [e.name for e in weights.select(["dwpose"])] == ["dwpose-det", "dwpose-pose"]
    assert [e.name for e in weights.select(["mano", "dwpose-det", "mano"])] == ["mano", "dwpose-det"]
    with pytest.raises(UserError, match="no weight file or group is called 'nope'"):
        weights.select(["nope"])


def test_require_names_the_file_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(UserError) as caught:
        weights.require("mano", tmp_path)
    message = str(caught.value)
    assert str(tmp_path / "mano" / "MANO_RIGHT.pkl") in message
    assert "https://mano.is.tue.mpg.de" in message and "licence" in message
    with pytest.raises(UserError, match="rdance weights download dwpose"):
        weights.require("dwpose-det", tmp_path)
    (tmp_path / "dwpose").mkdir()
    (tmp_path / "dwpose" / "yolox_l.onnx").write_bytes(b"x")
    assert weights.require("dwpose-det", tmp_path) == tmp_path / "dwpose" / "yolox_l.onnx"


def test_require_all_says_each_way_to_get_the_files_once(tmp_path: Path) -> None:
    """Extract's first sentence to a newcomer was 30 lines: the HaMeR archive's steps twice and
    `rdance weights download dwpose` twice. Each way is said once now, after what it brings."""
    names = ["dwpose-det", "dwpose-pose", "hamer", "hamer-config", "mano", "smplerx", "smplx"]
    with pytest.raises(UserError) as caught:
        weights.require_all(names, tmp_path)
    message = str(caught.value)
    download = f"run `rdance weights download dwpose smplerx --weights {tmp_path}`"
    assert message.count("rdance weights download") == 1 and download in message
    assert message.count("hamer_demo_data.tar.gz") == 1
    assert "HaMeR hand mesh recovery network (ViT-H) and HaMeR model configuration: download" in message
    assert message.count("register and accept") == 2  # MANO's licence and SMPL-X's
    assert message.endswith("`rdance doctor` says where each was looked for.")


def test_check_exit_codes(tmp_path: Path) -> None:
    done = rdance("weights", "check", "dwpose", "--weights", tmp_path)
    assert done.returncode == 1
    assert done.stdout.count("missing") == 2
    for rel in ("dwpose/yolox_l.onnx", "dwpose/dw-ll_ucoco_384.onnx"):
        tiny_onnx(tmp_path / rel)
    done = rdance("weights", "check", "dwpose", "--weights", tmp_path)
    assert done.returncode == 0, done.stdout
    assert done.stdout.count("ok") == 2
    assert_user_error(rdance("weights", "check", "bogus", "--weights", tmp_path), "bogus")


def test_list_shows_every_entry(tmp_path: Path) -> None:
    done = rdance("weights", "list", "--weights", tmp_path, env={"COLUMNS": "400"})
    assert done.returncode == 0
    for entry in weights.REGISTRY:
        assert entry.name in done.stdout


# Files of every format, small but whole, built the way their makers build them.


def onnx_bytes(weight: np.ndarray) -> bytes:
    """y = x @ weight: one node, one input, one output, one initializer (raw bytes), opset 13."""
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, weight.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, weight.shape[1]])],
        [numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


def tiny_onnx(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(onnx_bytes(np.arange(12, dtype=np.float32).reshape(3, 4)))
    return path


def torch_file(path: Path, obj: object | None = None, legacy: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    obj = {"state_dict": {"w": torch.arange(256.0), "b": torch.ones(3)}} if obj is None else obj
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return path


def safetensors_file(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    save_file({"a.weight": torch.randn(16, 8, generator=generator), "a.bias": torch.zeros(8)}, path)
    return path


def npz_file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, pose=np.arange(48.0), shape=np.zeros(10), names=np.array([{"a": 1}], dtype=object))
    return path


def mano_pickle(path: Path) -> Path:
    """A body model pickle as the official ones are: protocol 2, a dict of numpy arrays."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"v_template": np.zeros((778, 3)), "f": np.zeros((1538, 3), np.uint32), "kintree_table": [0, 1]}
    path.write_bytes(pickle.dumps(arrays, protocol=2))
    return path


def json_file(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))
    return path


def sharded_folder(folder: Path) -> Path:
    """A transformers folder whose weights are two safetensors shards and their index."""
    json_file(folder / "config.json", {"model_type": "dinov2", "hidden_size": 8})
    shards = {"model-00001-of-00002.safetensors": 0, "model-00002-of-00002.safetensors": 1}
    for name, seed in shards.items():
        safetensors_file(folder / name, seed)
    weight_map = {f"layer{seed}.{key}": name for name, seed in shards.items() for key in ("weight", "bias")}
    json_file(folder / "model.safetensors.index.json", {"metadata": {}, "weight_map": weight_map})
    return folder


def whole_weights(root: Path) -> Path:
    """Every registry entry, whole, in its format (the SMPLer-X file in torch's legacy format)."""
    tiny_onnx(root / "dwpose/yolox_l.onnx")
    tiny_onnx(root / "dwpose/dw-ll_ucoco_384.onnx")
    torch_file(root / "hamer/hamer.ckpt")
    (root / "hamer/model_config.yaml").write_text(yaml.safe_dump({"MODEL": {"IMAGE_SIZE": 256}}))
    npz_file(root / "hamer/mano_mean_params.npz")
    mano_pickle(root / "mano/MANO_RIGHT.pkl")
    torch_file(root / "smplerx/smpler_x_h32.pth.tar", legacy=True)
    npz_file(root / "smplx/SMPLX_NEUTRAL.npz")
    torch_file(root / "smplx/smplx_color.pt", np.zeros((10, 3), np.uint8))
    torch_file(root / "realisdance/stage_2_hamer_release.ckpt")
    base = root / "base/rv51"
    json_file(base / "model_index.json", {"_class_name": "StableDiffusionPipeline"})
    json_file(base / "unet/config.json", {"_class_name": "UNet2DConditionModel"})
    json_file(base / "vae/config.json", {"_class_name": "AutoencoderKL"})
    safetensors_file(base / "vae/diffusion_pytorch_model.safetensors")
    json_file(base / "scheduler/scheduler_config.json", {"_class_name": "DDIMScheduler"})
    safetensors_file(base / "unet/diffusion_pytorch_model.safetensors")  # base-unet
    sharded_folder(root / "dinov2-large")
    torch_file(root / "animatediff/mm_sd_v15_v2.ckpt")
    build_release_folder(root / "realisdance-dit")
    for name in (
        "pt_inception-2015-12-05-6726825d.pth",
        "auxiliary/vgg16-397923af.pth",
        "LPIPS_v0.1_vgg-a78928a0.pth",
        "eval_fvd/i3d_pretrained_400.pt",
        "eval_fvd/resnet-50-kinetics.pth",
    ):
        torch_file(root / "eval" / name, legacy=True)  # the evaluation networks' releases predate zip files
    return root


def check(root: Path, *names: str, hashes: bool = False) -> tuple[int, dict[str, str]]:
    """`rdance weights check` (`--hash` with `hashes`) as a real command: its exit code and its
    line for each entry."""
    hash_ = ["--hash"] if hashes else []
    done = rdance("weights", "check", *names, *hash_, "--weights", root, env={"COLUMNS": "2000"})
    assert "Traceback" not in done.stderr, done.stderr
    lines = {line.split()[1]: line for line in done.stdout.splitlines() if len(line.split()) > 1}
    return done.returncode, lines


def truncate(path: Path, size: int) -> None:
    with path.open("r+b") as handle:
        handle.truncate(size)


def flip_byte_in_member(archive: Path, suffix: str) -> str:
    """Flip one bit in the stored data of the member whose name ends with `suffix`; its name."""
    with zipfile.ZipFile(archive) as opened:
        info = next(i for i in opened.infolist() if i.filename.endswith(suffix))
    with archive.open("r+b") as handle:
        handle.seek(info.header_offset + 26)
        name_length, extra_length = np.frombuffer(handle.read(4), "<u2")
        data_start = info.header_offset + 30 + int(name_length) + int(extra_length)
        handle.seek(data_start + info.compress_size // 2)
        byte = handle.read(1)[0]
        handle.seek(-1, io.SEEK_CUR)
        handle.write(bytes([byte ^ 0x10]))
    return info.filename


def test_whole_files_of_every_format_pass(tmp_path: Path) -> None:
    root = whole_weights(tmp_path)
    code, lines = check(root, *weights.GROUPS)  # the optional groups are checked when named
    assert code == 0, lines
    assert all(lines[entry.name].startswith("ok") for entry in weights.REGISTRY), lines
    # A pre-1.6 torch file has no directory or checksums: said so, not failed.
    assert "legacy torch format: only its header could be checked" in lines["smplerx"]
    for entry in weights.REGISTRY:
        found = weights.status(entry, root, structure="full")
        assert found.ok, (entry.name, found.problem)


# (registry entry, how to make it whole) for each single-file format.
FORMATS = {
    "onnx": ("dwpose-det", lambda path: tiny_onnx(path)),
    "torch": ("hamer", lambda path: torch_file(path)),
    "safetensors": ("base-unet", lambda path: safetensors_file(path)),
    "npz": ("hamer-mean", lambda path: npz_file(path)),
    "pickle": ("mano", lambda path: mano_pickle(path)),
}


@pytest.mark.parametrize("kind", sorted(FORMATS))
def test_a_cut_anywhere_is_caught(kind: str, tmp_path: Path) -> None:
    name, make = FORMATS[kind]
    entry = weights.get(name)
    path = make(tmp_path / entry.path)
    whole = path.read_bytes()
    assert weights.status(entry, tmp_path).ok
    step = max(1, len(whole) // 120)
    for size in [*range(0, len(whole), step), len(whole) - 1]:
        path.write_bytes(whole[:size])
        # Seen from headers and directories alone (what doctor and download look at) ...
        found = weights.status(entry, tmp_path)
        assert found.found and found.problem, (size, len(whole))
        assert found.culprit == path
        # ... and of course when every byte is read.
        assert weights.status(entry, tmp_path, structure="full").problem, (size, len(whole))
    path.write_bytes(whole[: len(whole) // 2])
    code, lines = check(tmp_path, name)
    assert code == 1
    assert lines[name].startswith("wrong") and ("truncated" in lines[name] or "damaged" in lines[name])
    assert f"to fetch it again: delete {path}, then" in lines[name]


def test_empty_files_are_wrong_in_every_format(tmp_path: Path) -> None:
    singles = [entry for entry in weights.REGISTRY if not entry.is_folder]
    for entry in singles:
        (tmp_path / entry.path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / entry.path).write_bytes(b"")
    code, lines = check(tmp_path, *(entry.name for entry in singles))
    assert code == 1
    for entry in singles:
        assert lines[entry.name].startswith("wrong"), lines[entry.name]
        assert "empty file (0 bytes)" in lines[entry.name]
    assert "register and accept the MANO licence" in lines["mano"]
    assert "rdance weights download dwpose" in lines["dwpose-det"]


def test_a_flipped_bit_inside_a_zip_member_fails_its_crc(tmp_path: Path) -> None:
    checkpoint = torch_file(tmp_path / weights.get("hamer").path)
    arrays = npz_file(tmp_path / weights.get("hamer-mean").path)
    member = flip_byte_in_member(checkpoint, "data/0")
    array = flip_byte_in_member(arrays, "pose.npy")
    code, lines = check(tmp_path, "hamer", "hamer-mean")
    assert code == 1
    assert f"damaged: {member} fails its CRC check" in lines["hamer"]
    assert f"delete {checkpoint}, then download {weights.get('hamer').source.url}" in lines["hamer"]
    assert f"damaged: {array} fails its CRC check" in lines["hamer-mean"]


def test_a_missing_shard_is_named(tmp_path: Path) -> None:
    folder = sharded_folder(tmp_path / "dinov2-large")
    assert weights.status(weights.get("dinov2"), tmp_path).ok
    (folder / "model-00002-of-00002.safetensors").unlink()
    code, lines = check(tmp_path, "dinov2")
    assert code == 1
    assert (
        "model.safetensors.index.json: shard model-00002-of-00002.safetensors is missing" in lines["dinov2"]
    )
    # Nothing to delete: the download fetches the folder again.
    assert lines["dinov2"].endswith(
        f"to fetch it again: run `rdance weights download realisdance --weights {tmp_path}`"
    )


def test_folders_need_their_configs_and_weights(tmp_path: Path) -> None:
    root = whole_weights(tmp_path)
    (root / "realisdance-dit/vae/diffusion_pytorch_model.safetensors").unlink()
    vae = root / "base/rv51/vae/diffusion_pytorch_model.safetensors"
    truncate(vae, vae.stat().st_size - 100)
    dinov2_config = root / "dinov2-large/config.json"
    truncate(dinov2_config, dinov2_config.stat().st_size // 2)
    # A registry entry of its own inside the folder, fetched by its own group: not the folder's.
    unet = root / "base/rv51/unet/diffusion_pytorch_model.safetensors"
    truncate(unet, 0)
    code, lines = check(root, "realisdance-dit", "base-model", "dinov2", "base-unet")
    assert code == 1
    assert "empty file" in lines["base-unet"] and "rdance weights download training" in lines["base-unet"]
    assert "vae: no weight file (*.safetensors or *.bin)" in lines["realisdance-dit"]
    assert (
        "vae/diffusion_pytorch_model.safetensors: truncated: safetensors header says" in lines["base-model"]
    )
    assert f"delete {vae}, then" in lines["base-model"]
    assert "config.json: truncated or damaged: not valid JSON" in lines["dinov2"]


def test_safetensors_sizes_are_read_from_its_header(tmp_path: Path) -> None:
    path = safetensors_file(tmp_path / weights.get("base-unet").path)
    whole = path.read_bytes()
    header = int.from_bytes(whole[:8], "little")
    data = len(whole) - 8 - header
    path.write_bytes(whole[:-100])
    problem = weights.status(weights.get("base-unet"), tmp_path).problem
    assert problem == f"truncated: safetensors header says {data} bytes of data, the file has {data - 100}"
    path.write_bytes(whole + b"\0" * 16)
    problem = weights.status(weights.get("base-unet"), tmp_path).problem
    assert problem == f"damaged: 16 bytes follow the {data} bytes of data the header describes"
    path.write_bytes(whole[: 8 + header // 2])
    code, lines = check(tmp_path, "base-unet")
    assert code == 1
    assert (
        f"truncated: the safetensors header needs {header} bytes, the file has {header // 2}"
        in lines["base-unet"]
    )


def safetensors_with_header(path: Path, header: bytes, data: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(len(header).to_bytes(8, "little") + header + data)
    return path


def tensor_header(shape: object, offsets: object = (0, 4), text: str = "") -> bytes:
    """One F32 tensor's header; `text` replaces the shape's JSON as written (a number json refuses)."""
    header = json.dumps({"w": {"dtype": "F32", "shape": shape, "data_offsets": list(offsets)}})
    return (header.replace('"SHAPE"', text) if text else header).encode()


# Headers a reviewer found to give tracebacks, or a message Python cannot print, and what is said.
DAMAGED_HEADERS = {
    "nested 200000 deep": (b"[" * 200_000 + b"]" * 200_000, "the safetensors header is not valid JSON"),
    "a 5000-digit number": (tensor_header("SHAPE", text="[" + "9" * 5000 + "]"), "not valid JSON"),
    "a shape of 5000 digits": (tensor_header("9" * 5000), "the safetensors header entry 'w' is malformed"),
    "a petabyte shape": (tensor_header([10**15], (0, 4 * 10**15)), "has a shape larger than the whole file"),
}


@pytest.mark.parametrize("damage", list(DAMAGED_HEADERS))
def test_a_hostile_safetensors_header_is_one_line(tmp_path: Path, damage: str) -> None:
    header, said = DAMAGED_HEADERS[damage]
    safetensors_with_header(tmp_path / weights.get("base-unet").path, header, b"\0" * 4)
    code, lines = check(tmp_path, "base-unet")
    assert code == 1 and lines["base-unet"].startswith("wrong") and said in lines["base-unet"], lines


def test_deep_configs_and_shards_outside_the_folder_are_damage(tmp_path: Path) -> None:
    """A config nested too deeply for Python's parsers, and an index whose shard names leave the
    folder (which passed as ok, naming /etc/passwd as a shard), are each one line."""
    (tmp_path / "hamer").mkdir()
    (tmp_path / "hamer/model_config.yaml").write_text("[" * 200_000 + "]" * 200_000)
    sharded_folder(tmp_path / "dinov2-large")
    index = tmp_path / "dinov2-large/model.safetensors.index.json"
    for shard in ("../../../../../../etc/passwd", "/etc/passwd"):
        index.write_text(json.dumps({"weight_map": {"a": shard}}))
        code, lines = check(tmp_path, "hamer-config", "dinov2")
        assert code == 1
        assert "model_config.yaml: damaged: not valid YAML (it nests too deeply)" in lines["hamer-config"]
        assert f"the shard index names {shard!r}, outside its folder" in lines["dinov2"]
    (tmp_path / "dinov2-large/config.json").write_text("[" * 200_000 + "]" * 200_000)
    code, lines = check(tmp_path, "dinov2")
    assert code == 1 and "config.json: damaged: not valid JSON (it nests too deeply)" in lines["dinov2"]


def test_configs_of_sizes_no_model_has_are_damage(tmp_path: Path) -> None:
    """A model's settings that would make loading build layers for minutes (which passed as ok),
    and settings too large to be any model's, are each one line naming the file and the value."""
    root = whole_weights(tmp_path)
    json_file(
        root / "base/rv51/unet/config.json",
        {"_class_name": "UNet2DConditionModel", "layers_per_block": 10**9},
    )
    large = json_file(root / "dinov2-large/config.json", {"model_type": "dinov2", "pad": "x" * 2**20})
    code, lines = check(root, "base-model", "dinov2")
    assert code == 1
    said = "unet/config.json: damaged: layers_per_block is 1000000000, more than any real model"
    assert said in lines["base-model"]
    said = f"config.json: damaged: it is {large.stat().st_size} bytes, more than any real model's settings"
    assert said in lines["dinov2"]


def test_onnx_that_parses_but_is_incomplete(tmp_path: Path) -> None:
    entry = weights.get("dwpose-pose")
    path = tiny_onnx(tmp_path / entry.path)
    model = onnx.load(str(path))
    # Protobuf reads a cut between two top-level fields as a smaller, valid message.
    without_opset = onnx.ModelProto()
    without_opset.CopyFrom(model)
    del without_opset.opset_import[:]
    cut = len(without_opset.SerializeToString())
    whole = path.read_bytes()
    assert whole[:cut] == without_opset.SerializeToString()
    path.write_bytes(whole[:cut])
    assert weights.status(entry, tmp_path).problem == "truncated or damaged: the ONNX model names no opset"
    model.graph.initializer[0].raw_data = model.graph.initializer[0].raw_data[:-4]
    path.write_bytes(model.SerializeToString())
    code, lines = check(tmp_path, "dwpose-pose")
    assert code == 1
    assert "damaged: initializer 'w' holds 44 bytes, its shape [3, 4] needs 48" in lines["dwpose-pose"]


def test_body_model_pickles_load_only_arrays(tmp_path: Path) -> None:
    path = tmp_path / weights.get("mano").path
    path.parent.mkdir(parents=True)
    path.write_bytes(pickle.dumps({"v_template": os.system}, protocol=2))
    code, lines = check(tmp_path, "mano")
    assert code == 1
    assert "system, which a data file never needs" in lines["mano"]


def test_doctor_fails_on_a_truncated_file(tmp_path: Path) -> None:
    from realisdance_cli import doctor

    path = tiny_onnx(tmp_path / weights.get("dwpose-det").path)
    truncate(path, path.stat().st_size // 2)
    (check_,) = [c for c in doctor.weight_checks(tmp_path) if c.name == "dwpose-det"]
    assert check_.level == "fail" and "the ONNX protobuf does not parse" in check_.detail


# Whole ONNX files, the first bigger than huggingface_hub's 10 MiB write chunk, so that half of it
# (what a stalled transfer sends) holds a whole chunk the client has written.
_RNG = np.random.default_rng(0)
DWPOSE_FILES = {
    "yolox_l.onnx": onnx_bytes(_RNG.standard_normal((3, 2 << 20), np.float32)),
    "dw-ll_ucoco_384.onnx": onnx_bytes(_RNG.standard_normal((3, 16_000), np.float32)),
}
DWPOSE = {("yzd-v/DWPose", "main"): DWPOSE_FILES}
DINOV2_FILES = {
    "config.json": b'{"model_type": "dinov2"}',
    "model.safetensors": save({"w": torch.randn(40, 30, generator=torch.Generator().manual_seed(0))}),
    "README.md": b"x",
}
DINOV2 = {("facebook/dinov2-large", "main"): DINOV2_FILES}
DESTINATIONS = ("weights folder", "Hugging Face cache")
# The same files, a few hundred kB: for the tests that kill a download half way.
SMALL_FILES = {name: onnx_bytes(_RNG.standard_normal((3, 30_000), np.float32)) for name in DWPOSE_FILES}
SMALL = {("yzd-v/DWPose", "main"): SMALL_FILES}


@pytest.fixture(autouse=True)
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test its own Hugging Face cache, in this process and in the commands it runs, so that
    a developer's cached models are never seen, nor touched."""
    from huggingface_hub import constants

    for name in ("HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_ENDPOINT", "RDANCE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    return tmp_path / "hf" / "hub"


def default_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run without `--weights` and `$RDANCE_HOME`: the default weights folder, in a home of our own."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    root = weights.weights_root()
    assert root == tmp_path / "home" / ".cache" / "realisdance"
    return root


def destination(into: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[str]]:
    """The weights folder and the `rdance` arguments that choose where a download goes."""
    if into == "weights folder":
        return tmp_path / "w", ["--weights", str(tmp_path / "w")]
    return default_root(tmp_path, monkeypatch), []


def transfers(hub: HubServer, filename: str) -> list[str | None]:
    """The Range header of each GET of `filename` (None: from the start)."""
    return [r for method, path, r in hub.requests if method == "GET" and path.endswith("/" + filename)]


def where_downloaded(name: str, root: Path, into: str, hf_cache: Path) -> Path:
    """The path of a downloaded entry, checked to be whole and at the destination `into`."""
    found = weights.status(weights.get(name), root, structure="full")
    assert found.ok, found
    assert found.place == into
    if into == "weights folder":
        assert found.path == root / weights.get(name).path
    else:
        assert found.path.is_relative_to(hf_cache)
        assert not root.exists()  # nothing in the default weights folder, nothing copied
    return found.path


def partials(root: Path) -> list[Path]:
    """The unfinished downloads under `root`: ours (`.partial`) and huggingface_hub's (`.incomplete`)."""
    return [p for p in root.rglob("*") if p.name.endswith((".partial", ".incomplete"))]


def kill_half_way(hub: HubServer, choose: list[str], folder: Path | None) -> int:
    """Start `rdance weights download dwpose`, and kill it (SIGKILL: no handler runs) once the hub
    has sent half of yolox_l.onnx and, when the download goes to `folder`, once those bytes are
    in its partial file there; the bytes written (0 for a download into the cache)."""
    child = start_rdance("weights", "download", "dwpose", *choose)
    assert hub.stalled.wait(60), "the download never started"
    written = 0
    if folder is not None:
        half = len(hub.repos[("yzd-v/DWPose", "main")]["yolox_l.onnx"]) // 2
        deadline = time.monotonic() + 30
        while written < half and time.monotonic() < deadline:
            time.sleep(0.02)
            written = sum(p.stat().st_size for p in partials(folder))
        assert written == half, written
    child.kill()
    child.communicate()
    return written


def revisions_asked(hub: HubServer) -> set[str]:
    """The revisions the files were asked for at: the pinned one, or the commit it resolved to."""
    return {path.split("/resolve/")[1].split("/")[0] for _, path, _ in hub.requests if "/resolve/" in path}


@pytest.mark.slow
@pytest.mark.parametrize("into", DESTINATIONS)
def test_a_killed_download_is_finished_by_the_next_run(
    into: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hf_cache: Path
) -> None:
    root, choose = destination(into, tmp_path, monkeypatch)
    into_folder = into == "weights folder"
    with HubServer(SMALL, stall_first_download="yolox_l.onnx") as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        written = kill_half_way(hub, choose, root if into_folder else None)
        # Nothing half-written under the real name, in the folder or in the cache.
        assert not weights.status(weights.get("dwpose-det"), root, structure="none").found
        done = rdance("weights", "download", "dwpose", *choose)
        assert done.returncode == 0, done.stderr
        first, second = transfers(hub, "yolox_l.onnx")
        assert revisions_asked(hub) <= {"main", hub.commits[("yzd-v/DWPose", "main")]}
    assert first is None
    if into_folder:  # the second run asked for the bytes after those the first had written
        assert second == f"bytes={written}-"
        assert not partials(root)
    else:  # huggingface_hub keeps no partial file between runs (#4196): the transfer starts over
        assert second is None
    for name, filename in (("dwpose-det", "yolox_l.onnx"), ("dwpose-pose", "dw-ll_ucoco_384.onnx")):
        assert where_downloaded(name, root, into, hf_cache).read_bytes() == SMALL_FILES[filename]


@pytest.mark.slow
def test_ctrl_c_during_a_download_says_that_the_finished_files_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hf_cache: Path
) -> None:
    """Not "finished parts are kept ... to resume": a file bound for the cache starts over."""
    with HubServer(SMALL, stall_first_download="yolox_l.onnx") as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        child = start_rdance("weights", "download", "dwpose")
        assert hub.stalled.wait(60), "the download never started"
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=60)
    assert child.returncode == 130, stderr
    said = " ".join(stderr.split())
    assert said.endswith("interrupted; finished files are kept; run the same command again to go on."), said


@pytest.mark.slow
def test_the_partial_file_of_a_changed_file_is_not_continued(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "w"
    with HubServer(SMALL, stall_first_download="yolox_l.onnx") as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        assert kill_half_way(hub, ["--weights", str(root)], root) > 0
    # The file changes upstream, to one of the same size: the old bytes must not be continued.
    changed = {**SMALL_FILES, "yolox_l.onnx": onnx_bytes(_RNG.standard_normal((3, 30_000), np.float32))}
    assert len(changed["yolox_l.onnx"]) == len(SMALL_FILES["yolox_l.onnx"])
    with HubServer({("yzd-v/DWPose", "main"): changed}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        done = rdance("weights", "download", "dwpose", "--weights", root)
        assert done.returncode == 0, done.stderr
        assert transfers(hub, "yolox_l.onnx") == [None]
    assert (root / weights.get("dwpose-det").path).read_bytes() == changed["yolox_l.onnx"]
    assert not partials(root)


@pytest.mark.slow
def test_a_hub_that_ignores_the_range_gives_a_whole_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "w"
    with HubServer(SMALL, stall_first_download="yolox_l.onnx", ranges=False) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        written = kill_half_way(hub, ["--weights", str(root)], root)
        done = rdance("weights", "download", "dwpose", "--weights", root)
        assert done.returncode == 0, done.stderr
        # Asked for the rest, answered with all of it (a 200): written from the start, not appended.
        assert transfers(hub, "yolox_l.onnx") == [None, f"bytes={written}-"]
    assert (root / weights.get("dwpose-det").path).read_bytes() == SMALL_FILES["yolox_l.onnx"]
    assert not partials(root)


@pytest.mark.slow
def test_two_downloads_of_one_file_never_write_it_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "w"
    with HubServer(SMALL, stall_first_download="yolox_l.onnx") as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        first = start_rdance("weights", "download", "dwpose-det", "--weights", root)
        try:
            assert hub.stalled.wait(60), "the download never started"
            second = rdance("weights", "download", "dwpose-det", "--weights", root)
        finally:
            first.kill()
            first.communicate()
    assert_user_error(second, "another process is downloading", str(root / "dwpose" / "yolox_l.onnx"))
    assert len(transfers(hub, "yolox_l.onnx")) == 1


@pytest.mark.slow
@pytest.mark.parametrize("into", DESTINATIONS)
def test_a_stalled_transfer_continues_where_it_stopped(
    into: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hf_cache: Path
) -> None:
    root, choose = destination(into, tmp_path, monkeypatch)
    monkeypatch.setenv("HF_HUB_DOWNLOAD_TIMEOUT", "1")  # the read times out one second into the stall
    with HubServer(DWPOSE, stall_first_download="yolox_l.onnx") as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        done = rdance("weights", "download", "dwpose-det", *choose)
        assert done.returncode == 0, done.stderr
        first, second = transfers(hub, "yolox_l.onnx")
    data = DWPOSE_FILES["yolox_l.onnx"]
    assert first is None and second is not None
    # The second request continued after the bytes written, within the half that had arrived.
    assert 0 < int(second.removeprefix("bytes=").split("-")[0]) <= len(data) // 2
    assert where_downloaded("dwpose-det", root, into, hf_cache).read_bytes() == data


def partial_blob(hub: HubServer, hf_cache: Path, before: list[Path]) -> Path:
    """The partial blob, not among `before`, that a download into the cache writes yolox_l.onnx to,
    once the hub has stalled half way and some of the bytes sent are in the file."""
    assert hub.stalled.wait(60), "the download never started"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        written = [p for p in partials(hf_cache) if p not in before and p.stat().st_size]
        if written:
            return written[0]
        time.sleep(0.02)
    raise AssertionError("no bytes reached a partial blob")


@pytest.mark.slow
def test_the_partial_blobs_of_killed_downloads_are_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hf_cache: Path
) -> None:
    """huggingface_hub never continues nor removes the partial blob of a killed run (#4196): each
    kill would leave up to a whole file (gigabytes) in the cache, unless the next download removes it."""
    root = default_root(tmp_path, monkeypatch)
    left: list[Path] = []
    sizes: list[int] = []
    told: list[str] = []  # stderr of each run
    with HubServer(DWPOSE, stall_first_download="yolox_l.onnx", stalls=2) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        for _ in range(2):
            hub.stalled.clear()
            child = start_rdance("weights", "download", "dwpose-det")
            try:
                left.append(partial_blob(hub, hf_cache, left))
            finally:
                child.kill()  # SIGKILL: huggingface_hub's clean-up never runs
                told.append(child.communicate()[1])
            assert partials(hf_cache) == left[-1:]  # the run removed the bytes the run before left
            sizes.append(left[-1].stat().st_size)
        done = rdance("weights", "download", "dwpose")
        told.append(done.stderr)
    assert done.returncode == 0, done.stderr
    assert not partials(hf_cache)
    said = [" ".join(stderr.split()) for stderr in told]
    assert "removed" not in said[0]
    for stderr, size in zip(said[1:], sizes, strict=True):
        assert (
            f"removed 1 partial download of a killed run ({size / 1e6:.1f} MB) from the Hugging Face"
            in stderr
        )
    for name, filename in (("dwpose-det", "yolox_l.onnx"), ("dwpose-pose", "dw-ll_ucoco_384.onnx")):
        found = where_downloaded(name, root, "Hugging Face cache", hf_cache)
        assert found.read_bytes() == DWPOSE_FILES[filename]


@pytest.mark.slow
def test_the_partial_blob_of_a_running_download_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hf_cache: Path
) -> None:
    """A download of another file of the same repository, while the first writes its blob: the
    first still finishes."""
    root = default_root(tmp_path, monkeypatch)
    with HubServer(DWPOSE, stall_first_download="yolox_l.onnx") as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        first = start_rdance("weights", "download", "dwpose-det")
        try:
            partial_blob(hub, hf_cache, [])
            second = rdance("weights", "download", "dwpose-pose")
            hub.release()
            _, first_stderr = first.communicate(timeout=120)
        finally:
            first.kill()
            first.communicate()
    assert second.returncode == 0, second.stderr
    assert first.returncode == 0, first_stderr
    assert "removed" not in second.stderr
    assert not partials(hf_cache)
    for name, filename in (("dwpose-det", "yolox_l.onnx"), ("dwpose-pose", "dw-ll_ucoco_384.onnx")):
        found = where_downloaded(name, root, "Hugging Face cache", hf_cache)
        assert found.read_bytes() == DWPOSE_FILES[filename]


@pytest.mark.slow
def test_the_partial_files_of_killed_folder_downloads_into_the_weights_folder_are_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder bound for the weights folder goes through huggingface_hub's own download into it
    (`.cache/huggingface/download/`), which leaves the same unfinished files when killed."""
    root = tmp_path / "w"
    folder = root / weights.get("dinov2").path
    # 24 MB: half of it is past the 10 MB that huggingface_hub receives before it writes
    files = {**DINOV2_FILES, "model.safetensors": save({"w": torch.zeros(3000, 2000)})}
    left: list[Path] = []
    told: list[str] = []  # stderr of each killed run
    monkeypatch.setenv("HF_HUB_DOWNLOAD_TIMEOUT", "600")  # the stall never times out, however slow
    with HubServer(
        {("facebook/dinov2-large", "main"): files}, stall_first_download="model.safetensors", stalls=2
    ) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        for _ in range(2):
            hub.stalled.clear()
            child = start_rdance("weights", "download", "dinov2", "--weights", root)
            try:
                assert hub.stalled.wait(60), "the download never started"
                deadline = time.monotonic() + 60
                while not [p for p in partials(folder) if p not in left and p.stat().st_size]:
                    assert time.monotonic() < deadline, "no bytes reached a partial file"
                    time.sleep(0.02)
            finally:
                child.kill()  # SIGKILL: huggingface_hub's clean-up never runs
                told.append(child.communicate()[1])
            earlier, left = left, partials(folder)
            assert left and not set(earlier) & set(left), (earlier, left)  # the run before's are removed
        size = sum(partial.stat().st_size for partial in left)
        done = rdance("weights", "download", "dinov2", "--weights", root)
    assert done.returncode == 0, done.stderr
    assert not partials(folder)
    assert (folder / "model.safetensors").read_bytes() == files["model.safetensors"]
    for stderr in (told[1], done.stderr):
        assert "partial download" in stderr and "killed run" in " ".join(stderr.split())
    assert f"({size / 1e6:.1f} MB) from {folder}" in " ".join(done.stderr.split())


@pytest.mark.parametrize("into", DESTINATIONS)
def test_download_of_a_folder(
    into: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hf_cache: Path
) -> None:
    if into == "weights folder":
        monkeypatch.setenv("RDANCE_HOME", str(tmp_path / "w"))  # chosen by the environment this time
        root = tmp_path / "w"
    else:
        root = default_root(tmp_path, monkeypatch)
    with HubServer(DINOV2) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        done = rdance("weights", "download", "dinov2")
        assert done.returncode == 0, done.stderr
    folder = where_downloaded("dinov2", root, into, hf_cache)
    assert (folder / "model.safetensors").read_bytes() == DINOV2_FILES["model.safetensors"]
    assert not (folder / "README.md").exists()  # only the patterns the registry asks for
    assert f"downloaded dinov2: {folder}" in " ".join(done.stdout.split())


def test_download_progress_counts_each_byte_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the progress bars of `rdance weights download` are drawn from, seen in a real process."""
    script = (
        "import json, sys; from pathlib import Path; from realisdance_cli import weights\n"
        "seen = []\n"
        "for name in sys.argv[2:]:\n"
        "    weights.download(weights.get(name), Path(sys.argv[1]), lambda *report: seen.append(report))\n"
        "print(json.dumps(seen))\n"
    )
    with HubServer({**DWPOSE, **DINOV2}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        args = [sys.executable, "-c", script, str(tmp_path / "w"), "dwpose-pose", "dinov2"]
        done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    reports: dict[str, list[tuple[int, int | None]]] = {}
    for label, completed, total in json.loads(done.stdout):
        reports.setdefault(label, []).append((completed, total))
    pose = len(DWPOSE_FILES["dw-ll_ucoco_384.onnx"])
    folder = len(DINOV2_FILES["config.json"]) + len(DINOV2_FILES["model.safetensors"])  # not README.md
    assert {label: seen[-1] for label, seen in reports.items()} == {
        "dwpose-pose": (pose, pose),
        "dinov2": (folder, folder),
    }
    for seen in reports.values():
        counts = [completed for completed, _ in seen]
        assert counts == sorted(counts)


@pytest.mark.slow
def test_models_in_the_hugging_face_cache_are_used_where_they_lie(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hf_cache: Path
) -> None:
    from huggingface_hub import hf_hub_download, snapshot_download

    root = tmp_path / "w"
    with HubServer({**DWPOSE, **DINOV2}) as hub:
        # What diffusers, transformers or `hf download` leave behind: whole repositories in the cache.
        det = Path(hf_hub_download("yzd-v/DWPose", "yolox_l.onnx", cache_dir=hf_cache, endpoint=hub.url))
        dinov2 = Path(snapshot_download("facebook/dinov2-large", cache_dir=hf_cache, endpoint=hub.url))
        asked = len(hub.requests)
        assert weights.require("dwpose-det", root) == det
        assert weights.require_all(["dinov2"], root) == {"dinov2": dinov2}
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        offline = {"HF_HUB_OFFLINE": "1"}
        done = rdance("weights", "download", "dwpose-det", "dinov2", "--weights", root, env=offline)
        code, lines = check(root, "dwpose-det", "dinov2")
        assert len(hub.requests) == asked  # nothing was asked of the hub
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "present dwpose-det" in text and "present dinov2" in text
    assert code == 0, lines
    assert str(det) in lines["dwpose-det"] and str(dinov2) in lines["dinov2"]
    assert not root.exists()  # used where it lies, nothing copied
    found = weights.status(weights.get("dwpose-det"), root)
    assert found.ok and found.in_cache and found.place == "Hugging Face cache"
    # A whole copy in the weights folder comes first; a damaged one does not hide the cache's.
    copy = tiny_onnx(root / weights.get("dwpose-det").path)
    assert weights.require("dwpose-det", root) == copy
    assert weights.status(weights.get("dwpose-det"), root).place == "weights folder"
    truncate(copy, copy.stat().st_size // 2)
    assert weights.status(weights.get("dwpose-det"), root).path == det


@pytest.mark.slow
def test_a_damaged_file_in_the_cache_is_named_by_its_blob_and_fetched_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hf_cache: Path
) -> None:
    from huggingface_hub import hf_hub_download

    root = default_root(tmp_path, monkeypatch)
    files = {name: onnx_bytes(np.full((3, 100 + len(name)), 0.5, np.float32)) for name in DWPOSE_FILES}
    with HubServer({("yzd-v/DWPose", "main"): files}) as hub:
        link = Path(hf_hub_download("yzd-v/DWPose", "yolox_l.onnx", cache_dir=hf_cache, endpoint=hub.url))
        blob = link.resolve()
        assert blob != link and blob.is_relative_to(hf_cache)
        truncate(blob, blob.stat().st_size // 2)
        code, lines = check(root, "dwpose-det")
        assert code == 1
        assert f"delete {blob}, then run `rdance weights download dwpose`" in lines["dwpose-det"]
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        done = rdance("weights", "download", "dwpose-det")  # into the cache, over the damaged blob
    assert done.returncode == 0, done.stderr
    assert link.read_bytes() == files["yolox_l.onnx"]
    assert not root.exists()


@pytest.mark.parametrize("into", DESTINATIONS)
def test_a_folder_cut_short_fetches_only_what_it_lacks(
    into: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hf_cache: Path
) -> None:
    """A sharded folder whose second shard a kill left out: the next run fetches that shard alone
    (it fetched the whole folder again: tens of GB for RealisDance-DiT)."""
    root, choose = destination(into, tmp_path, monkeypatch)
    shards = {
        f"model-0000{index}-of-00002.safetensors": save({f"w{index}": torch.full((50, 40), float(index))})
        for index in (1, 2)
    }
    index = {"metadata": {}, "weight_map": {"w1": next(iter(shards)), "w2": list(shards)[1]}}
    files = {"config.json": b'{"model_type": "dinov2"}', **shards}
    files["model.safetensors.index.json"] = json.dumps(index).encode()
    with HubServer({("facebook/dinov2-large", "main"): files}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        assert rdance("weights", "download", "dinov2", *choose).returncode == 0
        folder = where_downloaded("dinov2", root, into, hf_cache)
        (folder / "model-00002-of-00002.safetensors").resolve().unlink()
        assert not weights.status(weights.get("dinov2"), root).ok
        again = rdance("weights", "download", "dinov2", *choose)
        assert again.returncode == 0, again.stderr
        assert [len(transfers(hub, name)) for name in files] == [1, 1, 2, 1]
    assert (folder / "model-00002-of-00002.safetensors").read_bytes() == shards[
        "model-00002-of-00002.safetensors"
    ]


@pytest.mark.parametrize("into", DESTINATIONS)
def test_bytes_other_than_the_hub_announced_are_refused_and_removed(
    into: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hf_cache: Path
) -> None:
    """A file that arrives with a changed byte under its true size and ETag: refused and removed,
    so the next run fetches it again (in the Hugging Face cache it was kept, and `weights check
    --hash` said ok); a folder's files are held to the hub's sha256 too."""
    root, choose = destination(into, tmp_path, monkeypatch)
    with HubServer({**DWPOSE, **DINOV2}, spoiled=frozenset({"yolox_l.onnx", "model.safetensors"})) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        for name in ("dwpose-det", "dinov2"):
            done = rdance("weights", "download", name, *choose)
            assert_user_error(done, "sha256")
            assert not weights.status(weights.get(name), root).ok, name  # the spoiled file is gone
        hub.spoiled = frozenset()
        assert rdance("weights", "download", "dwpose-det", "dinov2", *choose).returncode == 0
    code, lines = check(root, "dwpose-det", "dinov2", hashes=True)
    assert code == 0, lines
    where_downloaded("dinov2", root, into, hf_cache)


def test_a_cached_file_with_other_bytes_fails_the_hash_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hf_cache: Path
) -> None:
    from huggingface_hub import hf_hub_download

    root = default_root(tmp_path, monkeypatch)
    with HubServer(DWPOSE) as hub:
        link = Path(hf_hub_download("yzd-v/DWPose", "yolox_l.onnx", cache_dir=hf_cache, endpoint=hub.url))
    blob = link.resolve()
    data = bytearray(blob.read_bytes())
    data[-1] ^= 1
    blob.write_bytes(bytes(data))
    assert check(root, "dwpose-det")[0] == 0  # whole to the structural check
    code, lines = check(root, "dwpose-det", hashes=True)
    assert code == 1 and f"delete {blob}" in lines["dwpose-det"]


def test_download_replaces_a_truncated_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = {name: onnx_bytes(np.full((3, 100 + len(name)), 0.5, np.float32)) for name in DWPOSE_FILES}
    target = tmp_path / "w" / "dwpose"
    target.mkdir(parents=True)
    (target / "yolox_l.onnx").write_bytes(files["yolox_l.onnx"][:-30])  # a copy cut short
    (target / "dw-ll_ucoco_384.onnx").write_bytes(files["dw-ll_ucoco_384.onnx"])
    with HubServer({("yzd-v/DWPose", "main"): files}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        done = rdance("weights", "download", "dwpose", "--weights", tmp_path / "w")
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "downloaded dwpose-det" in text and "present dwpose-pose" in text
    assert (target / "yolox_l.onnx").read_bytes() == files["yolox_l.onnx"]


@pytest.mark.slow
def test_hub_failures_are_one_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with HubServer({}) as hub:  # a hub that knows no repository
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        done = rdance("weights", "download", "dwpose-det", "--weights", tmp_path / "w")
        assert_user_error(  # a file the hub does not have: trying again would not help
            done,
            "hf://yzd-v/DWPose/yolox_l.onnx@main has no dwpose-det at the pinned revision (404",
            "fetch it by hand into",
        )
    # Nothing listens there any more.
    done = rdance("weights", "download", "dinov2", "--weights", tmp_path / "w")
    assert_user_error(
        done, "downloading dinov2 from hf://", "Connection refused", "run the command again to continue."
    )


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (it was free a moment ago)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("into", DESTINATIONS)
def test_a_hub_that_cannot_be_reached_fails_at_once(
    into: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connection refused: one sentence within seconds, where huggingface_hub's retries of a file's
    first request took about 24 s."""
    _, choose = destination(into, tmp_path, monkeypatch)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    started = time.monotonic()
    done = rdance("weights", "download", "dwpose-det", *choose)
    took = time.monotonic() - started
    assert_user_error(
        done,
        "downloading dwpose-det from hf://yzd-v/DWPose/yolox_l.onnx@main failed",
        "Connection refused",
        "run the command again to continue.",
    )
    assert took < 10, f"{took:.1f} s"


def test_offline_mode_is_a_clear_error(tmp_path: Path) -> None:
    done = rdance(
        "weights", "download", "dwpose-det", "--weights", tmp_path / "w", env={"HF_HUB_OFFLINE": "1"}
    )
    assert_user_error(done, "dwpose-det", "nor in the Hugging Face cache", "HF_HUB_OFFLINE")


def test_licence_gated_files_print_instructions(tmp_path: Path) -> None:
    done = rdance("weights", "download", "mano", "smplx", "--weights", tmp_path)
    assert done.returncode == 1
    text = " ".join(done.stderr.split())
    assert "https://mano.is.tue.mpg.de" in text and "https://smpl-x.is.tue.mpg.de" in text
    assert str(tmp_path / "mano" / "MANO_RIGHT.pkl") in text
