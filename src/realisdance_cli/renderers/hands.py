"""The HaMeR hand picture: MANO meshes placed with their full-image cameras, right hands light red,
left hands light green, lit like HaMeR's renderer, on black."""

from __future__ import annotations

import numpy as np

from realisdance_cli.renderers.scene import (
    MeshSlot,
    OffscreenScene,
    camera_to_opengl_points,
    hamer_lights,
    import_pyrender,
    smooth_normals,
)

# The faces HaMeR's renderer appends to close the MANO wrist (indices into MANO's 778 vertices).
WATERTIGHT_FACES = np.array(
    [[92, 38, 234], [234, 38, 239], [38, 122, 239], [239, 122, 279], [122, 118, 279], [279, 118, 215],
     [118, 117, 215], [215, 117, 214], [117, 119, 214], [214, 119, 121], [119, 120, 121], [121, 120, 78],
     [120, 108, 78], [78, 108, 79]]
)  # fmt: skip
RIGHT_COLOUR = (1.0, 0.5, 0.5)
LEFT_COLOUR = (0.5, 1.0, 0.5)


class HandRenderer:
    """Renders hands at one frame size; left hands use the faces with their winding reversed.

    The hands of a frame are drawn as one mesh, kept for the video per sequence of sides seen
    (right, left, ...) and built once as HaMeR's renderer builds each hand
    (`pyrender.Mesh.from_trimesh`, smooth shading); a render rewrites positions and trimesh's
    vertex normals. One draw instead of one per hand: hands share no vertex, so the picture is
    the same (pyrender gives the original's separate hand meshes no order either)."""

    def __init__(self, height: int, width: int, faces: np.ndarray) -> None:
        self.pyrender = import_pyrender()
        closed = np.concatenate([np.asarray(faces), WATERTIGHT_FACES], axis=0)
        self.faces = {True: closed, False: closed[:, [0, 2, 1]]}
        self.hand_size = int(closed.max()) + 1
        self.scene = OffscreenScene(height, width, ambient=0.3, lights=hamer_lights(self.pyrender))
        self._slots: dict[tuple[bool, ...], MeshSlot] = {}

    def _slot(self, sides: tuple[bool, ...]) -> MeshSlot:
        import trimesh

        if sides not in self._slots:
            size = self.hand_size
            faces = np.concatenate([self.faces[right] + i * size for i, right in enumerate(sides)])
            colours = np.concatenate(
                [np.tile((*(RIGHT_COLOUR if right else LEFT_COLOUR), 1.0), (size, 1)) for right in sides]
            )
            template = trimesh.Trimesh(
                np.zeros((len(colours), 3)), faces, vertex_colors=colours, process=False
            )
            self._slots[sides] = self.scene.add_mesh(self.pyrender.Mesh.from_trimesh(template).primitives[0])
        return self._slots[sides]

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
        if len(vertices) == 0:
            return np.zeros((self.scene.height, self.scene.width, 3), np.uint8)
        sides = tuple(bool(right) for right in is_right)
        positions = [camera_to_opengl_points(hand + t) for hand, t in zip(vertices, cam_t, strict=True)]
        normals = [smooth_normals(p, self.faces[right]) for p, right in zip(positions, sides, strict=True)]
        self._slot(sides).place(np.concatenate(positions), np.concatenate(normals))
        centre_x, centre_y = self.scene.width / 2.0, self.scene.height / 2.0
        self.scene.set_camera(focal, focal if focal_y is None else focal_y, centre_x, centre_y, zfar=1e12)
        picture, _ = self.scene.render()
        return picture

    def close(self) -> None:
        self.scene.close()
