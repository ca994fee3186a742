"""Planar slices of 3D nodal fields for ``plot`` (results and study files alike), and the colour
range of a field."""

from __future__ import annotations

import numpy as np

from solver.errors import CaseError


def check_view_options(dim: int, filename: str, slice_spec, mesh_edges: bool) -> None:
    """--slice is of a 3D field and --mesh draws a 2D field's edges: refused on the other
    dimension rather than ignored."""
    if dim == 2 and slice_spec:
        raise CaseError(f"--slice {slice_spec}: {filename} holds a 2D field (a slice is of a 3D one)")
    if dim == 3 and mesh_edges:
        raise CaseError(f"--mesh: {filename} holds a 3D field, shown as a slice without edges (--mesh is for 2D)")


FLAT = 1e-12  # a field whose spread is below this, relative to its magnitude (at least 1), is uniform
FLAT_HALF_RANGE = 0.1  # the colour range of a uniform field: its value +- this, relative to it (at least 1)


def colour_limits(values: np.ndarray, vmin=None, vmax=None) -> tuple:
    """The colour range of nodal ``values``: ``vmin`` and ``vmax`` where given (a fraction's 0 to 1),
    else the values' own, except for a uniform field (its spread at round-off level relative to
    its magnitude, 20 +- 4e-15): centred on its mean, +- :data:`FLAT_HALF_RANGE` of it, so that the
    round-off shows as one colour and the colour bar has a few readable ticks."""
    if vmin is not None or vmax is not None:
        return vmin, vmax
    finite = values[np.isfinite(values)]
    if not len(finite):
        return None, None
    lo, hi = float(finite.min()), float(finite.max())
    scale = max(abs(lo), abs(hi), 1.0)
    if hi - lo > FLAT * scale:
        return None, None
    centre = 0.0 if max(abs(lo), abs(hi)) <= FLAT else float(np.mean(finite))  # (+-5e-16: zero)
    half = FLAT_HALF_RANGE * max(abs(centre), 1.0)
    return centre - half, centre + half


def draw_slice(ax, r, T, spec, cmap="inferno", vmin=None, vmax=None):
    """Colour map of nodal values ``T`` on the plane ``spec`` (``x=VALUE``, ``y=`` or ``z=``; default
    the middle z) of a 3D file ``r`` (anything with ``points`` and a ``locator``), sampled on a
    240 x 240 grid by finite-element interpolation; returns the image."""
    lo, hi = r.points.min(axis=0), r.points.max(axis=0)
    axis, value = 2, 0.5 * (lo[2] + hi[2])
    if spec:
        name, _, v = spec.partition("=")
        try:
            axis, value = ("x", "y", "z").index(name.strip()), float(v)  # (a tuple: "xyz".index("yz") was y)
        except ValueError:
            raise CaseError(f"--slice {spec}: expected x=VALUE, y=VALUE or z=VALUE") from None
        if not np.isfinite(value):
            raise CaseError(f"--slice {spec}: expected a finite VALUE")
    if not lo[axis] <= value <= hi[axis]:
        raise CaseError(f"--slice {spec}: outside the mesh ({'xyz'[axis]} from {lo[axis]:g} to {hi[axis]:g})")
    a, b = [d for d in range(3) if d != axis]
    n = 240
    ga, gb = np.linspace(lo[a], hi[a], n), np.linspace(lo[b], hi[b], n)
    A, B = np.meshgrid(ga, gb)
    pts = np.zeros((A.size, 3))
    pts[:, a], pts[:, b], pts[:, axis] = A.ravel(), B.ravel(), value
    cell, xi = r.locator.locate(pts)
    vals = np.full(len(pts), np.nan)
    inside = cell >= 0
    vals[inside] = r.locator.interpolate(T, cell[inside], xi[inside])
    im = ax.pcolormesh(A, B, vals.reshape(A.shape), shading="auto", cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_xlabel(f"{'xyz'[a]} (m)")
    ax.set_ylabel(f"{'xyz'[b]} (m)")
    return im
