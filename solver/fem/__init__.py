"""Finite elements on the distributed mesh: quadrature, cell and facet geometry, vectorised
assembly of owned rows (matrices share one sparsity pattern), boundary terms and the symmetric
Dirichlet elimination, and point location with finite-element interpolation.
"""

from solver.fem.assembly import Assembler
from solver.fem.boundary import BoundaryTerm, constrain
from solver.fem.geometry import CellGeometry
from solver.fem.locate import PointLocator
from solver.fem.quadrature import quadrature

__all__ = ["Assembler", "BoundaryTerm", "CellGeometry", "PointLocator", "constrain", "quadrature"]
