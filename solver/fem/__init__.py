"""Finite elements on the distributed mesh: quadrature, cell and facet geometry, vectorised
assembly of owned rows (matrices share one sparsity pattern), boundary terms and the symmetric
Dirichlet elimination, and point location with finite-element interpolation.
"""

from solver.lazy import exports

WHERE = {
    "Assembler": "assembly",
    "BoundaryTerm": "boundary",
    "CellGeometry": "geometry",
    "constrain": "boundary",
    "PointLocator": "locate",
    "quadrature": "quadrature",
}
__all__ = sorted(WHERE)
__getattr__ = exports(__name__, WHERE)
