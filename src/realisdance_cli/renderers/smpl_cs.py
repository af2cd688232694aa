"""The SMPL-X "colourful surface" (SMPL-CS): the body mesh with a colour per vertex, drawn exactly
as the original SMPLer-X renderer RealisDance used (flat shading, ambient 0.4, its lights,
colour only where something was drawn, black elsewhere)."""

from __future__ import annotations

from typing import Any

import numpy as np

from realisdance_cli.renderers.scene import (
    OffscreenScene,
    camera_to_opengl_points,
    import_pyrender,
    smplerx_lights,
)


class SmplCsRenderer:
    """Renders SMPL-X meshes given in the camera frame (vertices + translation) at one size.

    The flat-shaded primitive is built directly (corner positions, face normals, corner colours),
    exactly as `pyrender.Mesh.from_trimesh(..., smooth=False)` builds it, without a trimesh object
    per frame; the corner colours and the material are made once."""

    def __init__(
        self, height: int, width: int, faces: np.ndarray, colours: np.ndarray, renderer: Any = None
    ) -> None:
        self.pyrender = import_pyrender()
        self.faces = np.asarray(faces)
        rgba = np.concatenate(
            [np.asarray(colours, np.uint8), np.full((len(colours), 1), 255, np.uint8)], axis=1
        )
        self.corner_colours = rgba[self.faces].reshape(-1, 4)
        self.material = self.pyrender.MetallicRoughnessMaterial(
            alphaMode="BLEND", baseColorFactor=[1.0, 1.0, 1.0, 1.0], metallicFactor=0.2, roughnessFactor=0.8
        )  # what from_trimesh gives a vertex-coloured mesh
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
        from trimesh import triangles

        if vertices is None or len(vertices) == 0:
            return np.zeros((self.scene.height, self.scene.width, 3), np.uint8)
        corners = camera_to_opengl_points(vertices)[self.faces]
        normals, _ = triangles.normals(corners)
        primitive = self.pyrender.Primitive(
            positions=corners.reshape(-1, 3),
            normals=np.repeat(normals, 3, axis=0),
            color_0=self.corner_colours,
            material=self.material,
            mode=4,  # triangles
        )
        self.scene.set_meshes([self.pyrender.Mesh([primitive])])
        self.scene.set_camera(float(focal[0]), float(focal[1]), float(princpt[0]), float(princpt[1]))
        colour, depth = self.scene.render()
        return colour * (depth > 0)[:, :, None].astype(np.uint8)

    def close(self) -> None:
        self.scene.close()
