"""The SMPL-X "colourful surface" (SMPL-CS): the body mesh with a colour per vertex, drawn exactly
as the original SMPLer-X renderer RealisDance used (flat shading, ambient 0.4, its lights,
colour only where something was drawn, black elsewhere)."""

from __future__ import annotations

from typing import Any

import numpy as np

from realisdance_cli.renderers.scene import OffscreenScene, camera_to_opengl, import_pyrender, smplerx_lights


class SmplCsRenderer:
    """Renders SMPL-X meshes given in the camera frame (vertices + translation) at one size."""

    def __init__(
        self, height: int, width: int, faces: np.ndarray, colours: np.ndarray, renderer: Any = None
    ) -> None:
        self.pyrender = import_pyrender()
        self.faces = np.asarray(faces)
        self.colours = np.asarray(colours, dtype=np.uint8)
        self.scene = OffscreenScene(
            height,
            width,
            ambient=0.4,
            lights=smplerx_lights(self.pyrender),
            pyrender=self.pyrender,
            renderer=renderer,
        )

    def render(self, vertices: np.ndarray | None, focal: np.ndarray, princpt: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8; `vertices` None or empty gives a black frame."""
        import trimesh

        if vertices is None or len(vertices) == 0:
            return np.zeros((self.scene.height, self.scene.width, 3), np.uint8)
        mesh = camera_to_opengl(trimesh.Trimesh(vertices, self.faces, vertex_colors=self.colours))
        self.scene.set_meshes([self.pyrender.Mesh.from_trimesh(mesh, smooth=False)])
        self.scene.set_camera(float(focal[0]), float(focal[1]), float(princpt[0]), float(princpt[1]))
        colour, depth = self.scene.render()
        return colour * (depth > 0)[:, :, None].astype(np.uint8)

    def close(self) -> None:
        self.scene.close()
