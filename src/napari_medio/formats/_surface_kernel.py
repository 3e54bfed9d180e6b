"""Compiled kernels for :func:`napari_medio.formats._surfaces._split` (needs numba).

Splitting VTK's one multi-label surface into compacted per-segment meshes is a handful
of dependent gathers and scatters over every triangle corner (select each segment's
faces, flip the second side, mark the used vertices, number them in point order,
renumber the corners, gather and map the points).  In numpy each of those is a separate
pass over ~10^6 corners with its own temporary arrays, and together they cost a third of
``vtkSurfaceNets3D``'s own run; here they are two loops over the face labels, two over
each segment's faces and one over its used points, with no temporaries larger than the
output.  Segments are independent after :func:`select_faces`, so groups of them can run
:func:`segment_meshes` on several threads (the kernels release the GIL).

Compiled on first use (``cache=True``: once per machine and argument types; later
processes load the machine code from numba's cache).
"""
from __future__ import annotations

import numba
import numpy as np

__all__ = ["select_faces", "segment_meshes"]


@numba.njit(cache=True, nogil=True)
def select_faces(labs, lut, nseg):  # pragma: no cover - compiled
    """The faces of each (segment, side) slot, in face order.

    ``labs`` (n, k): the label on each side of each face (k = 2 for surface nets'
    ``BoundaryLabels``, 1 for one label per face); ``lut`` maps a label value to its
    segment number 0..nseg-1, or -1 (labels outside the table are not wanted).
    Returns ``(start, sel)``: slot ``s * k + side`` holds the faces
    ``sel[start[slot]:start[slot + 1]]`` (int32 face numbers).
    """
    n = labs.shape[0]
    k = labs.shape[1]
    nl = lut.shape[0]
    nslot = nseg * k
    start = np.zeros(nslot + 1, np.int64)
    if k == 2:  # both sides written out: a third of the time of a loop over the sides
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
    sel = np.empty(start[nslot], np.int32)
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
    return start, sel


@numba.njit(cache=True, nogil=True, inline="always")
def _row(p0, p1, p2, u0, u1, u2, u3, m0, m1, m2, m3):  # pragma: no cover - compiled
    """One output coordinate: the used terms in order, then the translation (as _affine)."""
    if u0:
        acc = p0 * m0
        if u1:
            acc = acc + p1 * m1
        if u2:
            acc = acc + p2 * m2
    elif u1:
        acc = p1 * m1
        if u2:
            acc = acc + p2 * m2
    else:
        acc = p2 * m2
    if u3:
        acc = acc + m3
    return acc


@numba.njit(cache=True, nogil=True)
def segment_meshes(tris, sel, start, k, s0, s1, faces, pts, mat, use):  # pragma: no cover
    """Segments ``s0..s1-1``: their triangles and points, compacted.

    ``tris`` (n, 3) corner indices; ``sel``/``start`` from :func:`select_faces`.  Segment s
    gets its side-0 faces, then its side-1 faces with the winding flipped (a, c, b), each
    in face order, written to ``faces[start[s * k]:start[(s + 1) * k]]`` (int64) in the
    segment's own numbering: its vertices numbered from 0 in point order.  Points are mapped
    by ``mat`` (3, 4), using only the terms where ``use`` (3, 4) is true, column by column
    (as ``_surfaces._affine`` does, so the result is the same to the bit).

    Returns ``(points, point_start)``: the groups's points (u, 3) float64, segment s's rows
    being ``point_start[s - s0]:point_start[s - s0 + 1]``.
    """
    npts = pts.shape[0]
    remap = np.full(npts, -1, np.int32)  # -1: not used by this segment, else its number
    cap = 0
    for s in range(s0, s1):
        cap += min(3 * (start[(s + 1) * k] - start[s * k]), npts)
    used = np.empty(cap, np.int32)  # each segment's vertices, one run per segment
    point_start = np.empty(s1 - s0 + 1, np.int64)
    u = 0
    for s in range(s0, s1):
        r0 = start[s * k]
        r1 = start[(s + 1) * k]
        point_start[s - s0] = u
        u0 = u
        lo = npts
        hi = -1
        for r in range(r0, r1):  # mark the vertices
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
        if hi - lo + 1 <= 32 * cnt:  # a compact range: scan it for the marks, in order
            j = 0
            for v in range(lo, hi + 1):
                if remap[v] >= 0:
                    used[u0 + j] = v
                    remap[v] = j
                    j += 1
        else:  # few vertices spread over many points: sort them
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
    point_start[s1 - s0] = u
    out = np.empty((u, 3), np.float64)
    a0, a1, a2, a3 = use[0, 0], use[0, 1], use[0, 2], use[0, 3]
    b0, b1, b2, b3 = use[1, 0], use[1, 1], use[1, 2], use[1, 3]
    c0, c1, c2, c3 = use[2, 0], use[2, 1], use[2, 2], use[2, 3]
    x0, x1, x2, x3 = mat[0, 0], mat[0, 1], mat[0, 2], mat[0, 3]
    y0, y1, y2, y3 = mat[1, 0], mat[1, 1], mat[1, 2], mat[1, 3]
    z0, z1, z2, z3 = mat[2, 0], mat[2, 1], mat[2, 2], mat[2, 3]
    for j in range(u):
        v = used[j]
        p0 = np.float64(pts[v, 0])
        p1 = np.float64(pts[v, 1])
        p2 = np.float64(pts[v, 2])
        out[j, 0] = _row(p0, p1, p2, a0, a1, a2, a3, x0, x1, x2, x3)
        out[j, 1] = _row(p0, p1, p2, b0, b1, b2, b3, y0, y1, y2, y3)
        out[j, 2] = _row(p0, p1, p2, c0, c1, c2, c3, z0, z1, z2, z3)
    return out, point_start
