"""Which headless OpenGL backend pyrender uses: EGL when it works, else OSMesa.

PyOpenGL fixes its platform when it is first imported, so backends are tried in child processes
and the choice is applied (`PYOPENGL_PLATFORM`) before pyrender is imported here.
`RDANCE_GL=egl|osmesa` forces one.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys

from realisdance_cli.errors import UserError

BACKENDS = ("egl", "osmesa")
MIN_PYOPENGL = (3, 1, 4)  # 3.1.0, which pyrender pins, cannot create OSMesa contexts


def pyopengl_version() -> tuple[int, ...] | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return tuple(int(part) for part in version("PyOpenGL").split(".")[:3])
    except PackageNotFoundError:
        return None


def _probe_in_child(backend: str) -> None:
    """Render one small triangle with `backend` (runs in a child process)."""
    os.environ["PYOPENGL_PLATFORM"] = backend
    import numpy as np
    import trimesh

    from realisdance_cli.renderers.scene import import_pyrender

    pyrender = import_pyrender()

    scene = pyrender.Scene(bg_color=[0, 0, 0, 0])
    triangle = trimesh.Trimesh([[-1, -1, 0], [1, -1, 0], [0, 1, 0]], [[0, 1, 2]])
    scene.add(pyrender.Mesh.from_trimesh(triangle))
    pose = np.eye(4)
    pose[2, 3] = 2.0
    scene.add(pyrender.PerspectiveCamera(yfov=1.0), pose=pose)
    renderer = pyrender.OffscreenRenderer(16, 16)
    _, depth = renderer.render(scene)
    renderer.delete()
    if not (depth > 0).any():
        raise RuntimeError("rendered an empty picture")


@functools.cache
def probe(backend: str) -> str | None:
    """None if `backend` renders here, else the reason it does not."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "realisdance_cli.renderers.gl", backend],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        return "timed out"
    if done.returncode == 0:
        return None
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit code {done.returncode}"


def choose_backend() -> str:
    """The backend to use: `RDANCE_GL` if set, else the first of EGL, OSMesa that works."""
    forced = os.environ.get("RDANCE_GL", "").strip().lower()
    if forced:
        if forced not in BACKENDS:
            raise UserError(f"RDANCE_GL must be one of {', '.join(BACKENDS)}, got {forced!r}.")
        return forced
    reasons = {}
    for backend in BACKENDS:
        reason = probe(backend)
        if reason is None:
            return backend
        reasons[backend] = reason
    raise UserError(
        "no headless OpenGL backend works ("
        + "; ".join(f"{name}: {why}" for name, why in reasons.items())
        + "); install libegl1 libegl-mesa0 libgl1-mesa-dri or libosmesa6, and PyOpenGL>=3.1.4."
    )


if __name__ == "__main__":
    _probe_in_child(sys.argv[1])
