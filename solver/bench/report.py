"""The table of ``bench``'s machine figures: one row a figure, on 1 rank and on N, with its target
(and DOLFINx's figures beside the assembly when they were measured)."""

from __future__ import annotations


def table(r: dict) -> str:
    """The figures of :func:`solver.bench.machine.measure` as a table."""
    N = r["ranks"]
    lines = [f"solver bench: {r['host']}, {r['cores']} cores, 1 and {N} ranks", "",
             f"{'figure':58s} {'1 rank':>12s} {f'{N} ranks':>12s}  target"]
    if "stream_1" in r:
        s1, sN = r["stream_1"], r["stream_N"]
        lines += [f"{'STREAM-like triad, NumPy (GB/s, all ranks)':58s} {s1['numpy_GBs']:12.2f} {sN['numpy_GBs']:12.2f}",
                  f"{'STREAM-like triad, BLAS daxpy (GB/s, all ranks)':58s} {s1['daxpy_GBs']:12.2f} "
                  f"{sN['daxpy_GBs']:12.2f}"]
    if "linalg_1" in r:
        l1, lN = r["linalg_1"], r["linalg_N"]
        lines += [f"{'CSR SpMV, 2D P1 ' + format(lN['dofs'], ',') + ' DOFs (GB/s)':58s} {l1['spmv_GBs']:12.2f} "
                  f"{lN['spmv_GBs']:12.2f}",
                  f"{'  SpMV bandwidth / NumPy triad':58s} {l1['spmv_GBs'] / s1['numpy_GBs']:12.0%} "
                  f"{lN['spmv_GBs'] / sN['numpy_GBs']:12.0%}  >= 60%",
                  f"{'  SpMV bandwidth / fused (daxpy) triad':58s} {l1['spmv_GBs'] / s1['daxpy_GBs']:12.0%} "
                  f"{lN['spmv_GBs'] / sN['daxpy_GBs']:12.0%}  >= 60%",
                  f"{'distributed SpMV (halo) / local SpMV - 1':58s} {l1['halo_overhead']:12.1%} "
                  f"{lN['halo_overhead']:12.1%}  <= 15%",
                  f"{'one PCG-Jacobi iteration / one SpMV':58s} {l1['pcg_iteration_over_spmv']:12.2f} "
                  f"{lN['pcg_iteration_over_spmv']:12.2f}  <= 2.5"]
    if "assembly" in r:
        lines += assembly_lines(r)
    for key, label in (("steps_2d", "2D P1"), ("steps_2d_jacobi", "2D P1"), ("steps_3d", "3D P1")):
        if key not in r:
            continue
        st = r[key]
        one, many = st["1"], st["N"]
        what = f"{label} {format(one['dofs'], ',')} DOFs, {one['preconditioner']}"
        lines += [f"{'time step, ' + what + ' (s)':58s} {one['step_s']:12.3f} {many['step_s']:12.3f}",
                  f"{'  CG iterations per step':58s} {one['iterations_per_step']:12.1f} "
                  f"{many['iterations_per_step']:12.1f}",
                  f"{'  set-up (mesh, assembly, factorisation) (s)':58s} {one['setup_s']:12.2f} {many['setup_s']:12.2f}",
                  f"{'  speed-up of the time loop':58s} {'':12s} {st['speedup_step']:12.2f}  >= 1.7",
                  f"{'  peak RSS per rank (MB)':58s} {one['peak_rss_MB']:12.0f} {many['peak_rss_MB']:12.0f}",
                  f"{'  bytes per DOF per rank (peak growth)':58s} {one['bytes_per_dof']:12.0f} "
                  f"{many['bytes_per_dof']:12.0f}" + ("  <= 1024" if key == "steps_2d" else "")]
        if one["factor_bytes_per_dof"]:
            lines.append(f"{'    of which LU factors (L + U, SuperLU)':58s} {one['factor_bytes_per_dof']:12.0f} "
                         f"{many['factor_bytes_per_dof']:12.0f}")
    h = r.get("hdf5")
    lines += [] if h is None else [f"{'HDF5 output step, ' + h['driver'] + ' (GB/s)':58s} {'':12s} {h['hdf5_GBs']:12.3f}",
              f"{'plain sequential write of the same bytes (GB/s)':58s} {'':12s} {h['plain_GBs']:12.3f}",
              f"{'  HDF5 / plain':58s} {'':12s} {h['hdf5_fraction_of_plain']:12.0%}  >= 50%"]
    return "\n".join(lines)


def assembly_lines(r: dict) -> list[str]:
    """The assembly figures (s per million cells per rank), DOLFINx's beside them when measured."""
    N = r["ranks"]
    lines = []
    for name, many in r["assembly"].items():
        one = r["assembly_1"][name]
        path = "" if many["compiled"] else ", NumPy path"
        lines.append(f"{'assembly ' + name + ', ' + format(many['cells'], ',') + ' cells' + path:58s}"
                     f" {'':12s} {'':12s}  (s per million cells per rank)")
        for key, label in (("pattern", "pattern (Assembler)"), ("first", "first assembly of M + dt K"),
                           ("reassembly", "reassembly of M + dt K"), ("pattern_K_M", "pattern + K + M")):
            target = {("P1 2D", "pattern_K_M"): "  < 1.5", ("Q1 3D", "pattern_K_M"): "  <= 2"}.get((name, key), "")
            lines.append(f"{'  ' + label:58s} {one['per_million'][key]:12.3f} {many['per_million'][key]:12.3f}"
                         + target)
            for which, ranks in (("1", 1), ("N", N)):
                cmp = r.get("dolfinx", {}).get(f"{name} {which}")
                if cmp and key in cmp["ratio"]:
                    d = cmp["dolfinx"]
                    lo, hi = d["range"][key]
                    lines.append(f"{'    DOLFINx ' + str(ranks) + ' rank(s), N = ' + str(d['N']):58s} "
                                 + (f"{d['per_million'][key]:12.3f} {'':12s}" if which == "1" else
                                    f"{'':12s} {d['per_million'][key]:12.3f}")
                                 + f"  ours/DOLFINx {cmp['ratio'][key]:.2f} <= 1 (DOLFINx {d['runs']} run(s), "
                                 f"{lo:.3f}-{hi:.3f})")
    setups = [cmp for cmp in r.get("dolfinx", {}).values() if cmp["ours_setup"]]
    if setups:
        lines.append(f"{'reference problem set-up, jacobi (s): ours, DOLFINx':58s} {'ours':>12s} {'DOLFINx':>12s}")
    for cmp in setups:
        d, mine = cmp["dolfinx"], cmp["ours_setup"]
        label = f"  {cmp['mesh']}, N = {d['N']}, {cmp['ranks']} rank(s)"
        lines.append(f"{label:58s} {mine['setup_s']:12.2f} {d['setup_s']:12.2f}  ours/DOLFINx "
                     f"{cmp['ratio']['setup']:.2f} <= 0.5 (DOLFINx {d['range']['setup'][0]:.2f}-"
                     f"{d['range']['setup'][1]:.2f}: mesh + set-up + matrix + solver set-up)")
    return lines
