"""Headless pyrender: the backend set-up, one reused offscreen renderer, and the light rigs of
the original HaMeR and SMPLer-X renderers.

The original scripts created a new OpenGL context for every frame; `OffscreenScene` keeps one
renderer and one scene (camera and lights) for a whole video and swaps only the meshes.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import numpy as np

from realisdance_cli.errors import UserError
from realisdance_cli.renderers import gl


def import_pyrender() -> ModuleType:
    """pyrender, on the chosen headless backend (set before OpenGL is first imported)."""
    if "PYOPENGL_PLATFORM" not in os.environ:
        os.environ["PYOPENGL_PLATFORM"] = gl.choose_backend()
    elif os.environ["PYOPENGL_PLATFORM"] == "osmesa":
        version = gl.pyopengl_version()
        if version is not None and version < gl.MIN_PYOPENGL:
            raise UserError(
                "PyOpenGL 3.1.0 (pinned by pyrender) cannot render with OSMesa; "
                "run `pip install --no-deps PyOpenGL==3.1.10`."
            )
    if not hasattr(np, "infty"):
        np.infty = np.inf  # type: ignore[attr-defined]  # pyrender 0.1.45 still uses it
    import pyrender

    return pyrender


def raymond_lights(pyrender: ModuleType) -> list[Any]:
    """HaMeR's three directional lights, 30 degrees off the view axis, 120 degrees apart."""
    nodes = []
    for phi in np.pi * np.array([0.0, 2.0 / 3.0, 4.0 / 3.0]):
        theta = np.pi / 6.0
        z = np.array([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)])
        z = z / np.linalg.norm(z)
        x = np.array([-z[1], z[0], 0.0])
        x = x / np.linalg.norm(x)
        matrix = np.eye(4)
        matrix[:3, :3] = np.c_[x, np.cross(z, x), z]
        nodes.append(
            pyrender.Node(light=pyrender.DirectionalLight(color=np.ones(3), intensity=1.0), matrix=matrix)
        )
    return nodes


def _rotation(rx: float, ry: float) -> np.ndarray:
    cx, sx, cy, sy = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry)
    rot_x = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]], dtype=np.float32)
    rot_y = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]], dtype=np.float32)
    pose = np.eye(4, dtype=np.float32)
    pose[:3, :3] = np.eye(3, dtype=np.float32) @ rot_y @ rot_x
    return pose


def circle_light_poses(distance: float, count: int = 5, elevation: float = np.pi / 3) -> list[np.ndarray]:
    """HaMeR's (PHALP's) light poses: a ring at `elevation` around the view axis, plus the camera.
    Computed in float32 like the original's torch version."""
    translation = np.eye(4, dtype=np.float32)
    translation[2, 3] = distance
    poses = [_rotation(-elevation, phi) @ translation for phi in 2 * np.pi * np.arange(count) / count]
    return [*poses, np.eye(4)]


def hamer_lights(pyrender: ModuleType) -> list[Any]:
    """All of HaMeR's lights for a camera at the origin: point lights close around the camera,
    directional lights from a wider ring, and the Raymond lights."""
    nodes = [
        pyrender.Node(light=pyrender.PointLight(color=np.ones(3), intensity=1.0), matrix=pose)
        for pose in circle_light_poses(0.5)
    ]
    nodes += [
        pyrender.Node(light=pyrender.DirectionalLight(color=np.ones(3), intensity=1.0), matrix=pose)
        for pose in circle_light_poses(12)
    ]
    return nodes + raymond_lights(pyrender)


def smplerx_lights(pyrender: ModuleType) -> list[Any]:
    """SMPLer-X's three directional lights. A directional light shines along its node's -z axis
    whatever the node's position, so the three add up to one light from the camera."""
    nodes = []
    for position in ([0, -1, 1], [0, 1, 1], [1, 1, 2]):
        matrix = np.eye(4)
        matrix[:3, 3] = position
        nodes.append(
            pyrender.Node(
                light=pyrender.DirectionalLight(color=[1.0, 1.0, 1.0], intensity=1.0), matrix=matrix
            )
        )
    return nodes


# 180 degrees about x, from the OpenCV camera frame (y down, z forward) to OpenGL's: the very
# matrix (with its 1e-16 sine terms) the original renderers apply through trimesh.
X_TURN = np.eye(4)
X_TURN[1:3, 1:3] = [[np.cos(np.pi), -np.sin(np.pi)], [np.sin(np.pi), np.cos(np.pi)]]


def camera_to_opengl(mesh: Any) -> Any:
    """Turn a trimesh from the camera frame to OpenGL's."""
    mesh.apply_transform(X_TURN)
    return mesh


def camera_to_opengl_points(points: np.ndarray) -> np.ndarray:
    """Points from the camera frame to OpenGL's, with the arithmetic trimesh's transform uses."""
    return np.dot(np.asarray(points, np.float64), X_TURN[:3, :3].T) + X_TURN[:3, 3]


def offscreen_renderer(height: int, width: int) -> Any:
    """A pyrender offscreen renderer (one OpenGL context). Scenes of one size can share it; with
    EGL they must, since deleting one EGL renderer ends the display the others use."""
    pyrender = import_pyrender()
    try:
        return pyrender.OffscreenRenderer(viewport_width=width, viewport_height=height, point_size=1.0)
    except Exception as err:  # OpenGL reports failures with its own exception types
        raise UserError(
            f"headless OpenGL failed to start ({type(err).__name__}: {err}); see `rdance doctor`."
        ) from None


class OffscreenScene:
    """A camera and light rig reused for every frame, drawn by a (possibly shared) offscreen
    renderer; meshes are replaced per frame."""

    def __init__(
        self,
        height: int,
        width: int,
        *,
        ambient: float,
        lights: list[Any],
        pyrender: ModuleType,
        renderer: Any = None,
    ) -> None:
        self.pyrender = pyrender
        self.height, self.width = height, width
        self.scene = pyrender.Scene(bg_color=[0.0, 0.0, 0.0, 0.0], ambient_light=(ambient, ambient, ambient))
        for node in lights:
            self.scene.add_node(node)
        self._camera: Any = None
        self._meshes: list[Any] = []
        self._owns_renderer = renderer is None
        self.renderer = offscreen_renderer(height, width) if renderer is None else renderer

    def set_camera(self, fx: float, fy: float, cx: float, cy: float, zfar: float | None = None) -> None:
        camera = self.pyrender.IntrinsicsCamera(
            fx=fx, fy=fy, cx=cx, cy=cy, **({} if zfar is None else {"zfar": zfar})
        )
        if self._camera is not None:
            self.scene.remove_node(self._camera)
        self._camera = self.scene.add(camera, pose=np.eye(4))

    def set_meshes(self, meshes: list[Any]) -> None:
        for node in self._meshes:
            self.scene.remove_node(node)
        self._meshes = [self.scene.add(mesh) for mesh in meshes]

    def render(self) -> tuple[np.ndarray, np.ndarray]:
        """Colour (H, W, 3) uint8 and depth (H, W) float32 (0 where nothing was drawn)."""
        color, depth = self.renderer.render(self.scene, flags=self.pyrender.RenderFlags.RGBA)
        return np.ascontiguousarray(color[:, :, :3]), depth

    def close(self) -> None:
        if self._owns_renderer:
            self.renderer.delete()
