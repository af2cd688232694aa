"""The video feature networks of `rdance eval`, I3D for FVD and the 3-D ResNet-50 for FID-VID: every
key and shape of their released files, their features equal to DisCo's evaluation (its vendored
pytorch-i3d and 3D-ResNets modules behind its Pillow resize) on seeded random weights, the
releases' formats loaded, files that do not fit refused by name, and clips of the sizes
`rdance eval` passes."""

from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from torch import nn

from realisdance_cli import weights
from realisdance_cli.errors import UserError
from realisdance_cli.evaluation.i3d import I3D, load_i3d
from realisdance_cli.evaluation.resnet3d import ResNet3D50, load_resnet3d
from realisdance_cli.evaluation.video_layers import FrozenBatchNorm3d, resize_frames

Network = TypeVar("Network", bound=nn.Module)

# Every unit (SAME padding, convolution without bias, batch norm) of DisCo's InceptionI3d(400,
# in_channels=3) (tool/metrics/inception3d.py, piergiaj's pytorch-i3d), as its state dict names
# them: name, out, in, cubic kernel. VideoGPT's i3d_pretrained_400.pt holds these, each with
# `conv3d.weight` and `bn.weight/bias/running_mean/running_var`, plus the classifier below.
I3D_UNITS = """
Conv3d_1a_7x7   64   3    7
Conv3d_2b_1x1   64   64   1
Conv3d_2c_3x3   192  64   3
Mixed_3b.b0     64   192  1
Mixed_3b.b1a    96   192  1
Mixed_3b.b1b    128  96   3
Mixed_3b.b2a    16   192  1
Mixed_3b.b2b    32   16   3
Mixed_3b.b3b    32   192  1
Mixed_3c.b0     128  256  1
Mixed_3c.b1a    128  256  1
Mixed_3c.b1b    192  128  3
Mixed_3c.b2a    32   256  1
Mixed_3c.b2b    96   32   3
Mixed_3c.b3b    64   256  1
Mixed_4b.b0     192  480  1
Mixed_4b.b1a    96   480  1
Mixed_4b.b1b    208  96   3
Mixed_4b.b2a    16   480  1
Mixed_4b.b2b    48   16   3
Mixed_4b.b3b    64   480  1
Mixed_4c.b0     160  512  1
Mixed_4c.b1a    112  512  1
Mixed_4c.b1b    224  112  3
Mixed_4c.b2a    24   512  1
Mixed_4c.b2b    64   24   3
Mixed_4c.b3b    64   512  1
Mixed_4d.b0     128  512  1
Mixed_4d.b1a    128  512  1
Mixed_4d.b1b    256  128  3
Mixed_4d.b2a    24   512  1
Mixed_4d.b2b    64   24   3
Mixed_4d.b3b    64   512  1
Mixed_4e.b0     112  512  1
Mixed_4e.b1a    144  512  1
Mixed_4e.b1b    288  144  3
Mixed_4e.b2a    32   512  1
Mixed_4e.b2b    64   32   3
Mixed_4e.b3b    64   512  1
Mixed_4f.b0     256  528  1
Mixed_4f.b1a    160  528  1
Mixed_4f.b1b    320  160  3
Mixed_4f.b2a    32   528  1
Mixed_4f.b2b    128  32   3
Mixed_4f.b3b    128  528  1
Mixed_5b.b0     256  832  1
Mixed_5b.b1a    160  832  1
Mixed_5b.b1b    320  160  3
Mixed_5b.b2a    32   832  1
Mixed_5b.b2b    128  32   3
Mixed_5b.b3b    128  832  1
Mixed_5c.b0     384  832  1
Mixed_5c.b1a    192  832  1
Mixed_5c.b1b    384  192  3
Mixed_5c.b2a    48   832  1
Mixed_5c.b2b    128  48   3
Mixed_5c.b3b    128  832  1
"""
I3D_LOGITS = {"logits.conv3d.weight": (400, 1024, 1, 1, 1), "logits.conv3d.bias": (400,)}
I3D_PARAMETERS = 12_711_824  # every number of the release (running statistics included)

# Every convolution of DisCo's resnet3d.resnet50(shortcut_type="B", sample_size=112,
# sample_duration=16) (tool/metrics/resnet3d.py, kenshohara's 2017 models/resnet.py) in state-dict
# order: name, out, in, cubic kernel. Each is followed by its batch norm (conv1 -> bn1,
# layerL.B.convN -> layerL.B.bnN, downsample.0 -> downsample.1), and the classifier comes last.
# resnet-50-kinetics.pth holds exactly these under `state_dict`, each key prefixed `module.`.
RESNET_CONVS = """
conv1                  64   3    7
layer1.0.conv1         64   64   1
layer1.0.conv2         64   64   3
layer1.0.conv3         256  64   1
layer1.0.downsample.0  256  64   1
layer1.1.conv1         64   256  1
layer1.1.conv2         64   64   3
layer1.1.conv3         256  64   1
layer1.2.conv1         64   256  1
layer1.2.conv2         64   64   3
layer1.2.conv3         256  64   1
layer2.0.conv1         128  256  1
layer2.0.conv2         128  128  3
layer2.0.conv3         512  128  1
layer2.0.downsample.0  512  256  1
layer2.1.conv1         128  512  1
layer2.1.conv2         128  128  3
layer2.1.conv3         512  128  1
layer2.2.conv1         128  512  1
layer2.2.conv2         128  128  3
layer2.2.conv3         512  128  1
layer2.3.conv1         128  512  1
layer2.3.conv2         128  128  3
layer2.3.conv3         512  128  1
layer3.0.conv1         256  512  1
layer3.0.conv2         256  256  3
layer3.0.conv3         1024 256  1
layer3.0.downsample.0  1024 512  1
layer3.1.conv1         256  1024 1
layer3.1.conv2         256  256  3
layer3.1.conv3         1024 256  1
layer3.2.conv1         256  1024 1
layer3.2.conv2         256  256  3
layer3.2.conv3         1024 256  1
layer3.3.conv1         256  1024 1
layer3.3.conv2         256  256  3
layer3.3.conv3         1024 256  1
layer3.4.conv1         256  1024 1
layer3.4.conv2         256  256  3
layer3.4.conv3         1024 256  1
layer3.5.conv1         256  1024 1
layer3.5.conv2         256  256  3
layer3.5.conv3         1024 256  1
layer4.0.conv1         512  1024 1
layer4.0.conv2         512  512  3
layer4.0.conv3         2048 512  1
layer4.0.downsample.0  2048 1024 1
layer4.1.conv1         512  2048 1
layer4.1.conv2         512  512  3
layer4.1.conv3         2048 512  1
layer4.2.conv1         512  2048 1
layer4.2.conv2         512  512  3
layer4.2.conv3         2048 512  1
"""
RESNET_CLASSIFIER = {"fc.weight": (400, 2048), "fc.bias": (400,)}
RESNET_PARAMETERS = 47_071_696

# DisCo's features for the seeded weights and clips below: its InceptionI3d and resnet50 (from
# Wangt-CN/DisCo c4fa48a, torch 2.13 CPU) loaded with `seeded_state`, fed the clips as its
# DatasetFVDVideoResize prepares them (cleanfid's Pillow float bicubic resize per channel to 224
# or 112, then `/ 127.5 - 1` or `- pixel_mean`). Rows are the two clips.
I3D_REFERENCE = {
    (0, 0): 2.5514748096466064, (0, 1): 2.0009610652923584, (0, 2): -6.339809417724609,
    (0, 3): 3.259810447692871, (0, 398): -0.8314163684844971, (0, 399): 1.3504270315170288,
    (1, 0): 2.503960132598877, (1, 1): 1.9948654174804688, (1, 2): -6.479693412780762,
    (1, 3): 3.288149356842041, (1, 398): -0.7783149480819702, (1, 399): 1.3257864713668823,
}  # fmt: skip
I3D_REFERENCE_SUMS = (-70.44920029491186, -72.96104442328215)
I3D_REFERENCE_NORMS = (50.79306596524004, 51.01791065394303)
RESNET_REFERENCE = {
    (0, 0): 20144.69921875, (0, 1): 961.2420654296875, (0, 2): 5225.82568359375,
    (0, 3): 5488.9580078125, (0, 2046): 6949.1865234375, (0, 2047): 11113.203125,
    (1, 0): 19701.85546875, (1, 1): 1037.7388916015625, (1, 2): 5289.490234375,
    (1, 3): 5469.392578125, (1, 2046): 6485.4453125, (1, 2047): 11114.888671875,
}  # fmt: skip
RESNET_REFERENCE_SUMS = (33312671.19142914, 33128776.671239853)
RESNET_REFERENCE_NORMS = (996608.2039715153, 991719.9927050216)
RELATIVE = 1e-5  # for features: float32 round-off, and the resize difference below carried through
# Pillow's float bicubic and torch's antialiased one differ in the last bits of their weights: by up
# to 1.7e-5 of the value range in the sizes tried (1.1e-5 here).
RESIZE_TOLERANCE = 3e-5


def i3d_release() -> dict[str, tuple[int, ...]]:
    """Key -> shape of i3d_pretrained_400.pt (a dict built from TensorFlow's variables, in their
    order, which is not torch's: compared as a mapping)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for line in I3D_UNITS.strip().splitlines():
        name, out, inputs, kernel = line.split()
        k = int(kernel)
        shapes[f"{name}.conv3d.weight"] = (int(out), int(inputs), k, k, k)
        for part in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.bn.{part}"] = (int(out),)
    return {**shapes, **I3D_LOGITS}


def resnet_release() -> dict[str, tuple[int, ...]]:
    """Key -> shape of resnet-50-kinetics.pth's state dict without `module.`, in order."""
    shapes: dict[str, tuple[int, ...]] = {}
    for line in RESNET_CONVS.strip().splitlines():
        name, out, inputs, kernel = line.split()
        k = int(kernel)
        shapes[f"{name}.weight"] = (int(out), int(inputs), k, k, k)
        norm = name[:-1] + "1" if name.endswith("downsample.0") else name.replace("conv", "bn")
        for part in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{norm}.{part}"] = (int(out),)
    return {**shapes, **RESNET_CLASSIFIER}


def shapes_of(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in module.state_dict().items()}


def seeded_state(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, torch.Tensor]:
    """Random weights drawn key by key in sorted order (so any implementation with these names
    gets the same ones): He-scaled kernels, batch norms near identity, small biases."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key in sorted(shapes):
        shape = shapes[key]
        if len(shape) > 1:
            state[key] = torch.randn(shape, generator=generator) * (2 / math.prod(shape[1:])) ** 0.5
        elif key.endswith(("running_var", ".weight")):
            state[key] = torch.rand(shape, generator=generator) * 0.4 + 0.8
        else:
            state[key] = torch.rand(shape, generator=generator) * 0.1 - 0.05
    return state


def seeded(model: Network, seed: int) -> Network:
    model.load_state_dict(seeded_state(shapes_of(model), seed), assign=True)
    return model.eval()


def clips(seed: int, *shape: int) -> torch.Tensor:
    """Clips (N, 3, T, H, W) in [0, 1] from 8-bit frames (N, T, H, W, 3), as videos decode."""
    generator = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
    return frames.permute(0, 4, 1, 2, 3).float() / 255


def sparse_copy(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """Zeros of these shapes stored as broadcast views: a file of the right keys that stays tiny."""
    return {key: torch.zeros(1).expand(shape) for key, shape in shapes.items()}


def resnet_checkpoint(state: dict[str, torch.Tensor], path: Path) -> Path:
    """A file like the 2017 release: a training checkpoint in torch's legacy format, the weights
    under `state_dict` with DataParallel's prefix, beside the epoch, architecture and SGD state."""
    checkpoint = {
        "epoch": 200,
        "arch": "resnet-50",
        "state_dict": OrderedDict((f"module.{key}", value) for key, value in state.items()),
        "optimizer": {
            "state": {140000000000: {"momentum_buffer": torch.zeros(64)}},
            "param_groups": [
                {
                    "lr": 0.1,
                    "momentum": 0.9,
                    "dampening": 0.9,
                    "weight_decay": 1e-3,
                    "nesterov": False,
                    "params": [1],
                }
            ],
        },
    }
    torch.save(checkpoint, path, _use_new_zipfile_serialization=False)
    return path


@pytest.fixture(scope="module")
def i3d() -> I3D:
    with torch.device("meta"):
        model = I3D()
    return seeded(model, seed=7)


@pytest.fixture(scope="module")
def resnet() -> ResNet3D50:
    with torch.device("meta"):
        model = ResNet3D50()
    return seeded(model, seed=9)


# The structure, key for key.


def test_i3d_has_every_key_and_shape_of_the_release() -> None:
    model = I3D()
    assert shapes_of(model) == i3d_release()
    assert len(model.state_dict()) == 57 * 5 + 2  # no batch-norm counters: the release has none
    assert sum(value.numel() for value in model.state_dict().values()) == I3D_PARAMETERS
    norms = [layer for layer in model.modules() if isinstance(layer, FrozenBatchNorm3d)]
    assert len(norms) == 57 and all(layer.eps == 1e-3 for layer in norms)  # TensorFlow's eps


def test_resnet3d_has_every_key_and_shape_of_the_release() -> None:
    model = ResNet3D50()
    assert list(shapes_of(model).items()) == list(resnet_release().items())  # in the release's order
    assert len(model.state_dict()) == 53 * 5 + 2
    assert sum(value.numel() for value in model.state_dict().values()) == RESNET_PARAMETERS
    norms = [layer for layer in model.modules() if isinstance(layer, FrozenBatchNorm3d)]
    assert len(norms) == 53 and all(layer.eps == 1e-5 for layer in norms)  # torch's default


# The features, equal to DisCo's.


def test_frames_are_resized_as_discos_pillow_bicubic() -> None:
    """DisCo resizes each channel of each frame as a float Pillow image with its bicubic filter
    (widened when shrinking); ours matches it, enlarging and shrinking."""
    video = clips(1, 1, 2, 90, 160, 3)
    for size in (224, 112, 64):
        ours = resize_frames(video, size)[0].numpy()
        for t in range(2):
            for c in range(3):
                channel = Image.fromarray(video[0, c, t].numpy())  # float32: a mode "F" image
                pillow = np.asarray(channel.resize((size, size), resample=Image.Resampling.BICUBIC))
                assert np.abs(ours[c, t] - pillow).max() < RESIZE_TOLERANCE, (size, t, c)
    same = clips(2, 1, 1, 112, 112, 3)
    assert torch.allclose(resize_frames(same, 112), same, atol=1e-6)  # a frame of the size is kept


def test_i3d_features_equal_discos(i3d: I3D) -> None:
    with torch.no_grad():
        features = i3d(clips(8, 2, 16, 64, 48, 3))
    assert features.shape == (2, 400)
    scale = max(abs(value) for value in I3D_REFERENCE.values())
    for (row, column), value in I3D_REFERENCE.items():
        assert features[row, column].item() == pytest.approx(value, rel=RELATIVE, abs=RELATIVE * scale)
    assert features.double().sum(1).tolist() == pytest.approx(I3D_REFERENCE_SUMS, rel=RELATIVE)
    assert features.double().norm(dim=1).tolist() == pytest.approx(I3D_REFERENCE_NORMS, rel=RELATIVE)


def test_resnet3d_features_equal_discos(resnet: ResNet3D50) -> None:
    with torch.no_grad():
        features = resnet(clips(10, 2, 16, 64, 48, 3))
    assert features.shape == (2, 2048)
    for (row, column), value in RESNET_REFERENCE.items():
        assert features[row, column].item() == pytest.approx(value, rel=RELATIVE)
    assert features.double().sum(1).tolist() == pytest.approx(RESNET_REFERENCE_SUMS, rel=RELATIVE)
    assert features.double().norm(dim=1).tolist() == pytest.approx(RESNET_REFERENCE_NORMS, rel=RELATIVE)


# Loading: the releases' formats, and files that do not fit.


def test_i3d_release_and_a_safetensors_copy_load(i3d: I3D, tmp_path: Path) -> None:
    state = OrderedDict(i3d.state_dict())
    release = tmp_path / "i3d_pretrained_400.pt"
    torch.save(state, release)  # as VideoGPT's converter saved it: a plain OrderedDict
    copy = tmp_path / "i3d.safetensors"
    save_file(dict(state), copy)
    for loaded in (load_i3d(release), load_i3d(copy)):
        assert not loaded.training
        assert loaded.state_dict().keys() == state.keys()
        assert all(torch.equal(loaded.state_dict()[key], value) for key, value in state.items())


def test_resnet3d_release_checkpoint_loads(resnet: ResNet3D50, tmp_path: Path) -> None:
    state = resnet.state_dict()
    loaded = load_resnet3d(resnet_checkpoint(dict(state), tmp_path / "resnet-50-kinetics.pth"))
    assert not loaded.training
    assert loaded.state_dict().keys() == state.keys()
    assert all(torch.equal(loaded.state_dict()[key], value) for key, value in state.items())
    # A plain state dict, prefixed or not, is read the same way.
    for index, prefix in enumerate(("", "module.")):
        plain = tmp_path / f"plain{index}.pth"
        torch.save({f"{prefix}{key}": value for key, value in sparse_copy(resnet_release()).items()}, plain)
        assert not load_resnet3d(plain).state_dict()["fc.bias"].any()


def test_wrong_i3d_files_are_refused_by_name(tmp_path: Path) -> None:
    state = sparse_copy(i3d_release())
    state["Mixed_5c.b3b.conv3d.kernel"] = state.pop("Mixed_5c.b3b.conv3d.weight")
    state["Conv3d_1a_7x7.bn.num_batches_tracked"] = torch.tensor(0)  # a torch BatchNorm's counter
    torch.save(state, tmp_path / "renamed.pt")
    with pytest.raises(UserError) as caught:
        load_i3d(tmp_path / "renamed.pt")
    message = str(caught.value)
    assert "is not the FVD I3D network (i3d_pretrained_400.pt)" in message
    assert "1 missing keys (Mixed_5c.b3b.conv3d.weight)" in message
    assert "2 unexpected keys (Conv3d_1a_7x7.bn.num_batches_tracked, Mixed_5c.b3b.conv3d.kernel)" in message
    assert len(message.splitlines()) == 1
    kinetics_600 = {"logits.conv3d.weight": (600, 1024, 1, 1, 1), "logits.conv3d.bias": (600,)}
    torch.save(sparse_copy({**i3d_release(), **kinetics_600}), tmp_path / "i3d_600.pt")
    with pytest.raises(UserError, match=r"size mismatch for logits\.conv3d\.bias: .*\[600\]"):
        load_i3d(tmp_path / "i3d_600.pt")


def test_wrong_resnet3d_files_are_refused_by_name(tmp_path: Path) -> None:
    state = sparse_copy(resnet_release())
    del state["layer4.0.downsample.0.weight"]  # as in a shortcut-A network
    with pytest.raises(UserError) as caught:
        load_resnet3d(resnet_checkpoint(state, tmp_path / "shortcut_a.pth"))
    message = str(caught.value)
    assert "is not the FID-VID 3-D ResNet-50 (resnet-50-kinetics.pth)" in message
    assert "1 missing keys (layer4.0.downsample.0.weight)" in message
    assert len(message.splitlines()) == 1
    state = sparse_copy({**resnet_release(), "fc.weight": (700, 2048), "fc.bias": (700,)})  # Kinetics-700
    with pytest.raises(UserError, match=r"size mismatch for fc\.bias: .*\[700\]"):
        load_resnet3d(resnet_checkpoint(state, tmp_path / "k700.pth"))
    torch.save([torch.zeros(3)], tmp_path / "list.pth")
    with pytest.raises(UserError, match="holds neither a checkpoint with a state dict nor a state dict"):
        load_resnet3d(tmp_path / "list.pth")


# Clips as `rdance eval` passes them: 16 frames at the protocol's size.


def test_clips_of_any_frame_size_give_the_features(i3d: I3D, resnet: ResNet3D50) -> None:
    with torch.no_grad():
        logits = i3d(clips(3, 1, 16, 256, 256, 3))
        pooled = resnet(clips(4, 2, 16, 256, 256, 3))
        narrow = resnet(clips(5, 1, 16, 90, 160, 3))
    assert logits.shape == (1, 400) and torch.isfinite(logits).all()
    assert pooled.shape == (2, 2048) and narrow.shape == (1, 2048)
    assert (pooled >= 0).all() and (narrow >= 0).all()  # means of ReLUs
    assert not torch.allclose(pooled[0], pooled[1])  # different clips, different features
    with pytest.raises(ValueError, match=r"expected clips \(N, 3, 16, H, W\), got \(1, 3, 8, 64, 64\)"):
        resnet(torch.zeros(1, 3, 8, 64, 64))  # its pooling was built for 16 frames
    with pytest.raises(ValueError, match=r"expected clips \(N, 3, T, H, W\), got \(1, 16, 3, 64, 64\)"):
        i3d(torch.zeros(1, 16, 3, 64, 64))


# The registry.


def test_the_video_networks_are_registered_with_the_evaluation_weights() -> None:
    entries = {entry.name: entry for entry in weights.REGISTRY if entry.group == "eval"}
    assert {"i3d", "resnet3d-50"} <= set(entries)
    assert not {entry.name for entry in weights.select()} & {"i3d", "resnet3d-50"}  # optional
    for name, release in (("i3d", "i3d_pretrained_400.pt"), ("resnet3d-50", "resnet-50-kinetics.pth")):
        source = entries[name].source
        assert isinstance(source, weights.HubFile) and len(source.revision) == 40, name
        assert source.filename == f"eval_fvd/{release}"  # DisCo's folder and names
    assert entries["i3d"].sha256 == "55095f049e706479d48e221adcdb145b2b9dc930ba28b081ed72367ffaa32343"
