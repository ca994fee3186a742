"""The sample table of a study: one row of parameter values per sample, drawn once from the seed
(so it is the same on any number of ranks and groups) with scipy.stats and scipy.stats.qmc."""

from __future__ import annotations

import itertools

import numpy as np
from scipy import stats
from scipy.stats import qmc

from solver.app.study.spec import Parameter, StudySpec
from solver.errors import CaseError


def distribution(p: Parameter):
    """The frozen scipy.stats distribution of a random parameter."""
    a = p.args
    if p.distribution == "uniform":
        return stats.uniform(loc=a["low"], scale=a["high"] - a["low"])
    if p.distribution == "normal":
        return stats.norm(loc=a["mean"], scale=a["std"])
    if p.distribution == "lognormal":
        return stats.lognorm(s=a["sigma"], scale=np.exp(a["mu"]))
    if p.distribution == "truncated-normal":
        return stats.truncnorm((a["low"] - a["mean"]) / a["std"], (a["high"] - a["mean"]) / a["std"],
                               loc=a["mean"], scale=a["std"])
    raise ValueError(p.distribution)


def unit_samples(method: str, n: int, d: int, seed: int) -> np.ndarray:
    """``n`` points in the unit cube [0, 1)^d: independent uniforms, a Latin hypercube or a
    scrambled Sobol sequence."""
    rng = np.random.default_rng(seed)
    if method == "monte-carlo":
        return rng.random((n, d))
    if method == "latin-hypercube":
        return qmc.LatinHypercube(d=d, seed=rng).random(n)
    return qmc.Sobol(d=d, scramble=True, seed=rng).random(n)


def sample_table(spec: StudySpec) -> np.ndarray:
    """(samples, parameters) values, in sample order; integer keys rounded to the nearest integer."""
    params = spec.parameters
    if spec.method == "grid":
        table = np.array(list(itertools.product(*(p.values for p in params))), dtype=float)
    elif spec.method == "list":
        table = np.array([p.values for p in params], dtype=float).T.copy()
    else:
        u = unit_samples(spec.method, spec.samples, len(params), spec.seed)
        with np.errstate(all="ignore"):
            table = np.column_stack([distribution(p).ppf(u[:, j]) for j, p in enumerate(params)])
        for j, p in enumerate(params):
            bad = ~np.isfinite(table[:, j])
            if bad.any():
                raise CaseError(f"{spec.source}: parameters.{p.key}: its {p.distribution} distribution gives "
                                f"{table[np.argmax(bad), j]} for {np.count_nonzero(bad)} of {len(bad)} samples (beyond "
                                f"a double's range, or undefined): give parameters that keep its values finite")
    for j, p in enumerate(params):
        if p.integer:
            table[:, j] = np.rint(table[:, j])
    return table
