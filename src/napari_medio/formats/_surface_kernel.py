"""Compiled kernels for :func:`napari_medio.formats.surfaces._split` (needs numba).

Splitting VTK's one multi-label surface into compacted per-segment meshes is a chain of
dependent gathers and scatters over every triangle corner: select each segment's faces,
flip the second side, mark the used vertices, number them in point order, renumber the
corners, gather and map the points.  In numpy each link is a separate pass over ~10^6
corners with its own temporaries (a sort, a (segments x points) mask, index arrays), and
together they cost a third of ``vtkSurfaceNets3D``'s own run; no numpy or VTK call does
the whole chain.  Here it is two loops over the face labels, two over each segment's
corners, one over a bitmap of its vertices and one over its points, with no temporary
larger than a bit per point.

Compiled on first use with ``cache=True``: once per machine and argument types (a few
seconds); later processes load the machine code from numba's cache.
"""
from __future__ import annotations

import numba
import numpy as np

__all__ = ["segment_meshes", "select_faces"]

# Lowest set bit -> its index, by a de Bruijn sequence (no count-trailing-zeros in numba).
_DEBRUIJN_MUL = np.uint64(0x03F79D71B4CB0A89)
_DEBRUIJN = np.zeros(64, np.int64)
for _i in range(64):
    _DEBRUIJN[(((1 << _i) * 0x03F79D71B4CB0A89) & 0xFFFFFFFFFFFFFFFF) >> 58] = _i
del _i


@numba.njit(cache=True, nogil=True)
def select_faces(labs, lut, nseg, tris):  # pragma: no cover - compiled
    """Each segment's faces, grouped: ``(start, faces)``.

    ``labs`` (n, k): the label on each side of each face (k = 2 for surface nets'
    ``BoundaryLabels``, 1 for one label per face); ``lut`` maps a label value to its
    segment number 0..nseg-1, or -1 (labels outside the table are not wanted); ``tris``
    (n, 3) the faces' corners.  Slot ``s * k + side`` gets the faces whose side ``side``
    is segment s, in face order, as rows ``start[slot]:start[slot + 1]`` of ``faces``
    (int64 corners, side 1's winding flipped: (a, c, b)).
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
    faces = np.empty((start[nslot], 3), np.int64)
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
                    faces[r, 0] = tris[f, 0]
                    faces[r, 1] = tris[f, 1]
                    faces[r, 2] = tris[f, 2]
            if l1 >= 0 and l1 < nl:
                s = lut[l1]
                if s >= 0:
                    r = pos[2 * s + 1]
                    pos[2 * s + 1] = r + 1
                    faces[r, 0] = tris[f, 0]
                    faces[r, 1] = tris[f, 2]
                    faces[r, 2] = tris[f, 1]
    else:
        for f in range(n):
            l0 = labs[f, 0]
            if l0 >= 0 and l0 < nl:
                s = lut[l0]
                if s >= 0:
                    r = pos[s]
                    pos[s] = r + 1
                    faces[r, 0] = tris[f, 0]
                    faces[r, 1] = tris[f, 1]
                    faces[r, 2] = tris[f, 2]
    return start, faces


@numba.njit(cache=True, nogil=True, inline="always")
def _row(p0, p1, p2, u0, u1, u2, u3, m0, m1, m2, m3):  # pragma: no cover - compiled
    """One output coordinate: the used terms in order, then the translation, as
    ``surfaces._affine`` adds them (one of u0..u2 is true)."""
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
def segment_meshes(faces, seg_start, pts, mat, use):  # pragma: no cover - compiled
    """Compact each segment's mesh: ``(points, point_start)``.

    ``faces`` from :func:`select_faces`, segment s's rows ``seg_start[s]:seg_start[s + 1]``,
    renumbered in place: the segment's used vertices get the numbers 0, 1, ... in point
    order.  Points (u, 3) float64: segment s's vertices as rows
    ``point_start[s]:point_start[s + 1]``, mapped by ``mat`` (3, 4) using only the terms
    where ``use`` (3, 4) is true, column by column, so they equal ``surfaces._affine``'s
    to the bit.
    """
    nseg = seg_start.shape[0] - 1
    npts = pts.shape[0]
    remap = np.empty(npts, np.int32)  # a used vertex's number in the current segment
    bits = np.zeros((npts >> 6) + 1, np.uint64)  # the current segment's used vertices
    cap = 0
    for s in range(nseg):
        cap += min(3 * (seg_start[s + 1] - seg_start[s]), npts)
    used = np.empty(cap, np.int32)  # each segment's vertices, one run per segment
    point_start = np.empty(nseg + 1, np.int64)
    one = np.uint64(1)
    low6 = np.uint64(63)
    u = 0
    for s in range(nseg):
        r0 = seg_start[s]
        r1 = seg_start[s + 1]
        point_start[s] = u
        if r1 == r0:
            continue
        lo = npts
        hi = 0
        for r in range(r0, r1):  # mark the vertices (no branch: a mark may repeat)
            for c in range(3):
                v = faces[r, c]
                w = v >> 6
                bits[w] |= one << (np.uint64(v) & low6)
                lo = min(lo, w)
                hi = max(hi, w)
        j = 0
        for w in range(lo, hi + 1):  # number them in point order, clearing the marks
            x = bits[w]
            if x:
                bits[w] = np.uint64(0)
                base = w << 6
                while x:
                    lowest = x & (~x + one)
                    v = base + _DEBRUIJN[(lowest * _DEBRUIJN_MUL) >> np.uint64(58)]
                    remap[v] = j
                    used[u + j] = v
                    j += 1
                    x ^= lowest
        for r in range(r0, r1):
            faces[r, 0] = remap[faces[r, 0]]
            faces[r, 1] = remap[faces[r, 1]]
            faces[r, 2] = remap[faces[r, 2]]
        u += j
    point_start[nseg] = u
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
