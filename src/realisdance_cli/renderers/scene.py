"""Headless pyrender: the backend set-up, one scene and context kept for a whole video, and the
light rigs of the original HaMeR and SMPLer-X renderers.
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


def camera_to_opengl_points(points: np.ndarray) -> np.ndarray:
    """Points from the camera frame to OpenGL's, with the arithmetic trimesh's transform uses."""
    return np.dot(np.asarray(points, np.float64), X_TURN[:3, :3].T) + X_TURN[:3, 3]


_LIVE_RENDERERS: list[Any] = []


def offscreen_renderer(height: int, width: int) -> Any:
    """A pyrender offscreen renderer (one OpenGL context); give it back with `release`."""
    pyrender = import_pyrender()
    try:
        renderer = pyrender.OffscreenRenderer(viewport_width=width, viewport_height=height, point_size=1.0)
    except Exception as err:  # OpenGL reports failures with its own exception types
        raise UserError(
            f"headless OpenGL failed to start ({type(err).__name__}: {err}); see `rdance doctor`."
        ) from None
    _LIVE_RENDERERS.append(renderer)
    return renderer


def release(renderer: Any) -> None:
    """Frees a renderer. Under EGL every renderer shares one display, which pyrender's `delete`
    terminates: all but the last renderer are left to that final termination, which frees every
    context of the display."""
    _LIVE_RENDERERS.remove(renderer)
    if os.environ.get("PYOPENGL_PLATFORM") != "egl" or not _LIVE_RENDERERS:
        renderer.delete()


def face_normals(corners: np.ndarray) -> np.ndarray:
    """Unit normals of triangles (F, 3, 3), zero for degenerate ones, as trimesh computes them."""
    from trimesh import triangles

    normals, valid = triangles.normals(corners)
    if valid.all():
        return normals
    padded = np.zeros((len(corners), 3))
    padded[valid] = normals
    return padded


def smooth_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Angle-weighted vertex normals, as trimesh's `vertex_normals` (what pyrender's smooth
    shading of a trimesh uses), without building a trimesh."""
    from trimesh import geometry, triangles

    corners = np.asarray(vertices, np.float64)[faces]
    return geometry.weighted_vertex_normals(
        len(vertices), faces, face_normals(corners), triangles.angles(corners)
    )


class MeshSlot:
    """A mesh kept in a scene for a whole video, drawn in the frames it is `place`d in."""

    def __init__(self, scene: Any, primitive: Any, pyrender: ModuleType) -> None:
        if primitive.tangents is not None or primitive.texcoord_0 is not None:
            raise ValueError("mesh slots hold positions, normals and colours only")
        self.primitive = primitive
        self.mesh = pyrender.Mesh([primitive])
        self.mesh.is_visible = False
        scene.add(self.mesh)
        # pyrender's interleaved vertex layout: position, normal, colour (float32)
        self._vertex_data = np.hstack([primitive.positions, primitive.normals, primitive.color_0]).astype(
            np.float32
        )
        self._changed = False

    def place(self, positions: np.ndarray, normals: np.ndarray) -> None:
        self.primitive.positions = positions
        self.primitive.normals = normals
        self._vertex_data[:, :3] = self.primitive.positions
        self._vertex_data[:, 3:6] = self.primitive.normals
        self.mesh.is_visible = True
        self._changed = True

    def upload(self) -> None:
        """Rewrite the vertex buffer if the mesh is in the (current) context already; otherwise
        pyrender uploads it, with the placed vertices, when it first draws it."""
        from OpenGL import GL

        if self._changed and self.primitive._vaid is not None:
            GL.glBindBuffer(GL.GL_ARRAY_BUFFER, self.primitive._buffers[0])
            GL.glBufferSubData(GL.GL_ARRAY_BUFFER, 0, self._vertex_data.nbytes, self._vertex_data)
        self._changed = False


class OffscreenScene:
    """One kind of mesh picture for a whole video: an OpenGL context, a pyrender scene with the
    light rig, a camera, and meshes that stay in the scene (and their buffers in the context);
    a frame only rewrites vertex positions and normals. (The original scripts created a new
    context and new meshes for every frame.) Each kind has its own context: switching one
    scene between light rigs was measured to slow llvmpipe down by half."""

    def __init__(self, height: int, width: int, ambient: float, lights: list[Any]) -> None:
        self.pyrender = import_pyrender()
        self.height, self.width = height, width
        self.renderer = offscreen_renderer(height, width)
        self.scene = self.pyrender.Scene(bg_color=[0.0, 0.0, 0.0, 0.0], ambient_light=np.full(3, ambient))
        for node in lights:
            self.scene.add_node(node)
        self.camera = self.pyrender.IntrinsicsCamera(fx=1.0, fy=1.0, cx=0.0, cy=0.0)
        self.scene.add(self.camera, pose=np.eye(4))
        self.slots: list[MeshSlot] = []

    def add_mesh(self, primitive: Any) -> MeshSlot:
        slot = MeshSlot(self.scene, primitive, self.pyrender)
        self.slots.append(slot)
        return slot

    def set_camera(self, fx: float, fy: float, cx: float, cy: float, zfar: float | None = None) -> None:
        from pyrender.constants import DEFAULT_Z_FAR

        self.camera.fx, self.camera.fy, self.camera.cx, self.camera.cy = fx, fy, cx, cy
        self.camera.zfar = DEFAULT_Z_FAR if zfar is None else zfar

    def render(self) -> tuple[np.ndarray, np.ndarray]:
        """Colour (H, W, 3) uint8 of the meshes placed since the last render (they are hidden
        again afterwards) and where something was drawn (H, W) bool."""
        from pyrender.constants import RenderFlags

        platform, renderer = self.renderer._platform, self.renderer._renderer  # pyrender 0.1.45
        platform.make_current()
        try:
            for slot in self.slots:
                slot.upload()
            if platform.supports_framebuffers():  # EGL: pyrender reads its multisampled target
                colour, depth = renderer.render(self.scene, RenderFlags.RGBA | RenderFlags.OFFSCREEN)
                drawn = depth > 0
            else:  # OSMesa draws into the front buffer, read here without pyrender's depth maths
                renderer.render(self.scene, RenderFlags.RGBA)
                colour, drawn = self._read_front()
        finally:
            platform.make_uncurrent()
            for slot in self.slots:
                slot.mesh.is_visible = False
        return np.ascontiguousarray(colour[:, :, :3]), drawn

    def _read_front(self) -> tuple[np.ndarray, np.ndarray]:
        """RGBA of the front buffer, top row first; alpha is 255 where a mesh (all opaque here)
        was drawn and 0 elsewhere: the same pixels as the original's depth > 0."""
        from OpenGL import GL

        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, 0)
        GL.glReadBuffer(GL.GL_FRONT)
        raw = GL.glReadPixels(0, 0, self.width, self.height, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE, outputType=None)
        rgba = np.asarray(raw, np.uint8).reshape(self.height, self.width, 4)[::-1]
        return rgba, rgba[:, :, 3] > 0

    def close(self) -> None:
        release(self.renderer)
