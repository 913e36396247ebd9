"""The object catalogue: >= 30 kinds of household items in 6 categories.

Kinds come from two sources: models shipped with ``pybullet_data`` (duck, teddy, lego,
jenga, mug, random blobs) and procedural shapes built in memory from primitives or
from generated meshes (revolved profiles for mugs, cups, bowls and bottles; ellipsoids
and capsules for soft items; boxes for books and cartons). Every kind is sized so that
the Panda's 8 cm gripper can pinch it from above across its narrow side.

Six kinds (one per category) are *held out*: the ``train`` profile never spawns them,
the ``test`` profile does, so detectors can be evaluated on unseen shapes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

__all__ = ["CATEGORIES", "ObjectKind", "KINDS", "KIND_BY_NAME", "kinds_for_profile",
           "spawn_object", "SpawnedObject"]

CATEGORIES: tuple[str, ...] = ("toy", "kitchenware", "stationery", "bottle", "box", "soft")


@dataclass(frozen=True)
class ObjectKind:
    """One kind of object.

    Attributes:
        name: unique kind name, e.g. ``"mug"``.
        category: one of :data:`CATEGORIES`.
        held_out: True when the ``train`` profile never spawns this kind.
        shape: how to build it: ``("urdf", relpath, scale)``, ``("box", hx, hy, hz)``,
            ``("cylinder", r, h)``, ``("sphere", r)`` or ``("mesh", builder_name, params)``.
        mass: nominal mass in kg (randomized by the physics randomizer).
        colour: nominal RGBA in [0, 1] (randomized by the appearance randomizer).
        rest_rpy: roll, pitch, yaw (rad) of a stable resting orientation of the body
            frame (meshes authored y-up need a quarter turn); placement adds a yaw.
    """

    name: str
    category: str
    held_out: bool
    shape: tuple
    mass: float
    colour: tuple[float, float, float, float] = (0.8, 0.8, 0.8, 1.0)
    rest_rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)


def _k(name, cat, shape, mass, colour=(0.8, 0.8, 0.8, 1.0), held_out=False,
       rest_rpy=(0.0, 0.0, 0.0)):
    return ObjectKind(name, cat, held_out, shape, mass, colour, rest_rpy)


KINDS: tuple[ObjectKind, ...] = (
    # toy
    _k("duck", "toy", ("urdf", "duck_vhacd.urdf", 0.7), 0.08, (1.0, 0.85, 0.1, 1),
       rest_rpy=(np.pi / 2, 0.0, 0.0)),
    _k("lego_brick", "toy", ("urdf", "lego/lego.urdf", 1.6), 0.05, (0.9, 0.1, 0.1, 1)),
    _k("toy_block", "toy", ("box", 0.022, 0.022, 0.022), 0.05, (0.2, 0.5, 1.0, 1)),
    _k("toy_cylinder", "toy", ("cylinder", 0.022, 0.06), 0.05, (0.2, 0.9, 0.3, 1)),
    _k("toy_prism", "toy", ("mesh", "prism", (0.06, 0.05, 0.05)), 0.05, (0.9, 0.4, 0.9, 1)),
    _k("blob_a", "toy", ("urdf", "random_urdfs/000/000.urdf", 0.6), 0.06, (0.1, 0.3, 0.9, 1)),
    _k("blob_b", "toy", ("urdf", "random_urdfs/001/001.urdf", 0.6), 0.06, (0.9, 0.5, 0.1, 1)),
    _k("blob_c", "toy", ("urdf", "random_urdfs/003/003.urdf", 0.6), 0.06, (0.5, 0.9, 0.9, 1),
       held_out=True, rest_rpy=(0.0, np.pi / 2, 0.0)),
    # kitchenware
    _k("mug", "kitchenware", ("urdf", "objects/mug.urdf", 0.72), 0.25, (0.9, 0.9, 0.85, 1)),
    _k("proc_mug", "kitchenware", ("mesh", "mug", (0.032, 0.09)), 0.2, (0.3, 0.6, 0.9, 1)),
    _k("cup", "kitchenware", ("mesh", "cup", (0.03, 0.022, 0.08)), 0.08, (0.95, 0.95, 0.9, 1)),
    _k("jar", "kitchenware", ("mesh", "jar", (0.032, 0.1)), 0.2, (0.7, 0.9, 0.8, 1)),
    _k("bowl", "kitchenware", ("mesh", "bowl", (0.036, 0.05)), 0.12, (0.9, 0.6, 0.4, 1),
       held_out=True),
    # stationery
    _k("jenga_block", "stationery", ("urdf", "jenga/jenga.urdf", 0.9), 0.04, (0.85, 0.7, 0.5, 1)),
    _k("eraser", "stationery", ("box", 0.03, 0.015, 0.012), 0.03, (1.0, 0.6, 0.7, 1)),
    _k("glue_stick", "stationery", ("cylinder", 0.014, 0.095), 0.04, (0.9, 0.9, 0.2, 1)),
    _k("stapler", "stationery", ("box", 0.07, 0.02, 0.025), 0.2, (0.2, 0.2, 0.25, 1)),
    _k("memo_pad", "stationery", ("box", 0.05, 0.035, 0.012), 0.06, (1.0, 1.0, 0.5, 1)),
    _k("marker", "stationery", ("capsule_x", 0.012, 0.12), 0.03, (0.1, 0.1, 0.1, 1),
       held_out=True),
    # bottle
    _k("bottle", "bottle", ("mesh", "bottle", (0.03, 0.2)), 0.25, (0.3, 0.7, 0.4, 1)),
    _k("small_bottle", "bottle", ("mesh", "bottle", (0.024, 0.13)), 0.15, (0.6, 0.3, 0.2, 1)),
    _k("tall_bottle", "bottle", ("mesh", "bottle", (0.026, 0.24)), 0.25, (0.2, 0.3, 0.8, 1)),
    _k("can", "bottle", ("cylinder", 0.032, 0.12), 0.2, (0.8, 0.1, 0.1, 1)),
    _k("spray_bottle", "bottle", ("mesh", "spray", (0.03, 0.2)), 0.2, (0.2, 0.8, 0.9, 1),
       held_out=True),
    # box (books and boxes)
    _k("book", "box", ("box", 0.085, 0.032, 0.02), 0.3, (0.5, 0.1, 0.1, 1)),
    _k("cardboard_box", "box", ("box", 0.05, 0.03, 0.035), 0.1, (0.7, 0.55, 0.35, 1)),
    _k("cube_box", "box", ("box", 0.03, 0.03, 0.03), 0.1, (0.9, 0.9, 0.9, 1)),
    _k("tissue_box", "box", ("box", 0.07, 0.032, 0.04), 0.1, (0.4, 0.7, 0.9, 1)),
    _k("shoe_box", "box", ("box", 0.09, 0.034, 0.045), 0.2, (0.95, 0.5, 0.2, 1),
       held_out=True),
    # soft
    _k("teddy", "soft", ("urdf", "teddy_vhacd.urdf", 0.7), 0.1, (0.6, 0.4, 0.2, 1)),
    _k("plush_ball", "soft", ("sphere", 0.032), 0.05, (0.9, 0.3, 0.5, 1)),
    _k("pillow", "soft", ("mesh", "ellipsoid", (0.06, 0.034, 0.03)), 0.06, (0.8, 0.8, 1.0, 1)),
    _k("sock", "soft", ("capsule_x", 0.02, 0.13), 0.04, (0.3, 0.3, 0.6, 1)),
    _k("beanbag", "soft", ("mesh", "ellipsoid", (0.045, 0.034, 0.025)), 0.1,
       (0.4, 0.8, 0.3, 1), held_out=True),
)
KIND_BY_NAME: dict[str, ObjectKind] = {k.name: k for k in KINDS}


def kinds_for_profile(include_held_out: bool) -> list[ObjectKind]:
    """Kinds a profile may spawn: every kind, or only the non-held-out ones."""
    return [k for k in KINDS if include_held_out or not k.held_out]


# ---------------------------------------------------------------- procedural meshes
def _revolve(profile: list[tuple[float, float]], segments: int = 16):
    """Surface of revolution about +z.

    Args:
        profile: ``(radius, z)`` points from bottom centre to top (metres).
        segments: angular resolution.

    Returns:
        vertices (V, 3), indices (3T,), normals (V, 3), uvs (V, 2) as Python lists.
    """
    prof = np.asarray(profile, dtype=np.float64)
    n = len(prof)
    th = np.linspace(0, 2 * np.pi, segments + 1)
    verts, uvs = [], []
    zmin, zmax = prof[:, 1].min(), prof[:, 1].max()
    for j in range(segments + 1):
        c, s = np.cos(th[j]), np.sin(th[j])
        for i in range(n):
            r, z = prof[i]
            verts.append((r * c, r * s, z))
            uvs.append((j / segments, (z - zmin) / max(zmax - zmin, 1e-6)))
    idx = []
    for j in range(segments):
        for i in range(n - 1):
            a, b = j * n + i, (j + 1) * n + i
            idx += [a, b, a + 1, a + 1, b, b + 1]
    V = np.asarray(verts)
    normals = V.copy()
    normals[:, 2] = 0.0
    nn = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = np.where(nn > 1e-9, normals / np.maximum(nn, 1e-9), np.array([0.0, 0.0, 1.0]))
    return V.tolist(), idx, normals.tolist(), uvs


def _ellipsoid(a: float, b: float, c: float, segments: int = 14):
    t = np.linspace(0, np.pi, segments // 2 + 1)
    prof = [(np.sin(v), -np.cos(v)) for v in t]
    V, idx, N, uv = _revolve(prof, segments)
    V = (np.asarray(V) * [a, b, c]).tolist()
    return V, idx, N, uv


def _box_mesh(cx, cy, cz, hx, hy, hz):
    corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], float)
    V = corners * [hx, hy, hz] + [cx, cy, cz]
    faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    idx = []
    for a, b, c, d in faces:
        idx += [a, b, c, a, c, d]
    return V.tolist(), idx, (corners / np.sqrt(3)).tolist(), [(0.5 + 0.5 * x, 0.5 + 0.5 * z)
                                                            for x, _, z in corners]


def _merge(*parts):
    V, I, N, U = [], [], [], []
    for v, i, n, u in parts:
        off = len(V)
        V += list(v)
        I += [off + k for k in i]
        N += list(n)
        U += list(u)
    return V, I, N, U


def _mesh(builder: str, params: tuple):
    """Vertices, indices, normals and uvs for a procedural mesh, centred on its bbox."""
    if builder == "mug":
        r, h = params
        body = _revolve([(0, 0), (r, 0), (r, h), (r * 0.88, h), (r * 0.88, 0.01), (0, 0.01)])
        handle = _box_mesh(r + 0.012, 0, h * 0.5, 0.006, 0.005, h * 0.3)
        parts = _merge(body, handle, _box_mesh(r + 0.005, 0, h * 0.78, 0.01, 0.005, 0.005),
                       _box_mesh(r + 0.005, 0, h * 0.22, 0.01, 0.005, 0.005))
    elif builder == "cup":
        r_top, r_bot, h = params
        parts = _revolve([(0, 0), (r_bot, 0), (r_top, h), (r_top * 0.9, h), (r_bot * 0.9, 0.008),
                          (0, 0.008)])
    elif builder == "jar":
        r, h = params
        parts = _revolve([(0, 0), (r, 0), (r, h * 0.82), (r * 0.85, h * 0.86), (r * 0.9, h * 0.87),
                          (r * 0.9, h), (0, h)])
    elif builder == "bowl":
        r, h = params
        t = np.linspace(0, np.pi / 2, 6)
        outer = [(r * 0.55 + r * 0.45 * np.sin(v), h * (1 - np.cos(v))) for v in t]
        parts = _revolve([(0, 0)] + outer + [(r * 0.9, h), (r * 0.45, 0.012), (0, 0.012)])
    elif builder == "bottle":
        r, h = params
        parts = _revolve([(0, 0), (r, 0), (r, h * 0.6), (r * 0.8, h * 0.72), (r * 0.38, h * 0.82),
                          (r * 0.38, h * 0.97), (r * 0.42, h * 0.97), (r * 0.42, h), (0, h)])
    elif builder == "spray":
        r, h = params
        body = _revolve([(0, 0), (r, 0), (r, h * 0.7), (r * 0.5, h * 0.78), (r * 0.5, h * 0.8),
                         (0, h * 0.8)])
        head = _box_mesh(0.008, 0, h * 0.9, 0.028, 0.012, h * 0.1)
        parts = _merge(body, head)
    elif builder == "ellipsoid":
        parts = _ellipsoid(*params)
    elif builder == "prism":
        lx, ly, lz = params
        V = np.array([[-lx / 2, -ly / 2, 0], [-lx / 2, ly / 2, 0], [-lx / 2, 0, lz],
                      [lx / 2, -ly / 2, 0], [lx / 2, ly / 2, 0], [lx / 2, 0, lz]])
        I = [0, 2, 1, 3, 4, 5, 0, 3, 5, 0, 5, 2, 1, 2, 5, 1, 5, 4, 0, 1, 4, 0, 4, 3]
        parts = (V.tolist(), I, (V / np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-9)
                                  ).tolist(), [(v[0] / lx + 0.5, v[2] / lz) for v in V])
    else:  # pragma: no cover - catalogue is fixed
        raise ValueError(f"unknown mesh builder {builder!r}")
    V, I, N, U = parts
    V = np.asarray(V)
    centre = 0.5 * (V.min(axis=0) + V.max(axis=0))
    return (V - centre).tolist(), I, N, U


@dataclass
class SpawnedObject:
    """An object instance in a world.

    Attributes:
        uid: PyBullet body id.
        kind: its :class:`ObjectKind`.
        extent: ``(3,)`` full bounding-box size (m) in the object frame.
        centre_offset: ``(3,)`` bbox centre in the body (COM) frame, metres.
        scale: the size multiplier applied at spawn.
        rest_R: ``(3, 3)`` resting orientation of the body frame (before the yaw).
        rest_extent: ``(3,)`` bbox size along world x, y, z when resting at yaw 0.
    """

    uid: int
    kind: ObjectKind
    extent: np.ndarray
    centre_offset: np.ndarray
    scale: float
    rest_R: np.ndarray = None
    rest_extent: np.ndarray = None

    def __post_init__(self):
        if self.rest_R is None:
            from katazuke.geometry import quat_to_matrix
            import pybullet as p

            self.rest_R = quat_to_matrix(p.getQuaternionFromEuler(self.kind.rest_rpy))
        self.rest_extent = np.abs(self.rest_R) @ self.extent


def spawn_object(client, kind: ObjectKind, position, quat_xyzw, scale: float,
                 data_path: str, shape_cache: dict) -> SpawnedObject:
    """Create one object body.

    Args:
        client: the BulletClient.
        kind: what to build.
        position: ``(3,)`` world position of the bounding-box centre (m).
        quat_xyzw: ``(4,)`` orientation.
        scale: size multiplier (1 = catalogue size).
        data_path: ``pybullet_data`` directory.
        shape_cache: per-client dict reusing collision/visual shape ids between episodes
            of the same simulation (cleared by the caller on ``resetSimulation``).

    Returns:
        The spawned object (its body frame is PyBullet's base inertial frame).
    """
    import pybullet as p

    shape = kind.shape
    if shape[0] == "urdf":
        uid = client.loadURDF(os.path.join(data_path, shape[1]), list(position), list(quat_xyzw),
                              globalScaling=float(shape[2] * scale))
    else:
        key = (kind.name, round(scale, 4))
        if key not in shape_cache:
            s = scale
            if shape[0] == "box":
                he = [shape[1] * s, shape[2] * s, shape[3] * s]
                col = client.createCollisionShape(p.GEOM_BOX, halfExtents=he)
                vis = client.createVisualShape(p.GEOM_BOX, halfExtents=he)
            elif shape[0] == "cylinder":
                col = client.createCollisionShape(p.GEOM_CYLINDER, radius=shape[1] * s,
                                                  height=shape[2] * s)
                vis = client.createVisualShape(p.GEOM_CYLINDER, radius=shape[1] * s,
                                               length=shape[2] * s)
            elif shape[0] == "sphere":
                col = client.createCollisionShape(p.GEOM_SPHERE, radius=shape[1] * s)
                vis = client.createVisualShape(p.GEOM_SPHERE, radius=shape[1] * s)
            elif shape[0] == "capsule_x":
                r, length = shape[1] * s, shape[2] * s
                q = p.getQuaternionFromEuler([0, np.pi / 2, 0])
                col = client.createCollisionShape(p.GEOM_CAPSULE, radius=r, height=length - 2 * r,
                                                  collisionFrameOrientation=q)
                vis = client.createVisualShape(p.GEOM_CAPSULE, radius=r, length=length - 2 * r,
                                               visualFrameOrientation=q)
            else:
                V, I, N, U = _mesh(shape[1], shape[2])
                V = (np.asarray(V) * s).tolist()
                col = client.createCollisionShape(p.GEOM_MESH, vertices=V)
                vis = client.createVisualShape(p.GEOM_MESH, vertices=V, indices=I, normals=N,
                                               uvs=U)
            shape_cache[key] = (col, vis)
        col, vis = shape_cache[key]
        uid = client.createMultiBody(baseMass=kind.mass, baseCollisionShapeIndex=col,
                                     baseVisualShapeIndex=vis, basePosition=list(position),
                                     baseOrientation=list(quat_xyzw))
    # bbox in the body frame, measured at the spawn orientation
    lo, hi = (np.asarray(v) for v in client.getAABB(uid))
    pos, orn = client.getBasePositionAndOrientation(uid)
    from katazuke.geometry import quat_to_matrix

    R = quat_to_matrix(orn)
    # AABB of an axis-aligned spawn (identity or yaw only) is tight in the body frame
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])
                        for z in (lo[2], hi[2])]) - np.asarray(pos)
    local = corners @ R
    extent = local.max(axis=0) - local.min(axis=0)
    centre = 0.5 * (local.max(axis=0) + local.min(axis=0))
    client.changeDynamics(uid, -1, mass=kind.mass, lateralFriction=1.0, spinningFriction=0.002,
                          rollingFriction=0.0005, restitution=0.05,
                          activationState=p.ACTIVATION_STATE_ENABLE_SLEEPING)
    return SpawnedObject(uid=uid, kind=kind, extent=extent, centre_offset=centre, scale=scale)
