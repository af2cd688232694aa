"""The SMPL-X "colourful surface" (SMPL-CS): the body mesh with a colour per vertex, drawn exactly
as the original SMPLer-X renderer RealisDance used (flat shading, ambient 0.4, its lights,
colour only where something was drawn, black elsewhere)."""

from __future__ import annotations

import numpy as np

from realisdance_cli.renderers.scene import (
    OffscreenScene,
    camera_to_opengl_points,
    face_normals,
    import_pyrender,
    smplerx_lights,
)


class SmplCsRenderer:
    """Renders SMPL-X meshes given in the camera frame (vertices + translation) at one size.

    The flat-shaded primitive is what `pyrender.Mesh.from_trimesh(..., smooth=False)` builds
    (corner positions, face normals, corner colours, the same material), made once; each render
    rewrites its positions and normals."""

    def __init__(self, height: int, width: int, faces: np.ndarray, colours: np.ndarray) -> None:
        pyrender = import_pyrender()
        self.faces = np.asarray(faces)
        rgba = np.concatenate(
            [np.asarray(colours, np.uint8), np.full((len(colours), 1), 255, np.uint8)], axis=1
        )
        corners = np.zeros((3 * len(self.faces), 3), np.float32)
        primitive = pyrender.Primitive(
            positions=corners,
            normals=corners,
            color_0=rgba[self.faces].reshape(-1, 4),
            material=pyrender.MetallicRoughnessMaterial(
                alphaMode="BLEND",
                baseColorFactor=[1.0, 1.0, 1.0, 1.0],
                metallicFactor=0.2,
                roughnessFactor=0.8,
            ),  # what from_trimesh gives a vertex-coloured mesh
            mode=4,  # triangles
        )
        self.scene = OffscreenScene(height, width, ambient=0.4, lights=smplerx_lights(pyrender))
        self.body = self.scene.add_mesh(primitive)

    def render(self, vertices: np.ndarray | None, focal: np.ndarray, princpt: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8; `vertices` None or empty gives a black frame."""
        if vertices is None or len(vertices) == 0:
            return np.zeros((self.scene.height, self.scene.width, 3), np.uint8)
        corners = camera_to_opengl_points(vertices)[self.faces]
        self.body.place(corners.reshape(-1, 3), np.repeat(face_normals(corners), 3, axis=0))
        self.scene.set_camera(float(focal[0]), float(focal[1]), float(princpt[0]), float(princpt[1]))
        colour, drawn = self.scene.render()
        return colour * drawn[:, :, None].astype(np.uint8)

    def close(self) -> None:
        self.scene.close()
