"""Distributed smoothed-aggregation algebraic multigrid (SA-AMG), a preconditioner for CG:
one symmetric V-cycle per application, ``z = AMG(A)(r)``, on a hierarchy built from the
distributed matrix alone. One stage per module, as pyamg cuts it:

* :mod:`.strength` and :mod:`.aggregate`: each rank aggregates its owned rows from the
  strong couplings of its owned-owned block (pyamg's serial standard aggregation kernel);
  rows without strong neighbours (Dirichlet rows) stay out of every aggregate.
* :mod:`.agglomerate`: which ranks own the next level's rows; a level that would average
  fewer than ``rows_per_rank`` rows per active rank moves onto fewer ranks.
* :mod:`.tentative`: the tentative prolongator T from the near-null space (the constant, then
  the coarse candidates of each level), normalised per aggregate.
* :mod:`.smooth`: the prolongator ``P = (I - omega D^-1 A) T``, T's ghost rows from the halo.
* :mod:`.galerkin`: ``A_c = P^T A P`` with the ghost rows of P fetched from their owners and
  the entries sent to the owners of their coarse rows; each coarse level has its own
  :class:`HaloExchange` and :class:`DistributedMatrix`.
* :mod:`.transfer`: prolongation and restriction between two levels, one neighbour exchange
  each.
* :mod:`.smoothers`: Chebyshev smoothing in ``D^-1 A`` placed by a deterministic Lanczos
  estimate (no Gauss-Seidel: the same iterates on any number of ranks).
* :mod:`.level` (a level's matrices in the V-cycle's precision, its symmetric-storage
  product), :mod:`.coarse` (the coarsest level gathered and factorised by SuperLU),
  :mod:`.hierarchy` (:class:`AMG`: set-up, update, V-cycle, statistics), :mod:`.options`
  (:class:`AMGOptions`), :mod:`.numbering` and :mod:`.sparse` (global ids, CSR helpers).

Pre- and post-smoothing are the same symmetric operator and the coarsest solve is exact, so
the V-cycle is symmetric (CG-safe). Its communication is neighbour-only: halo updates on each
level and the transfers between levels, plus one ``Allgatherv`` among the coarsest level's
ranks when there are several; set-up uses O(P) collectives. By default the V-cycle runs in
single precision (float32 copies of the level matrices): the products, bound by memory
bandwidth, move a third less memory, while CG, the set-up and the coarsest solve stay in
double.
"""

from solver.lazy import exports

WHERE = {
    "AMG": "hierarchy",
    "AMGOptions": "options",
    "local_matrix": "sparse",
}
__all__ = sorted(WHERE)
__getattr__ = exports(__name__, WHERE)
