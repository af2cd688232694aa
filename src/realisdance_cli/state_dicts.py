"""Weight files read without pickle's code paths, and loaded with every key accounted for.

Every network here (the animator, HaMeR, SMPLer-X, the training stages) loads the same way: a
weights-only `torch.load`, then a strict load whose failure names the missing and unexpected keys.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import torch

from realisdance_cli.errors import UserError

SHOWN_KEYS = 5
SHOWN_REASON = 200  # characters of a library's message kept in a sentence
FETCH_AGAIN = "`rdance weights check` names the damaged file; fetch it again"
ModuleT = TypeVar("ModuleT", bound=torch.nn.Module)


def _ending(remedy: str) -> str:
    return f"; {remedy}." if remedy else "."


def read_weights(
    path: Path, what: str, safe_globals: Sequence[Any] = (), mmap: bool = True, remedy: str = ""
) -> Any:
    """`torch.load(weights_only=True)` (memory-mapped unless `mmap` is false), with `safe_globals`
    also allowed; a file that fails is one sentence saying it is not `what` (then `remedy`)."""
    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as error:
        raise UserError(f"{path} is not {what}: {_unreadable(path, error)}{_ending(remedy)}") from None


def _unreadable(path: Path, error: Exception) -> str:
    """Why torch could not load `path`, in the user's terms (torch's own text suggests
    `weights_only=False`, which is never ours to take)."""
    text = str(error).strip()
    if "Weights only load failed" in text:
        return "it holds objects besides tensors and plain values, which are never unpickled"
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError as err:
        return f"it cannot be read ({err.strerror or err})"
    if not head:
        return "it is empty"
    if head[:2] != b"PK" and "mmap" in text:  # torch.save's files are zip archives since torch 1.6
        return "it is not the zip archive torch.save writes (a plain pickle, or a file of torch before 1.6)"
    return f"it cannot be read safely ({text.splitlines()[0] if text else type(error).__name__})"


def key_mismatch(expected: Iterable[str], given: Iterable[str]) -> str | None:
    """'2 missing keys (a, b); 1 unexpected keys (c)', or None when the two sets agree."""
    wanted, present = set(expected), set(given)
    problems = []
    for kind, keys in (("missing", sorted(wanted - present)), ("unexpected", sorted(present - wanted))):
        if keys:
            more = f" and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else ""
            problems.append(f"{len(keys)} {kind} keys ({', '.join(keys[:SHOWN_KEYS])}{more})")
    return "; ".join(problems) or None


def load_exactly(
    module: torch.nn.Module, state: Mapping[str, torch.Tensor], what: str, hint: str = ""
) -> None:
    """Every key used and every tensor filled (assigned, so meta-built modules take the tensors);
    otherwise `UserError(f"{what}: <the keys>{hint}.")`."""
    problem = key_mismatch(module.state_dict().keys(), state.keys())
    if problem:
        raise UserError(f"{what}: {problem}{hint}.")
    try:
        module.load_state_dict(dict(state), strict=True, assign=True)
    except RuntimeError as error:
        raise UserError(f"{what}: {str(error).splitlines()[-1].strip()}") from None


def loaded(factory: Callable[[], ModuleT], state: Mapping[str, torch.Tensor], what: str) -> ModuleT:
    """`factory()`'s network built without memory (on the meta device) and given every tensor of
    `state` (`load_exactly`, `what` naming it in a refusal), in eval mode."""
    with torch.device("meta"):
        module = factory()
    load_exactly(module, state, what)
    return module.eval()


def _not_safetensors(path: Path, what: str, error: Exception, remedy: str) -> UserError:
    return UserError(
        f"{path} is not {what}: it is not a readable safetensors file ({error}){_ending(remedy)}"
    )


def read_state_dict(path: Path, what: str, remedy: str = "") -> Mapping[str, torch.Tensor]:
    """A flat name -> tensor mapping from a safetensors file or a weights-only `torch.load` (the
    releases predate torch's zip format, so without memory mapping); a file that fails is one
    sentence saying it is not `what` (then `remedy`)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(path)
        except Exception as error:
            raise _not_safetensors(path, what, error, remedy) from None
    state = read_weights(path, what, mmap=False, remedy=remedy)
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(
            f"{path} is not {what}: it does not hold a flat state dict of tensors{_ending(remedy)}"
        )
    return state


def safetensors_metadata(path: Path, what: str, remedy: str = "") -> dict[str, str]:
    """The string metadata in a safetensors file's header (empty when it has none), read without
    its tensors; a file that fails is one sentence, as `read_state_dict` says it."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as file:
            return dict(file.metadata() or {})
    except Exception as error:
        raise _not_safetensors(path, what, error, remedy) from None


def _damage_types() -> tuple[type[BaseException], ...]:
    """What diffusers, transformers and safetensors raise for a damaged config or weight file: a
    cut or foreign JSON (ValueError, AttributeError, TypeError, KeyError), settings the network
    cannot be built from (IndexError, NotImplementedError, RuntimeError of mismatched sizes), a
    cut weight file (OSError, SafetensorError), JSON nested too deeply (RecursionError)."""
    from safetensors import SafetensorError

    return (
        OSError, ValueError, AttributeError, TypeError, KeyError, IndexError, NotImplementedError,
        RuntimeError, RecursionError, SafetensorError,
    )  # fmt: skip


@contextmanager
def loading_from(folder: Path) -> Iterator[None]:
    """A model loaded inside this block from `folder`: its failure to load is one sentence naming
    the folder and the reason, then how to find and fetch the damaged file. Settings that no real
    model has (`config_sizes`) are refused on entry, before a library spends minutes building them.
    Running out of memory is not damage (the CLI says it in its own words), and a UserError already
    says its own."""
    from realisdance_cli.config_sizes import folder_problem
    from realisdance_cli.devices import out_of_memory

    try:
        problem = folder_problem(folder)
        if problem:
            raise ValueError(problem)
        yield
    except UserError:
        raise
    except _damage_types() as error:
        if out_of_memory(error) is not None:
            raise
        raise UserError(f"cannot load {folder}, it is damaged ({_reason(error)}); {FETCH_AGAIN}.") from None


def _reason(error: BaseException) -> str:
    """The first line of a library's message, cut short, or the error's kind when it says nothing."""
    if isinstance(error, RecursionError):
        return "a file in it nests too deeply"
    lines = str(error).strip().splitlines()
    text = lines[0].strip() if lines else type(error).__name__
    return text if len(text) <= SHOWN_REASON else text[: SHOWN_REASON - 3] + "..."


def read_config(path: Path) -> dict[str, Any]:
    """A model's JSON settings, refused (ValueError, for `loading_from` to name) unless they are a
    JSON object: a list reaches diffusers, which then looks for the model on huggingface.co."""
    try:
        config = json.loads(path.read_text())
    except ValueError as error:  # not JSON, or cut short: the reason names the file
        raise ValueError(f"{path.name} is not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path.name} holds no settings (a JSON {type(config).__name__}, not an object)")
    return config
