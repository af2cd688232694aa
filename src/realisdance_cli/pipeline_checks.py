"""The input checks both pipelines share (`RealisDancePipeline` and `RealisDanceDiTPipeline`), so
one mistake reads as the same sentence in either: one `UserError` naming the keyword as the caller
wrote it, raised by the pipeline's `check_inputs` before any work.

torch is imported only inside the checks that need it: `animator.processing`, which the commands
import without torch, imports this module.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from realisdance_cli.errors import UserError

if TYPE_CHECKING:
    import numpy as np
    import torch

OUTPUT_TYPES = ("np", "pil", "pt", "latent")
T = TypeVar("T")

# callback_on_step_end(pipeline, step, timestep, {name: tensor}) -> the tensors it replaces (None: none)
StepCallback: TypeAlias = Callable[
    [Any, int, "torch.Tensor", dict[str, "torch.Tensor"]], Mapping[str, Any] | None
]
GeneratorInput: TypeAlias = "torch.Generator | list[torch.Generator] | None"


def check_whole(value: object, name: str, unit: str = "") -> None:
    """An int (numpy's too), not a bool: 1.5 or "2" would fail deep inside the loop (`unit`: what
    it counts, " of pixels" say)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise UserError(f"{name} must be a whole number{unit}, got {value!r}.")


def check_steps(steps: object, most: int | None = None, name: str = "num_inference_steps") -> None:
    """1 or more, and at most the scheduler's training steps (`most`) when known."""
    check_whole(steps, name)
    assert isinstance(steps, numbers.Integral)
    if int(steps) < 1:
        raise UserError(f"{name} must be 1 or more, got {steps}.")
    if most is not None and int(steps) > most:
        raise UserError(f"{name} must be 1 to {most}, got {steps}.")


def check_guidance(scale: object, name: str = "guidance_scale") -> None:
    """Both pipelines guide only above 1: a scale below it (or NaN) would silently mean no guidance."""
    if not isinstance(scale, numbers.Real) or isinstance(scale, bool):
        raise UserError(f"{name} must be a number, got {scale!r}.")
    if not (math.isfinite(scale) and float(scale) >= 1):
        raise UserError(f"{name} must be a number of 1 or more (1 turns guidance off), got {scale}.")


def check_size_given(height: object, width: object, otherwise: str) -> None:
    """Both sides or neither (`otherwise`: what neither means): one side alone says nothing about
    the other, and a default for the missing side would ignore the inputs' aspect."""
    if (height is None) != (width is None):
        raise UserError(
            f"give height and width together, or neither for {otherwise}; got height={height}, width={width}."
        )
    for name, value in (("height", height), ("width", width)):
        if value is not None:
            check_whole(value, name, " of pixels")


def single(value: Any, name: str, kind: type[T], described: str) -> T | None:
    """The one `kind` value of the batch of one video (or None); diffusers' list of one per video
    is taken too."""
    if isinstance(value, list | tuple):
        if len(value) != 1:
            raise UserError(
                f"{name} must be one {described} (or a list of one: the batch is one video), "
                f"got a list of {len(value)}."
            )
        value = value[0]
    if value is not None and not isinstance(value, kind):
        raise UserError(f"{name} must be a {described}, got {type(value).__name__}.")
    return value


def single_generator(generator: GeneratorInput) -> torch.Generator | None:
    """The one generator of the batch of one video (see `single`)."""
    import torch

    return single(generator, "generator", torch.Generator, "torch.Generator")


def check_output_type(output_type: object) -> None:
    if output_type not in OUTPUT_TYPES:
        raise UserError(f"output_type must be one of {', '.join(OUTPUT_TYPES)}, got {output_type!r}.")


def check_step_callback(callback: object, tensor_inputs: object, allowed: Sequence[str]) -> None:
    """A function, and the tensors it asks for among those the pipeline hands over (`allowed`)."""
    if callback is not None and not callable(callback):
        raise UserError(
            f"callback_on_step_end must be a function (pipeline, step, timestep, tensors), "
            f"got {type(callback).__name__}."
        )
    names = [tensor_inputs] if isinstance(tensor_inputs, str) else tensor_inputs
    if not isinstance(names, Sequence) or not set(names) <= set(allowed):
        raise UserError(
            f"callback_on_step_end_tensor_inputs may name {list(allowed)} only, got {tensor_inputs!r}."
        )


def step_result(result: object) -> Mapping[str, Any]:
    """What a step callback gave back. diffusers asks for a dict, but a callback that only watches
    (logs, saves previews) naturally returns nothing, and refusing it would throw away the steps
    already made: None replaces nothing."""
    if result is None:
        return {}
    if not isinstance(result, Mapping):
        raise UserError(f"callback_on_step_end must return a dict (or None), got {type(result).__name__}.")
    return result


def check_latents(latents: object, shape: tuple[int, ...]) -> None:
    """Given initial noise has the shape the inputs make."""
    import torch

    if latents is None:
        return
    got = tuple(latents.shape) if isinstance(latents, torch.Tensor) else type(latents).__name__
    if got != shape:
        raise UserError(f"latents must be {shape}, got {got}.")


def check_pixel_range(tensor: torch.Tensor | np.ndarray, what: str, signed: bool = False) -> None:
    """Float pixels (a tensor or an array) in [0, 1], or [-1, 1] when `signed`: values on another
    scale (0-255, say) would reach the VAE as garbage, not an error."""
    least, scale = (-1, "pixels / 127.5 - 1") if signed else (0, "pixels / 255")
    low, high = (float(tensor.min()), float(tensor.max())) if math.prod(tensor.shape) else (0.0, 0.0)
    if not least <= low <= high <= 1:  # NaN fails every comparison
        raise UserError(f"{what} must hold values in [{least}, 1] ({scale}), got {low:.4g} to {high:.4g}.")
