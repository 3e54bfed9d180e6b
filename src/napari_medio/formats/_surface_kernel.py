"""Compiled kernel for :func:`napari_medio.formats._surfaces._split` (needs numba).

Splitting VTK's one multi-label surface into compacted per-segment meshes is a handful
of dependent gathers and scatters over every triangle corner (select the faces of each
segment, flip the second side, mark the used vertices, number them in point order,
renumber the corners, gather and map the points).  In numpy each of those is a separate
pass over ~10^6 corners with its own temporary arrays, which together cost a third of
``vtkSurfaceNets3D``'s own run; here they are three loops over the faces and one over
the used points, with no temporaries larger than the output.

The function is compiled on first use (``cache=True``: once per machine and argument
types; later processes load the compiled code from numba's cache).
"""
from __future__ import annotations

import numba
import numpy as np

__all__ = ["split_faces"]


@numba.njit(cache=True, nogil=True)
def split_faces(tris, labs, lut, nseg, pts, mat, use):  # pragma: no cover - compiled
    """Per-segment triangles and points of a multi-label triangle mesh.

    ``tris`` (n, 3) corner indices; ``labs`` (n, k) the label on each side of each face
    (k = 2 for surface nets' ``BoundaryLabels``, 1 for one label per face); ``lut`` maps a
    label value to its segment number 0..nseg-1, or -1 (labels outside the table are not
    wanted).  Segment s gets its side-0 faces, then its side-1 faces with the winding
    flipped (a, c, b), each in face order; its vertices are numbered from 0 in point order.
    Points are mapped by ``mat`` (3, 4), using only the terms where ``use`` (3, 4) is true
    (column by column, as ``_surfaces._affine`` does, so the result is the same).

    Returns ``(faces, points, face_start, point_start)``: faces (m, 3) int64 in per-segment
    numbering, points (u, 3) float64, and the (nseg + 1) row offsets of each segment in them.
    """
    n = labs.shape[0]
    k = labs.shape[1]
    nl = lut.shape[0]
    nslot = nseg * k
    start = np.zeros(nslot + 1, np.int64)
    if k == 2:
        for f in range(n):
            l0 = labs[f, 0]
            l1 = labs[f, 1]
            if l0 >= 0 and l0 < nl:
                s = lut[l0]
                if s >= 0:
                    start[2 * s + 1] += 1
            if l1 >= 0 and l1 < nl:
                s = lut[l1]
                if s >= 0:
                    start[2 * s + 2] += 1
    else:
        for f in range(n):
            l0 = labs[f, 0]
            if l0 >= 0 and l0 < nl:
                s = lut[l0]
                if s >= 0:
                    start[s + 1] += 1
    for i in range(nslot):
        start[i + 1] += start[i]
    m = start[nslot]
    sel = np.empty(m, np.int32)  # the faces of each slot, in face order
    pos = start[:nslot].copy()
    if k == 2:
        for f in range(n):
            l0 = labs[f, 0]
            l1 = labs[f, 1]
            if l0 >= 0 and l0 < nl:
                s = lut[l0]
                if s >= 0:
                    r = pos[2 * s]
                    pos[2 * s] = r + 1
                    sel[r] = f
            if l1 >= 0 and l1 < nl:
                s = lut[l1]
                if s >= 0:
                    r = pos[2 * s + 1]
                    pos[2 * s + 1] = r + 1
                    sel[r] = f
    else:
        for f in range(n):
            l0 = labs[f, 0]
            if l0 >= 0 and l0 < nl:
                s = lut[l0]
                if s >= 0:
                    r = pos[s]
                    pos[s] = r + 1
                    sel[r] = f
    npts = pts.shape[0]
    remap = np.full(npts, -1, np.int32)
    cap = 0
    for s in range(nseg):
        cap += min(3 * (start[(s + 1) * k] - start[s * k]), npts)
    used = np.empty(cap, np.int32)
    faces = np.empty((m, 3), np.int64)
    face_start = np.empty(nseg + 1, np.int64)
    point_start = np.empty(nseg + 1, np.int64)
    u = 0
    for s in range(nseg):
        r0 = start[s * k]
        r1 = start[(s + 1) * k]
        face_start[s] = r0
        point_start[s] = u
        u0 = u
        lo = npts
        hi = -1
        for r in range(r0, r1):
            f = sel[r]
            for c in range(3):
                v = tris[f, c]
                if remap[v] < 0:
                    remap[v] = 0
                    used[u] = v
                    u += 1
                    if v < lo:
                        lo = v
                    if v > hi:
                        hi = v
        cnt = u - u0
        if cnt == 0:
            continue
        if hi - lo + 1 <= 32 * cnt:
            j = 0
            for v in range(lo, hi + 1):
                if remap[v] >= 0:
                    used[u0 + j] = v
                    remap[v] = j
                    j += 1
        else:
            run = used[u0:u]
            run.sort()
            for j in range(cnt):
                remap[run[j]] = j
        rf = r1 if k == 1 else start[s * k + 1]  # side-1 rows (flipped) from here
        for r in range(r0, rf):
            f = sel[r]
            faces[r, 0] = remap[tris[f, 0]]
            faces[r, 1] = remap[tris[f, 1]]
            faces[r, 2] = remap[tris[f, 2]]
        for r in range(rf, r1):
            f = sel[r]
            faces[r, 0] = remap[tris[f, 0]]
            faces[r, 1] = remap[tris[f, 2]]
            faces[r, 2] = remap[tris[f, 1]]
        for j in range(u0, u):
            remap[used[j]] = -1
    face_start[nseg] = m
    point_start[nseg] = u
    out = np.empty((u, 3), np.float64)
    for j in range(u):
        v = used[j]
        p0 = np.float64(pts[v, 0])
        p1 = np.float64(pts[v, 1])
        p2 = np.float64(pts[v, 2])
        for c in range(3):
            first = True
            acc = 0.0
            for t in range(3):
                if use[c, t]:
                    term = (p0 if t == 0 else (p1 if t == 1 else p2)) * mat[c, t]
                    if first:
                        acc = term
                        first = False
                    else:
                        acc = acc + term
            if use[c, 3]:
                acc = acc + mat[c, 3]
            out[j, c] = acc
    return faces, out, face_start, point_start
