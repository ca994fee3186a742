"""The heat balance of a run: energy stored against the heat that each source, flux, convection
and Dirichlet boundary brings in, from the discrete equations themselves (it closes to the
solver tolerance)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from mpi4py import MPI

ENERGY_ROUNDOFF = 1e-9  # imbalance, as a fraction of the thermal energy held, that round-off can reach


@dataclass
class HeatBalance:
    """Cumulative heat balance since the start (J), identical on every rank.

    ``inflow[i]`` is the heat brought in by ``terms[i]``: the source, then each Neumann,
    Robin and Dirichlet boundary by name."""

    terms: list
    energy_start: float
    energy: float
    inflow: np.ndarray = field(default=None)
    lag: float = 0.0  # the multistep formula's storage lag (BDF2; see :meth:`HeatFlows.book`)
    # (energy, inflow, lag, gross) when this process opened or resumed the balance: what its steps
    # did is the rest (the Dirichlet values' jump at the start is booked before them)
    opened: tuple | None = None
    # the heat each source, flux and exchange term brought in or took out, step by step, summed in
    # magnitude (J): flows that cancel over the run (a flux sin(t)) leave a net of round-off, which
    # cannot scale what it misses (the Dirichlet reactions are left out: where K u is round-off, so
    # are they, and they must not scale their own loss)
    gross: float = 0.0
    # whether the energy changed in some step since the balance was opened (a field that came back
    # to where it started moved; a frozen one did not)
    moved: bool = False
    # the magnitude of the flows (W, steady): of a source or flux that cancels over the body, its
    # sum_i |F_i|, not its net of round-off, scales the relative imbalance
    magnitude: float = 0.0
    # the magnitude of the exchanges (W, steady): sum over Robin and radiating boundaries of
    # int h (|T_inf| + |u|) and int eps sigma (T_inf^4 + u^4): a body at its ambient temperature
    # exchanges their round-off (:data:`ENERGY_ROUNDOFF` of it), which scales its imbalance
    exchange: float = 0.0
    # the energy the nodes hold, sum_i |E_i| (J, transient, at the last step): its round-off
    # (:data:`ENERGY_ROUNDOFF` of it) scales the imbalance of a body where nothing flows
    held: float = 0.0
    steps: int = 0  # steps booked since the balance was opened (or resumed)
    # the magnitude of the totals a balance of the steps since opening is the difference of (J): the
    # energy and the heat booked before a restart; its round-off (:data:`ENERGY_ROUNDOFF` of it) scales
    # the imbalance of late steps whose flows are too small to change those totals
    carried: float = 0.0

    def __post_init__(self):
        if self.inflow is None:
            self.inflow = np.zeros(len(self.terms))

    def mark_opened(self) -> None:
        self.opened = (self.energy, self.inflow.copy(), self.lag, self.gross)
        self.moved, self.steps = False, 0

    def since_opened(self) -> "HeatBalance":
        """The balance of the steps this process took (from its start or restart)."""
        if self.opened is None:
            return self
        energy, inflow, lag, gross = self.opened
        carried = abs(energy) + float(np.abs(inflow).sum()) + abs(lag) + gross
        return HeatBalance(self.terms, energy, self.energy, self.inflow - inflow, self.lag - lag, held=self.held,
                           gross=self.gross - gross, moved=self.moved, steps=self.steps, carried=carried)

    @property
    def change(self) -> float:
        return self.energy - self.energy_start

    @property
    def imbalance(self) -> float:
        return self.change - float(self.inflow.sum()) - self.lag

    @property
    def relative(self) -> float:
        scale = max(abs(self.change), float(np.abs(self.inflow).sum()), abs(self.lag), self.magnitude, self.gross,
                    ENERGY_ROUNDOFF * (self.held + self.exchange + self.carried), 1e-300)
        return abs(self.imbalance) / scale

    def as_dict(self) -> dict:
        return {"energy_change": self.change, "imbalance": self.imbalance, "relative_imbalance": self.relative,
                "storage_lag": self.lag,
                **{f"heat_in_{k}": float(v) for k, v in zip(self.terms, self.inflow)}}


class HeatFlows:
    """This rank's heat flows into the body, term by term (``terms``: the source, then each
    Neumann, Robin and Dirichlet boundary by name), and the bookkeeping of a balance."""

    def __init__(self, problem):
        self.problem = problem
        names = ["source"] + [t.name for t in problem.neumann] + [t.name for t in problem.robin]
        names += [t.name for t in problem.radiation if t.name not in names]  # convection-radiation: one term
        self.terms = names + problem.dirichlet.names
        self.index = {name: i for i, name in enumerate(names)}

    def start(self, u: np.ndarray, jump: np.ndarray | None = None, rows: np.ndarray | None = None,
              stored: bool = True) -> HeatBalance:
        """A balance opened with the energy of ``u`` (collective; ``stored`` False: a steady
        balance, of heat flows alone, whose energy stays 0: that of a body of 1e309 J would only
        overflow it). ``jump``: the owned nodal
        energies gained when the Dirichlet values replaced the initial ones at the owned Dirichlet
        ``rows``. That heat came in through those boundaries, at once: it is booked as theirs, and
        the balance opens with the initial field's energy (a wall held 80 K above the initial
        temperature was short of it, 12% on a coarse mesh, converging only as h). Where the storage
        is consistent, the jump reaches the neighbours' energies too; their part goes to the
        boundaries in proportion to their own."""
        e = self.problem.energy(u) if stored else 0.0
        balance = HeatBalance(self.terms, e, e)
        if jump is None:
            return balance
        buf = np.empty(1 + len(self.terms))
        buf[0] = jump.sum()
        buf[1:] = self.reactions(rows, jump[rows])
        self.problem.mesh.comm.Allreduce(MPI.IN_PLACE, buf)
        total, per = float(buf[0]), buf[1:]
        weights = np.abs(per)
        if weights.sum() > 0:
            per += (total - per.sum()) * weights / weights.sum()
        balance.energy_start = e - total
        balance.inflow += per
        balance.mark_opened()
        return balance

    def flows(self, parts: dict, u: np.ndarray, t: float) -> np.ndarray:
        """Heat flows (W) at time t in ``terms`` order (Dirichlet: 0), from the load vectors
        themselves (sum_i F_i = int f by construction); Robin: int h (T_inf - u); radiation:
        -int epsilon sigma (T^4 - T_inf^4)."""
        p = self.problem
        n = p.mesh.n_owned
        out = np.zeros(len(self.terms))
        out[0] = parts["source"].sum() if "source" in parts else 0.0
        for term in p.neumann:
            out[self.index[term.name]] += parts[term.name].sum()
        for term in p.robin:
            out[self.index[term.name]] += parts[term.name].sum() - np.dot(p.robin_uptake(term, t), u[:n])
        for term in p.radiation:
            out[self.index[term.name]] -= p.radiation_loss(term, u, t).sum()
        return out

    def node_inflow(self, u: np.ndarray, t: float) -> np.ndarray:
        """This rank's owned nodes' heat in (W) from the source and the boundaries at time t, with
        ``u`` (ghosts current) and without conduction: summed over a part of the mesh, the heat
        into that part (a Robin term couples only nodes of one facet)."""
        p = self.problem
        n = p.mesh.n_owned
        net = np.zeros(n)
        for load in p.load_parts(t).values():
            net += load
        for term in p.robin:
            net -= p.robin_uptake(term, t) * u[:n]
        for term in p.radiation:
            net -= p.radiation_loss(term, u, t)
        return net

    def reactions(self, rows: np.ndarray, reactions: np.ndarray) -> np.ndarray:
        """Dirichlet reactions (heat in) of owned ``rows``, summed per Dirichlet boundary, in
        ``terms`` order."""
        out = np.zeros(len(self.terms))
        dirichlet = self.problem.dirichlet
        out[len(self.terms) - len(dirichlet.names):] = np.bincount(
            dirichlet.boundary_of[rows], weights=reactions, minlength=len(dirichlet.names))
        return out

    def book(self, balance: HeatBalance, u_new: np.ndarray, heat_in: np.ndarray, rows: np.ndarray,
             reactions: np.ndarray, storage: tuple | None = None, stored: bool = True) -> None:
        """Add one step's heat (J: this rank's flows times dt, and the Dirichlet reactions of its
        owned ``rows``) to ``balance``, with the new energy; one Allreduce.

        ``storage``: (a, energies of u0, u_-1, ...) of a multistep formula whose storage term
        ``sum_j a_j E(u_1-j)`` is not the energy change E(u1) - E(u0) (BDF2); the difference, its
        storage lag, is booked apart, so the balance closes on what the formula conserves. ``stored``:
        as in :meth:`start`."""
        p = self.problem
        buf = np.empty(2 + len(heat_in))
        buf[:2] = p.energy_held_local(u_new) if stored else (0.0, 0.0)
        buf[2:] = heat_in + self.reactions(rows, reactions)
        p.mesh.comm.Allreduce(MPI.IN_PLACE, buf)
        energy_old, balance.energy, balance.held = balance.energy, float(buf[0]), float(buf[1])
        balance.moved = balance.moved or balance.energy != energy_old
        balance.steps += 1
        balance.inflow += buf[2:]
        balance.gross += float(np.abs(buf[2: len(buf) - len(self.problem.dirichlet.names)]).sum())
        if storage is not None and len(storage[0]) > 2:
            a, energies = storage
            stored = a[0] * balance.energy + sum(aj * e for aj, e in zip(a[1:], energies))
            balance.lag += (balance.energy - energy_old) - stored
