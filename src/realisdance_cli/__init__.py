"""realisdance-cli: controllable character animation with realistic hands (RealisDance).

The library under the `rdance` command. Names are imported on first use, so `import
realisdance_cli` (and `rdance --help`) stays instant:

    from realisdance_cli import extract, render_poses, animate, RealisDancePipeline
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "extract": "realisdance_cli.extraction",
    "ExtractOptions": "realisdance_cli.extraction",
    "render_poses": "realisdance_cli.rendering",
    "RenderOptions": "realisdance_cli.rendering",
    "animate": "realisdance_cli.animation",
    "AnimateOptions": "realisdance_cli.animation",
    "PoseInputs": "realisdance_cli.animation",
    "retarget": "realisdance_cli.retargeting.job",
    "RetargetOptions": "realisdance_cli.retargeting.job",
    "evaluate": "realisdance_cli.evaluation.job",
    "EvalOptions": "realisdance_cli.evaluation.job",
    "run_benchmark": "realisdance_cli.evaluation.run",
    "RunOptions": "realisdance_cli.evaluation.run",
    "Track": "realisdance_cli.track",
    "Selection": "realisdance_cli.video",
    "SDOptions": "realisdance_cli.animation",
    "RealisDancePipeline": "realisdance_cli.animator.pipeline",
    "RealisDancePipelineOutput": "realisdance_cli.animator.pipeline",
    "SamplingOptions": "realisdance_cli.animator.sampling",
    "PoseVideos": "realisdance_cli.animator.pipeline",
    "RealisDanceUNet": "realisdance_cli.animator.network",
    "ClipProjector": "realisdance_cli.animator.network",
    "PoseGuider": "realisdance_cli.animator.pose_guider",
    "DiTOptions": "realisdance_cli.dit.job",
    "RealisDanceDiTPipeline": "realisdance_cli.dit.pipeline",
    "RealisDanceDiTPipelineOutput": "realisdance_cli.dit.pipeline",
    "RealisDanceDiT": "realisdance_cli.dit.transformer",
    "UserError": "realisdance_cli.errors",
}
__all__ = [
    "AnimateOptions",
    "ClipProjector",
    "DiTOptions",
    "EvalOptions",
    "ExtractOptions",
    "PoseGuider",
    "PoseInputs",
    "PoseVideos",
    "RealisDanceDiT",
    "RealisDanceDiTPipeline",
    "RealisDanceDiTPipelineOutput",
    "RealisDancePipeline",
    "RealisDancePipelineOutput",
    "RealisDanceUNet",
    "RenderOptions",
    "RetargetOptions",
    "RunOptions",
    "SDOptions",
    "SamplingOptions",
    "Selection",
    "Track",
    "UserError",
    "__version__",
    "animate",
    "evaluate",
    "extract",
    "render_poses",
    "retarget",
    "run_benchmark",
]

if TYPE_CHECKING:
    from realisdance_cli.animation import AnimateOptions, PoseInputs, SDOptions, animate
    from realisdance_cli.animator.network import ClipProjector, RealisDanceUNet
    from realisdance_cli.animator.pipeline import (
        PoseVideos,
        RealisDancePipeline,
        RealisDancePipelineOutput,
    )
    from realisdance_cli.animator.pose_guider import PoseGuider
    from realisdance_cli.animator.sampling import SamplingOptions
    from realisdance_cli.dit.job import DiTOptions
    from realisdance_cli.dit.pipeline import RealisDanceDiTPipeline, RealisDanceDiTPipelineOutput
    from realisdance_cli.dit.transformer import RealisDanceDiT
    from realisdance_cli.errors import UserError
    from realisdance_cli.evaluation.job import EvalOptions, evaluate
    from realisdance_cli.evaluation.run import RunOptions, run_benchmark
    from realisdance_cli.extraction import ExtractOptions, extract
    from realisdance_cli.rendering import RenderOptions, render_poses
    from realisdance_cli.retargeting.job import RetargetOptions, retarget
    from realisdance_cli.track import Track
    from realisdance_cli.video import Selection


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'realisdance_cli' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
