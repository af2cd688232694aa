"""The SD sampling loop's settings, apart from the loop: the commands check them before any
work, and importing the pipeline (diffusers, torch) takes seconds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from realisdance_cli.animator.windows import MAX_FRAMES
from realisdance_cli.errors import UserError
from realisdance_cli.pipeline_checks import check_guidance, check_steps, check_whole

COUNTS = ("context", "overlap", "stride", "context_batch", "decode_chunk")  # whole numbers besides steps


@dataclass(frozen=True)
class SamplingOptions:
    """How the SD model samples (the original's settings by default): DDIM steps, guidance and
    its unconditional branch, the temporal windows, the decode chunk, the compute pattern."""

    steps: int = 50
    guidance: float = 2.0
    uncond: Literal["fake", "real"] = "fake"
    context: int = 16
    overlap: int = 4
    stride: int = 1
    schedule: Literal["sliding", "uniform"] = "sliding"
    context_batch: int = 1
    decode_chunk: int = 8
    faithful: bool = False

    def call_kwargs(self) -> dict[str, Any]:
        """These options as `RealisDancePipeline.__call__` names them."""
        return {CALL_NAMES[name]: value for name, value in asdict(self).items()}

    def check(self, names: Mapping[str, str] | None = None, most_steps: int | None = None) -> None:
        """One sentence for the first wrong setting, naming it as the caller does (`names`: field
        -> option; default: the `__call__` keyword); `most_steps`: the scheduler's, once known."""
        name = {**CALL_NAMES, **(names or {})}
        check_steps(self.steps, most_steps, name["steps"])
        check_guidance(self.guidance, name["guidance"])
        for field_name in COUNTS:
            check_whole(getattr(self, field_name), name[field_name])
        if not 1 <= self.context <= MAX_FRAMES or not 0 <= self.overlap < self.context:
            raise UserError(
                f"{name['context']} must be 1 to {MAX_FRAMES} and {name['overlap']} 0 to "
                f"{name['context']}-1, got {self.context} and {self.overlap}."
            )
        if self.schedule not in ("sliding", "uniform") or self.uncond not in ("fake", "real"):
            raise UserError(
                f"{name['schedule']} must be sliding or uniform, and {name['uncond']} fake or real."
            )
        for field_name in ("stride", "context_batch", "decode_chunk"):
            if getattr(self, field_name) < 1:
                raise UserError(f"{name[field_name]} must be 1 or more, got {getattr(self, field_name)}.")


CALL_NAMES = {
    "steps": "num_inference_steps",
    "guidance": "guidance_scale",
    "uncond": "unconditional",
    "context": "context_frames",
    "overlap": "context_overlap",
    "stride": "context_stride",
    "schedule": "context_schedule",
    "context_batch": "context_batch_size",
    "decode_chunk": "decode_chunk_size",
    "faithful": "faithful",
}
