"""The HaMeR hand picture: MANO meshes placed with their full-image cameras, right hands light red,
left hands light green, lit like HaMeR's renderer, on black."""

from __future__ import annotations

from typing import Any

import numpy as np

from realisdance_cli.renderers.scene import OffscreenScene, camera_to_opengl, hamer_lights, import_pyrender

# The faces HaMeR's renderer appends to close the MANO wrist (indices into MANO's 778 vertices).
WATERTIGHT_FACES = np.array(
    [[92, 38, 234], [234, 38, 239], [38, 122, 239], [239, 122, 279], [122, 118, 279], [279, 118, 215],
     [118, 117, 215], [215, 117, 214], [117, 119, 214], [214, 119, 121], [119, 120, 121], [121, 120, 78],
     [120, 108, 78], [78, 108, 79]]
)  # fmt: skip
RIGHT_COLOUR = (1.0, 0.5, 0.5)
LEFT_COLOUR = (0.5, 1.0, 0.5)


class HandRenderer:
    """Renders hands at one frame size; left hands use the faces with their winding reversed."""

    def __init__(self, height: int, width: int, faces: np.ndarray, renderer: Any = None) -> None:
        self.pyrender = import_pyrender()
        closed = np.concatenate([np.asarray(faces), WATERTIGHT_FACES], axis=0)
        self.faces = {True: closed, False: closed[:, [0, 2, 1]]}
        self.scene = OffscreenScene(
            height,
            width,
            ambient=0.3,
            lights=hamer_lights(self.pyrender),
            pyrender=self.pyrender,
            renderer=renderer,
        )

    def render(
        self,
        vertices: np.ndarray,
        cam_t: np.ndarray,
        is_right: np.ndarray,
        focal: float,
        focal_y: float | None = None,
    ) -> np.ndarray:
        """(H, W, 3) uint8 of hands `vertices` (K, 778, 3) in their own frame (left hands already
        mirrored back), translated by `cam_t` (K, 3), seen by a camera centred on the frame
        (`focal_y` differs from `focal` only for a frame resized to another aspect); no hands
        gives a black frame."""
        import trimesh

        if len(vertices) == 0:
            return np.zeros((self.scene.height, self.scene.width, 3), np.uint8)
        meshes = []
        for hand, translation, right in zip(vertices, cam_t, is_right, strict=True):
            base = RIGHT_COLOUR if right else LEFT_COLOUR
            colours = np.array([(*base, 1.0)] * len(hand))
            mesh = trimesh.Trimesh(hand + translation, self.faces[bool(right)].copy(), vertex_colors=colours)
            meshes.append(self.pyrender.Mesh.from_trimesh(camera_to_opengl(mesh)))
        self.scene.set_meshes(meshes)
        height, width = self.scene.height, self.scene.width
        self.scene.set_camera(
            focal, focal if focal_y is None else focal_y, width / 2.0, height / 2.0, zfar=1e12
        )
        picture, _ = self.scene.render()
        return picture

    def close(self) -> None:
        self.scene.close()
