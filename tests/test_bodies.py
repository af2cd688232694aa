"""Body models: SMPL-X and MANO from official-format files, loaded without chumpy or unpickling."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from body_models import SMPLX_FACES, SMPLX_VERTICES, write_chumpy_mano
from conftest import GOLDEN, need

from realisdance_cli.bodies import load_body_pickle, mano_layer, smplx_model
from realisdance_cli.errors import UserError


def test_synthetic_smplx_file_is_full_size_and_small(smplx_file: Path) -> None:
    with np.load(smplx_file) as data:
        assert data["v_template"].shape == (SMPLX_VERTICES, 3) and data["f"].shape == (SMPLX_FACES, 3)
        assert data["posedirs"].shape == (SMPLX_VERTICES, 3, 486) and data["J_regressor"].shape == (55, 10475)
    assert smplx_file.stat().st_size < 2_000_000


def test_smplx_poses_the_mesh_with_hands_relative_to_their_mean(smplx_file: Path) -> None:
    model = smplx_model(smplx_file, batch_size=2)
    zeros = {name: torch.zeros(2, 3) for name in ("global_orient", "jaw_pose", "leye_pose", "reye_pose")}
    with np.load(smplx_file) as data:
        left_mean, right_mean = data["hands_meanl"], data["hands_meanr"]
    out = model(
        **zeros,
        body_pose=torch.zeros(2, 63),
        # Hand poses are relative to the mean (flat_hand_mean=False): minus the mean is the flat hand.
        left_hand_pose=-torch.tensor(left_mean, dtype=torch.float32).expand(2, 45),
        right_hand_pose=-torch.tensor(right_mean, dtype=torch.float32).expand(2, 45),
        betas=torch.tensor([[0.0] * 10, [1.0] + [0.0] * 9]),
        expression=torch.zeros(2, 10),
    )
    assert out.vertices.shape == (2, SMPLX_VERTICES, 3)
    with np.load(smplx_file) as data:
        template = data["v_template"]
    assert np.allclose(out.vertices[0].detach().numpy(), template, atol=1e-5)
    grown = out.vertices[1].detach().numpy()
    assert np.allclose(grown, template * 1.05, atol=1e-5)  # beta 0 scales the synthetic body


def test_smplx_file_with_a_pickled_object_runs_nothing(smplx_file: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple:
            return (os.system, (f"touch {marker}",))

    with np.load(smplx_file) as data:
        arrays = {key: data[key] for key in data.files}
    evil = np.empty((), dtype=object)
    evil[()] = Exploit()
    np.savez(tmp_path / "SMPLX_NEUTRAL.npz", **arrays, part2num=evil)
    model = smplx_model(tmp_path / "SMPLX_NEUTRAL.npz")
    assert model.faces.shape == (SMPLX_FACES, 3)
    assert not marker.exists()


def test_mano_from_official_flavoured_pickle_without_chumpy(tmp_path: Path) -> None:
    plain_file = need(GOLDEN / "hamer" / "mano" / "MANO_RIGHT.pkl")
    plain = write_chumpy_mano(plain_file, tmp_path / "MANO_RIGHT.pkl")
    with pytest.raises(ImportError):
        __import__("chumpy")
    loaded = load_body_pickle(tmp_path / "MANO_RIGHT.pkl")
    for key in ("shapedirs", "J_regressor", "v_template", "f"):
        assert isinstance(loaded[key], np.ndarray) and np.array_equal(loaded[key], plain[key]), key
    layer = mano_layer(tmp_path / "MANO_RIGHT.pkl")
    eye = torch.eye(3)
    out = layer(
        global_orient=eye.view(1, 1, 3, 3), hand_pose=eye.expand(1, 15, 3, 3), betas=torch.zeros(1, 10)
    )
    assert out.vertices.shape == (1, 778, 3)
    assert np.allclose(out.vertices[0].numpy(), plain["v_template"], atol=1e-5)


def test_body_pickles_refuse_anything_else(tmp_path: Path) -> None:
    class Exploit:
        def __reduce__(self) -> tuple:
            return (os.system, ("true",))

    (tmp_path / "MANO_RIGHT.pkl").write_bytes(pickle.dumps({"v_template": Exploit()}, protocol=2))
    with pytest.raises(UserError, match="system"):
        mano_layer(tmp_path / "MANO_RIGHT.pkl")
    (tmp_path / "MANO_RIGHT.pkl").write_bytes(b"\x80\x02garbage")
    with pytest.raises(UserError, match="not a readable pickle"):
        mano_layer(tmp_path / "MANO_RIGHT.pkl")
    (tmp_path / "MANO_RIGHT.pkl").write_bytes(pickle.dumps({"v_template": np.zeros((778, 3))}, protocol=2))
    with pytest.raises(UserError, match="lacks f"):
        mano_layer(tmp_path / "MANO_RIGHT.pkl")


class _ForgedSparse:
    """Pickles as a scipy sparse matrix whose state claims another shape than its parts hold."""

    def __init__(self, side: int, whole: bool) -> None:
        self.side, self.whole = side, whole

    def __reduce_ex__(self, protocol: object) -> tuple:
        import copyreg

        import scipy.sparse

        state = dict(scipy.sparse.csc_matrix(np.eye(2)).__dict__) | {"_shape": (self.side, self.side)}
        if self.whole:  # consistent parts: one entry in a huge matrix
            indptr = np.zeros(self.side + 1, np.int32)
            indptr[-1] = 1
            state |= {"indptr": indptr, "indices": np.zeros(1, np.int32), "data": np.ones(1)}
        return (copyreg._reconstructor, (scipy.sparse.csc_matrix, object, None), state)


@pytest.mark.parametrize(
    ("side", "whole", "said"),
    [
        (4000, False, "J_regressor is a damaged sparse matrix (index pointer size 3 should be 4001)"),
        (4000, True, "J_regressor is a sparse matrix of 4000x4000, larger than any body model's"),
    ],
    ids=["parts-apart", "huge"],
)
def test_a_forged_sparse_matrix_is_refused(tmp_path: Path, side: int, whole: bool, said: str) -> None:
    """A 577-byte MANO file crashed the process (scipy read past the parts); a 16 KB one made a
    dense 128 MB array, growing with the square of its side."""
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(pickle.dumps({"J_regressor": _ForgedSparse(side, whole)}, protocol=2))
    with pytest.raises(UserError) as caught:
        load_body_pickle(path)
    assert said in str(caught.value)


def test_missing_model_files_name_the_licence(tmp_path: Path) -> None:
    with pytest.raises(UserError) as caught:
        smplx_model(tmp_path / "SMPLX_NEUTRAL.npz")
    assert "https://smpl-x.is.tue.mpg.de" in str(caught.value) and "SMPLX_NEUTRAL.npz" in str(caught.value)
    with pytest.raises(UserError, match=r"https://mano\.is\.tue\.mpg\.de"):
        mano_layer(tmp_path / "MANO_RIGHT.pkl")


@pytest.mark.parametrize("damage", ["truncated", "bit-flipped", "missing key"])
def test_a_damaged_smplx_file_is_one_sentence(smplx_file: Path, tmp_path: Path, damage: str) -> None:
    data = smplx_file.read_bytes()
    path = tmp_path / "SMPLX_NEUTRAL.npz"
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "bit-flipped":
        middle = len(data) // 3
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 0x55]) + data[middle + 1 :])
    else:
        with np.load(smplx_file) as arrays:
            np.savez(path, **{name: arrays[name] for name in arrays.files if name != "shapedirs"})
    with pytest.raises(UserError) as caught:
        smplx_model(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and "\n" not in message
    assert "`rdance weights download smplx`" in message
    assert ("lacks shapedirs" in message) == (damage == "missing key")


def test_a_folder_given_as_the_colour_table_is_one_sentence(tmp_path: Path) -> None:
    """`--smplx-colors some_folder`."""
    from realisdance_cli.bodies import load_vertex_colours

    with pytest.raises(UserError, match=f"^{tmp_path} is a folder; give the vertex colour table"):
        load_vertex_colours(tmp_path)
    with pytest.raises(UserError, match="does not exist; `rdance weights check smplx-colors`"):
        load_vertex_colours(tmp_path / "missing.pt")


class _Reduced:
    """Pickles as the call `function(*args)`: what a forged file can ask of the unpickler."""

    def __init__(self, function: object, *args: object) -> None:
        self.function, self.args = function, args

    def __reduce__(self) -> tuple:
        return (self.function, self.args)


def test_bytes_in_a_body_pickle_are_only_latin1_text(tmp_path: Path) -> None:
    """`_codecs.encode` makes protocol 2's bytes; with any codec, `hex` applied 30 times in a few
    hundred bytes of pickle grows two bytes to gigabytes."""
    import codecs

    grown: object = b"ab"
    for _ in range(3):
        grown = _Reduced(codecs.encode, grown, "hex")
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(pickle.dumps({"v_template": grown}, protocol=2))
    with pytest.raises(UserError, match="bytes are made in a way Python's pickler never writes"):
        load_body_pickle(path)
    path.write_bytes(pickle.dumps({"v_template": b"\x00\xff"}, protocol=2))  # how bytes really come
    assert load_body_pickle(path) == {"v_template": b"\x00\xff"}


def test_a_colour_table_is_read_without_numpy_constructors(tmp_path: Path) -> None:
    """torch's weights-only loader, allowed numpy's globals, let a forged table call `numpy.ndarray`
    itself (any size, uninitialised: this one passed as a table of garbage colours)."""
    from realisdance_cli.bodies import load_vertex_colours

    forged = tmp_path / "forged.pt"
    torch.save(_Reduced(np.ndarray, (10475, 3), "u1"), forged)
    with pytest.raises(UserError, match="an array is made in a way numpy's pickler never writes"):
        load_vertex_colours(forged)
    table = np.arange(30, dtype=np.uint8).reshape(10, 3)
    for saved in (table, torch.from_numpy(table)):  # the authors' numpy array, or a tensor
        path = tmp_path / "table.pt"
        torch.save(saved, path)
        np.testing.assert_array_equal(load_vertex_colours(path), table)
