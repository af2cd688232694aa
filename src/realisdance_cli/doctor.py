"""Environment checks behind `rdance doctor`: what works here, what is missing, and the fix."""

from __future__ import annotations

import platform
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from realisdance_cli import weights

Level = Literal["ok", "info", "missing", "warn", "fail"]
# pyrender pins PyOpenGL 3.1.0, which cannot make OSMesa contexts; `make install` does this too
PYOPENGL_FIX = "pip install --no-deps PyOpenGL==3.1.10"


@dataclass(frozen=True)
class Check:
    section: str
    name: str
    level: Level
    detail: str


def _gpu_present() -> bool:
    return Path("/dev/nvidia0").exists() or shutil.which("nvidia-smi") is not None


def system() -> list[Check]:
    from realisdance_cli import __version__

    return [
        Check("system", "realisdance-cli", "info", __version__),
        Check("system", "python", "info", f"{platform.python_version()} ({sys.executable})"),
        Check("system", "platform", "info", platform.platform()),
    ]


def torch_checks() -> list[Check]:
    try:
        import torch
    except ImportError as err:
        fix = "reinstall it (`make install` in a checkout)"
        return [Check("torch", "torch", "fail", f"not importable ({err}); {fix}")]
    checks = [Check("torch", "torch", "ok", torch.__version__)]
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        checks.append(Check("torch", "CUDA", "ok", f"{torch.version.cuda}: {names}"))
    elif _gpu_present():
        checks.append(
            Check(
                "torch",
                "CUDA",
                "warn",
                "a GPU is present but this torch build has no CUDA: install a CUDA wheel",
            )
        )
    else:
        checks.append(Check("torch", "CUDA", "info", "no GPU: extraction and rendering run on the CPU"))
    return checks


def onnx_checks() -> list[Check]:
    try:
        import onnxruntime
    except ImportError as err:
        return [Check("onnxruntime", "onnxruntime", "fail", f"not importable ({err})")]
    providers = onnxruntime.get_available_providers()
    checks = [
        Check("onnxruntime", "onnxruntime", "ok", onnxruntime.__version__),
        Check("onnxruntime", "providers", "ok", ", ".join(providers)),
    ]
    if _gpu_present() and "CUDAExecutionProvider" not in providers:
        checks.append(
            Check(
                "onnxruntime",
                "GPU unused",
                "warn",
                "A GPU is present but ONNX Runtime only has the CPU provider: DWPose will run about 100x "
                "slower. Fix: pip uninstall onnxruntime && pip install onnxruntime-gpu",
            )
        )
    return checks


def rendering_checks() -> list[Check]:
    from realisdance_cli.errors import UserError
    from realisdance_cli.renderers import gl

    version = gl.pyopengl_version()
    if version is None:
        return [Check("rendering", "PyOpenGL", "fail", f"not installed; {PYOPENGL_FIX}")]
    text = ".".join(map(str, version))
    checks = []
    if version < gl.MIN_PYOPENGL:
        checks.append(
            Check(
                "rendering",
                "PyOpenGL",
                "warn",
                f"{text}: OSMesa needs >= 3.1.4; {PYOPENGL_FIX}",
            )
        )
    else:
        checks.append(Check("rendering", "PyOpenGL", "ok", text))
    for backend in gl.BACKENDS:
        reason = gl.probe(backend)
        checks.append(
            Check(
                "rendering",
                backend,
                "ok" if reason is None else "info",
                "works" if reason is None else reason,
            )
        )
    try:
        checks.append(Check("rendering", "chosen", "ok", gl.choose_backend()))
    except UserError as err:
        checks.append(Check("rendering", "chosen", "fail", str(err)))
    return checks


def video_checks() -> list[Check]:
    import av

    checks = [Check("video", "PyAV", "ok", f"{av.__version__} (FFmpeg {av.ffmpeg_version_info})")]
    for codec, why in (
        ("libx264", "H.264 encoder for the pose and output videos"),
        ("libx264rgb", "lossless RGB H.264 (--lossless)"),
        ("h264", "H.264 decoder"),
        ("aac", "audio re-encoding"),
    ):
        present = codec in av.codecs_available
        checks.append(
            Check("video", codec, "ok" if present else "fail", why if present else f"missing: {why}")
        )
    return checks


def weight_checks(root: Path) -> list[Check]:
    checks = [Check("weights", "root", "info", str(root))]
    for entry in weights.REGISTRY:
        found = weights.status(entry, root)
        if found.ok:
            size = f"{found.size / 1e6:,.1f} MB" if found.size is not None else ""
            checks.append(Check("weights", entry.name, "ok", f"{found.path} ({size}, {found.place})"))
        elif found.found:  # damaged: every command that needs it would fail, as `weights check` does
            checks.append(
                Check(
                    "weights",
                    entry.name,
                    "fail",
                    f"{found.path}: {found.problem}; {weights.refetch(found, root)}",
                )
            )
        elif unneeded := weights.not_needed(entry, root):
            checks.append(Check("weights", entry.name, "ok", f"not needed: {unneeded}"))
        else:  # the optional groups only matter to the commands that name them
            level: Level = "info" if entry.group in weights.OPTIONAL_GROUPS else "missing"
            checks.append(
                Check(
                    "weights",
                    entry.name,
                    level,
                    f"missing: {entry.purpose}. Get it: {weights.instructions(entry, root)}. "
                    f"Licence: {entry.licence}",
                )
            )
    return checks


def missing_summary(checks: list[Check], root: Path) -> str | None:
    """One line on the missing weight files (the optional groups' aside): how many, the one
    command that fetches those on the hub, and which come by hand (their rows say how)."""
    entries = [weights.get(check.name) for check in checks if check.level == "missing"]
    if not entries:
        return None
    by_hand = [entry for entry in entries if isinstance(entry.source, weights.Manual)]
    hub_groups = dict.fromkeys(entry.group for entry in entries if entry not in by_hand)
    parts = [f"{weights.download_command(hub_groups, root)} for those on the hub"] if hub_groups else []
    if by_hand:
        names = ", ".join(dict.fromkeys(entry.group for entry in by_hand))
        parts.append(f"get {names} by hand (their rows say how)")
    return f"{len(entries)} weight files missing: {'; '.join(parts)}."


def run_all(root: Path) -> list[Check]:
    return [
        *system(),
        *torch_checks(),
        *onnx_checks(),
        *rendering_checks(),
        *video_checks(),
        *weight_checks(root),
    ]
