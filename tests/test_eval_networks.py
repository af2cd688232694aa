"""The evaluation feature networks, FID's InceptionV3 and LPIPS (VGG), with random weights of the
exact structure of their released files: every key and shape, loading through our loaders, keys
that do not fit refused by name, and what the metrics rely on (pool3 features of any frame size,
LPIPS zero for identical frames, symmetric, positive otherwise, the ScalingLayer's constants)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from realisdance_cli import weights
from realisdance_cli.errors import UserError
from realisdance_cli.evaluation import lpips
from realisdance_cli.evaluation.inception import FidInception, load_fid_inception
from realisdance_cli.evaluation.lpips import LPIPS, load_lpips, scaling_layer

# Every convolution of pytorch-fid's FID Inception (torchvision's Inception3 with 1008 classes, no
# auxiliary head, the FID blocks swapped in), in state-dict order: name, out, in, kernel h, kernel w.
# Taken from the state dict of that network as pytorch-fid 0.3.0 builds it on torchvision 0.28.
INCEPTION_CONVS = """
Conv2d_1a_3x3             32   3     3  3
Conv2d_2a_3x3             32   32    3  3
Conv2d_2b_3x3             64   32    3  3
Conv2d_3b_1x1             80   64    1  1
Conv2d_4a_3x3             192  80    3  3
Mixed_5b.branch1x1        64   192   1  1
Mixed_5b.branch5x5_1      48   192   1  1
Mixed_5b.branch5x5_2      64   48    5  5
Mixed_5b.branch3x3dbl_1   64   192   1  1
Mixed_5b.branch3x3dbl_2   96   64    3  3
Mixed_5b.branch3x3dbl_3   96   96    3  3
Mixed_5b.branch_pool      32   192   1  1
Mixed_5c.branch1x1        64   256   1  1
Mixed_5c.branch5x5_1      48   256   1  1
Mixed_5c.branch5x5_2      64   48    5  5
Mixed_5c.branch3x3dbl_1   64   256   1  1
Mixed_5c.branch3x3dbl_2   96   64    3  3
Mixed_5c.branch3x3dbl_3   96   96    3  3
Mixed_5c.branch_pool      64   256   1  1
Mixed_5d.branch1x1        64   288   1  1
Mixed_5d.branch5x5_1      48   288   1  1
Mixed_5d.branch5x5_2      64   48    5  5
Mixed_5d.branch3x3dbl_1   64   288   1  1
Mixed_5d.branch3x3dbl_2   96   64    3  3
Mixed_5d.branch3x3dbl_3   96   96    3  3
Mixed_5d.branch_pool      64   288   1  1
Mixed_6a.branch3x3        384  288   3  3
Mixed_6a.branch3x3dbl_1   64   288   1  1
Mixed_6a.branch3x3dbl_2   96   64    3  3
Mixed_6a.branch3x3dbl_3   96   96    3  3
Mixed_6b.branch1x1        192  768   1  1
Mixed_6b.branch7x7_1      128  768   1  1
Mixed_6b.branch7x7_2      128  128   1  7
Mixed_6b.branch7x7_3      192  128   7  1
Mixed_6b.branch7x7dbl_1   128  768   1  1
Mixed_6b.branch7x7dbl_2   128  128   7  1
Mixed_6b.branch7x7dbl_3   128  128   1  7
Mixed_6b.branch7x7dbl_4   128  128   7  1
Mixed_6b.branch7x7dbl_5   192  128   1  7
Mixed_6b.branch_pool      192  768   1  1
Mixed_6c.branch1x1        192  768   1  1
Mixed_6c.branch7x7_1      160  768   1  1
Mixed_6c.branch7x7_2      160  160   1  7
Mixed_6c.branch7x7_3      192  160   7  1
Mixed_6c.branch7x7dbl_1   160  768   1  1
Mixed_6c.branch7x7dbl_2   160  160   7  1
Mixed_6c.branch7x7dbl_3   160  160   1  7
Mixed_6c.branch7x7dbl_4   160  160   7  1
Mixed_6c.branch7x7dbl_5   192  160   1  7
Mixed_6c.branch_pool      192  768   1  1
Mixed_6d.branch1x1        192  768   1  1
Mixed_6d.branch7x7_1      160  768   1  1
Mixed_6d.branch7x7_2      160  160   1  7
Mixed_6d.branch7x7_3      192  160   7  1
Mixed_6d.branch7x7dbl_1   160  768   1  1
Mixed_6d.branch7x7dbl_2   160  160   7  1
Mixed_6d.branch7x7dbl_3   160  160   1  7
Mixed_6d.branch7x7dbl_4   160  160   7  1
Mixed_6d.branch7x7dbl_5   192  160   1  7
Mixed_6d.branch_pool      192  768   1  1
Mixed_6e.branch1x1        192  768   1  1
Mixed_6e.branch7x7_1      192  768   1  1
Mixed_6e.branch7x7_2      192  192   1  7
Mixed_6e.branch7x7_3      192  192   7  1
Mixed_6e.branch7x7dbl_1   192  768   1  1
Mixed_6e.branch7x7dbl_2   192  192   7  1
Mixed_6e.branch7x7dbl_3   192  192   1  7
Mixed_6e.branch7x7dbl_4   192  192   7  1
Mixed_6e.branch7x7dbl_5   192  192   1  7
Mixed_6e.branch_pool      192  768   1  1
Mixed_7a.branch3x3_1      192  768   1  1
Mixed_7a.branch3x3_2      320  192   3  3
Mixed_7a.branch7x7x3_1    192  768   1  1
Mixed_7a.branch7x7x3_2    192  192   1  7
Mixed_7a.branch7x7x3_3    192  192   7  1
Mixed_7a.branch7x7x3_4    192  192   3  3
Mixed_7b.branch1x1        320  1280  1  1
Mixed_7b.branch3x3_1      384  1280  1  1
Mixed_7b.branch3x3_2a     384  384   1  3
Mixed_7b.branch3x3_2b     384  384   3  1
Mixed_7b.branch3x3dbl_1   448  1280  1  1
Mixed_7b.branch3x3dbl_2   384  448   3  3
Mixed_7b.branch3x3dbl_3a  384  384   1  3
Mixed_7b.branch3x3dbl_3b  384  384   3  1
Mixed_7b.branch_pool      192  1280  1  1
Mixed_7c.branch1x1        320  2048  1  1
Mixed_7c.branch3x3_1      384  2048  1  1
Mixed_7c.branch3x3_2a     384  384   1  3
Mixed_7c.branch3x3_2b     384  384   3  1
Mixed_7c.branch3x3dbl_1   448  2048  1  1
Mixed_7c.branch3x3dbl_2   384  448   3  3
Mixed_7c.branch3x3dbl_3a  384  384   1  3
Mixed_7c.branch3x3dbl_3b  384  384   3  1
Mixed_7c.branch_pool      192  2048  1  1
"""
INCEPTION_CLASSES = 1008
INCEPTION_PARAMETERS = 23_850_960  # counted on that reference network
# torchvision's vgg16-397923af.pth: the 13 convolutions of `features` (index, out, in; 3x3 kernels)
# and the ImageNet classifier that LPIPS does not use.
VGG16_CONVS = (
    (0, 64, 3), (2, 64, 64), (5, 128, 64), (7, 128, 128), (10, 256, 128), (12, 256, 256), (14, 256, 256),
    (17, 512, 256), (19, 512, 512), (21, 512, 512), (24, 512, 512), (26, 512, 512), (28, 512, 512),
)  # fmt: skip
VGG16_CLASSIFIER = {
    "classifier.0.weight": (4096, 25088), "classifier.0.bias": (4096,),
    "classifier.3.weight": (4096, 4096), "classifier.3.bias": (4096,),
    "classifier.6.weight": (1000, 4096), "classifier.6.bias": (1000,),
}  # fmt: skip
VGG16_FEATURE_PARAMETERS = 14_714_688
# The lpips package's weights/v0.1/vgg.pth (read from the package): one 1x1 head per tapped layer.
LPIPS_HEADS = {f"lin{i}.model.1.weight": (1, c, 1, 1) for i, c in enumerate((64, 128, 256, 512, 512))}


# Reference outputs: the seeded random weights of the fixtures below, loaded into pytorch-fid
# 0.3.0's InceptionV3 (on torchvision 0.28) and into the lpips 0.1.4 package, on the same frames.
REFERENCE_FEATURES = {(0, 0): 0.306734, (0, 1000): 1.322288, (0, 2047): 1.038303}
REFERENCE_FEATURES |= {(1, 0): 0.317609, (1, 1000): 1.252158, (1, 2047): 1.048331}
REFERENCE_FEATURE_SUMS = (827.92499, 828.07678)
REFERENCE_LPIPS = (0.16941372, 0.16825402)


def inception_release() -> dict[str, tuple[int, ...]]:
    """Key -> shape of pt_inception-2015-12-05-6726825d.pth, in order (its batch norms keep their
    `num_batches_tracked` counters: its pickle refers to torch.LongStorage, which nothing else in
    it would need)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for line in INCEPTION_CONVS.strip().splitlines():
        name, *dims = line.split()
        out, inputs, height, width = map(int, dims)
        shapes[f"{name}.conv.weight"] = (out, inputs, height, width)
        for part in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.bn.{part}"] = (out,)
        shapes[f"{name}.bn.num_batches_tracked"] = ()
    return {**shapes, "fc.weight": (INCEPTION_CLASSES, 2048), "fc.bias": (INCEPTION_CLASSES,)}


def vgg16_release() -> dict[str, tuple[int, ...]]:
    """Key -> shape of vgg16-397923af.pth, in order."""
    shapes: dict[str, tuple[int, ...]] = {}
    for index, out, inputs in VGG16_CONVS:
        shapes[f"features.{index}.weight"] = (out, inputs, 3, 3)
        shapes[f"features.{index}.bias"] = (out,)
    return {**shapes, **VGG16_CLASSIFIER}


def shapes_of(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in module.state_dict().items()}


def randomise(module: nn.Module, seed: int) -> nn.Module:
    """Random weights that keep activations alive through the depth (He-scaled convolutions,
    batch norms near identity), in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.Conv2d | nn.Linear):
                fan_in = layer.weight[0].numel()
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * (2 / fan_in) ** 0.5)
                if layer.bias is not None:
                    layer.bias.copy_(torch.randn(layer.bias.shape, generator=generator) * 0.01)
            elif isinstance(layer, nn.BatchNorm2d):
                layer.weight.uniform_(0.8, 1.2, generator=generator)
                layer.bias.uniform_(-0.05, 0.05, generator=generator)
                layer.running_mean.uniform_(-0.05, 0.05, generator=generator)
                layer.running_var.uniform_(0.8, 1.2, generator=generator)
                layer.num_batches_tracked.fill_(1000)
    return module.eval()


def save_like_the_release(state: dict[str, torch.Tensor], path: Path) -> Path:
    """The releases predate torch's zip format: saved the legacy way, as a plain dict."""
    torch.save(dict(state), path, _use_new_zipfile_serialization=False)
    return path


@pytest.fixture(scope="module")
def inception(tmp_path_factory: pytest.TempPathFactory) -> tuple[FidInception, Path]:
    """A random FID Inception and its weights saved as the release is."""
    model = randomise(FidInception(), seed=1)
    path = tmp_path_factory.mktemp("fid") / "pt_inception-2015-12-05-6726825d.pth"
    return model, save_like_the_release(model.state_dict(), path)


@pytest.fixture(scope="module")
def lpips_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[LPIPS, Path, Path]:
    """A random LPIPS (non-negative heads, as the trained ones are) and its two files as released:
    the VGG16 file with torchvision's ImageNet classifier too (stored as broadcast views, so the
    file stays small), the heads file alone."""
    model = randomise(LPIPS(), seed=2)
    with torch.no_grad():
        for head in model.heads.parameters():
            head.abs_()
    folder = tmp_path_factory.mktemp("lpips")
    classifier = {key: torch.zeros(1).expand(shape) for key, shape in VGG16_CLASSIFIER.items()}
    backbone = save_like_the_release({**model.vgg.state_dict(), **classifier}, folder / "vgg16-397923af.pth")
    heads = save_like_the_release(model.heads.state_dict(), folder / "vgg.pth")
    return model, backbone, heads


def frames(seed: int, *shape: int) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


# The structure, key for key.


def test_inception_has_every_key_and_shape_of_the_release() -> None:
    model = FidInception()
    assert shapes_of(model) == inception_release()
    assert list(model.state_dict()) == list(inception_release())  # in the release's order too
    assert len(model.state_dict()) == 566  # 94 convolutions x 6 + the classifier's 2
    assert sum(p.numel() for p in model.parameters()) == INCEPTION_PARAMETERS
    assert len(list(model.parameters())) == 94 * 3 + 2
    assert len(list(model.buffers())) == 94 * 3
    assert all(layer.eps == 1e-3 for layer in model.modules() if isinstance(layer, nn.BatchNorm2d))


def test_lpips_has_every_key_and_shape_of_the_releases() -> None:
    model = LPIPS()
    features = {key: shape for key, shape in vgg16_release().items() if key.startswith("features.")}
    assert list(shapes_of(model.vgg).items()) == list(features.items())
    assert shapes_of(model.heads) == LPIPS_HEADS
    assert sum(p.numel() for p in model.vgg.parameters()) == VGG16_FEATURE_PARAMETERS
    assert sum(p.numel() for p in model.heads.parameters()) == 64 + 128 + 256 + 512 + 512
    assert not list(model.buffers())  # the ScalingLayer's constants are not weights
    # The taps are relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3: the last ReLU before each pool.
    layers = list(model.vgg.features)
    assert [type(layers[i]) for i in lpips.TAPS] == [nn.ReLU] * 5
    assert [type(layers[i + 1]) for i in lpips.TAPS[:4]] == [nn.MaxPool2d] * 4
    assert len(layers) == lpips.TAPS[-1] + 1
    taps = model.vgg(torch.zeros(1, 3, 32, 48))
    assert [tuple(t.shape) for t in taps] == [
        (1, c, 32 >> i, 48 >> i) for i, c in enumerate((64, 128, 256, 512, 512))
    ]


def test_scaling_layer_constants() -> None:
    """LPIPS v0.1 shifts and scales [-1, 1] input by ImageNet's mean and deviation in that range."""
    mean, deviation = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    assert lpips.SHIFT == (-0.030, -0.088, -0.188)
    assert lpips.SCALE == (0.458, 0.448, 0.450)
    assert np.allclose(lpips.SHIFT, [2 * m - 1 for m in mean]) and np.allclose(
        lpips.SCALE, [2 * d for d in deviation]
    )
    grey = scaling_layer(torch.zeros(1, 3, 2, 2))
    assert torch.allclose(grey[0, :, 0, 0], torch.tensor([0.030 / 0.458, 0.088 / 0.448, 0.188 / 0.450]))


# Loading: the release's format, both ways round, and files that do not fit.


def test_inception_weights_round_trip(inception: tuple[FidInception, Path], tmp_path: Path) -> None:
    model, path = inception
    copy = tmp_path / "inception.safetensors"
    save_file(model.state_dict(), copy)
    for loaded in (load_fid_inception(path), load_fid_inception(copy)):
        assert not loaded.training
        for key, value in model.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value), key
    batch = frames(3, 2, 3, 96, 128)
    with torch.no_grad():
        assert torch.equal(loaded(batch), model(batch))


def test_inception_gives_pool3_features_at_any_frame_size(inception: tuple[FidInception, Path]) -> None:
    model, _ = inception
    with torch.no_grad():
        small = model(frames(4, 2, 3, 64, 80))
        large = model(frames(5, 2, 3, 360, 300))
    for features in (small, large):
        assert features.shape == (2, 2048) and features.dtype == torch.float32
        assert torch.isfinite(features).all() and (features >= 0).all()  # means of ReLUs
        assert not torch.allclose(features[0], features[1])  # different frames, different features


def test_inception_resizes_bilinearly_without_corner_alignment(inception: tuple[FidInception, Path]) -> None:
    """A frame of another size gives the features of its bilinear 299 x 299 resize sampled at pixel
    centres (pytorch-fid's `align_corners=False`), and not those of a corner-aligned resize."""
    model, _ = inception
    frame = frames(6, 1, 3, 200, 160)

    def resized(align_corners: bool) -> torch.Tensor:
        return F.interpolate(frame, size=(299, 299), mode="bilinear", align_corners=align_corners)

    with torch.no_grad():
        features = model(frame)
        assert torch.allclose(features, model(resized(False)), rtol=1e-5, atol=1e-6)
        assert not torch.allclose(features, model(resized(True)), rtol=1e-3, atol=1e-4)


def test_inception_features_equal_pytorch_fids(inception: tuple[FidInception, Path]) -> None:
    """The pooling details (padding left out of the A, C and first E blocks' means, the last E
    block's max pool) show in these numbers."""
    model, _ = inception
    with torch.no_grad():
        features = model(frames(13, 2, 3, 120, 90))
    for (row, column), value in REFERENCE_FEATURES.items():
        assert features[row, column].item() == pytest.approx(value, rel=1e-4, abs=1e-6), (row, column)
    assert features.sum(dim=1).tolist() == pytest.approx(REFERENCE_FEATURE_SUMS, rel=1e-5)


def test_wrong_inception_files_are_refused_by_name(
    inception: tuple[FidInception, Path], tmp_path: Path
) -> None:
    model, _ = inception
    state = dict(model.state_dict())
    state["Mixed_7c.branch_pool.conv.kernel"] = state.pop("Mixed_7c.branch_pool.conv.weight")
    del state["fc.bias"]
    path = save_like_the_release(state, tmp_path / "renamed.pth")
    with pytest.raises(UserError) as caught:
        load_fid_inception(path)
    message = str(caught.value)
    assert "not the FID Inception network" in message
    assert "2 missing keys (Mixed_7c.branch_pool.conv.weight, fc.bias)" in message
    assert "1 unexpected keys (Mixed_7c.branch_pool.conv.kernel)" in message
    state = dict(model.state_dict())
    state["fc.weight"] = torch.zeros(1000, 2048)  # torchvision's own Inception has 1000 classes
    with pytest.raises(UserError, match=r"size mismatch for fc\.weight: .*\[1000, 2048\]"):
        load_fid_inception(save_like_the_release(state, tmp_path / "torchvision.pth"))
    torch.save([torch.zeros(3)], tmp_path / "list.pth")
    with pytest.raises(UserError, match="does not hold a flat state dict"):
        load_fid_inception(tmp_path / "list.pth")


def test_lpips_weights_round_trip(lpips_files: tuple[LPIPS, Path, Path]) -> None:
    model, backbone, heads = lpips_files
    released = torch.load(backbone, weights_only=True)
    assert {key: tuple(value.shape) for key, value in released.items()} == vgg16_release()
    loaded = load_lpips(backbone, heads)
    assert not loaded.training
    assert loaded.state_dict().keys() == model.state_dict().keys()  # the classifier was left out
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    a, b = frames(7, 2, 3, 64, 48) * 2 - 1, frames(8, 2, 3, 64, 48) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(a, b), model(a, b))


def test_wrong_lpips_files_are_refused_by_name(lpips_files: tuple[LPIPS, Path, Path], tmp_path: Path) -> None:
    model, backbone, heads = lpips_files
    vgg = dict(model.vgg.state_dict())
    del vgg["features.28.bias"]
    with pytest.raises(UserError, match=r"not torchvision's VGG16 .*1 missing keys \(features.28.bias\)"):
        load_lpips(save_like_the_release(vgg, tmp_path / "vgg.pth"), heads)
    lins = {**model.heads.state_dict(), "lin5.model.1.weight": torch.zeros(1, 512, 1, 1)}  # squeezenet's
    with pytest.raises(
        UserError, match=r"not the LPIPS VGG heads .*1 unexpected keys \(lin5.model.1.weight\)"
    ):
        load_lpips(backbone, save_like_the_release(lins, tmp_path / "heads.pth"))
    with pytest.raises(UserError, match="not the LPIPS VGG heads"):
        load_lpips(backbone, backbone)  # the two files swapped


# What LPIPS promises.


def test_lpips_is_zero_symmetric_and_positive(lpips_files: tuple[LPIPS, Path, Path]) -> None:
    model, _, _ = lpips_files
    a, b = frames(9, 3, 3, 64, 64) * 2 - 1, frames(10, 3, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model(a, a), torch.zeros(3))
        forward, backward = model(a, b), model(b, a)
        nearer = model(a, (a + 0.05 * (b - a)).clamp(-1, 1))
    assert forward.shape == (3,)
    assert (forward > 0).all()
    assert torch.allclose(forward, backward, rtol=1e-6, atol=0)
    assert (nearer < forward).all()  # a slightly changed frame is nearer than an unrelated one


def test_lpips_equals_the_lpips_package(lpips_files: tuple[LPIPS, Path, Path]) -> None:
    model, _, _ = lpips_files
    with torch.no_grad():
        distances = model(frames(14, 2, 3, 64, 48) * 2 - 1, frames(15, 2, 3, 64, 48) * 2 - 1)
    assert distances.tolist() == pytest.approx(REFERENCE_LPIPS, rel=1e-5)


def test_lpips_is_the_weighted_sum_of_unit_feature_differences(lpips_files: tuple[LPIPS, Path, Path]) -> None:
    """The combination written out in NumPy from the tapped features: unit vectors along the
    channels, squared differences weighed by each head, mean over the image, sum over layers."""
    model, _, _ = lpips_files
    a, b = frames(11, 2, 3, 48, 32) * 2 - 1, frames(12, 2, 3, 48, 32) * 2 - 1
    with torch.no_grad():
        taps_a = [t.double().numpy() for t in model.vgg(scaling_layer(a))]
        taps_b = [t.double().numpy() for t in model.vgg(scaling_layer(b))]
        got = model(a, b).double().numpy()
    expected = np.zeros(2)
    for index, (x, y) in enumerate(zip(taps_a, taps_b, strict=True)):
        weight = getattr(model.heads, f"lin{index}").model[1].weight.detach().double().numpy().reshape(-1)
        unit_x = x / (np.sqrt((x**2).sum(axis=1, keepdims=True)) + 1e-10)
        unit_y = y / (np.sqrt((y**2).sum(axis=1, keepdims=True)) + 1e-10)
        expected += np.einsum("nchw,c->n", (unit_x - unit_y) ** 2, weight) / (x.shape[2] * x.shape[3])
    assert np.allclose(got, expected, rtol=1e-5, atol=0)


def test_lpips_refuses_frames_it_cannot_compare(lpips_files: tuple[LPIPS, Path, Path]) -> None:
    model, _, _ = lpips_files
    with pytest.raises(ValueError, match="of one shape"):
        model(torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 40))
    with pytest.raises(ValueError, match="at least 16 x 16"):
        model(torch.zeros(1, 3, 8, 32), torch.zeros(1, 3, 8, 32))


# The registry.


def test_the_evaluation_weights_are_registered_and_optional() -> None:
    entries = {entry.name: entry for entry in weights.REGISTRY if entry.group == "eval"}
    assert set(entries) == {"fid-inception", "lpips-vgg16", "lpips-heads", "i3d", "resnet3d-50"}
    assert "eval" in weights.OPTIONAL_GROUPS
    assert not {entry.name for entry in weights.select()} & set(entries)  # not fetched unless named
    assert {entry.name for entry in weights.select(["eval"])} == set(entries)
    # Each release's name carries the first digits of its sha256 (torch hub's convention).
    for name, digits in (
        ("fid-inception", "6726825d"),
        ("lpips-vgg16", "397923af"),
        ("lpips-heads", "a78928a0"),
    ):
        entry = entries[name]
        assert digits in entry.path and entry.sha256 and entry.sha256.startswith(digits), name
        assert isinstance(entry.source, weights.HubFile) and len(entry.source.revision) == 40, name
