"""Make the pictures of the tutorials (docs/images/*.png) from the examples in inputs/.

Each example runs at the size its tutorial documents, on RANKS ranks, from the repository root:

    mpirun -n RANKS python -m solver inputs/NAME.toml --overwrite

so its results land in outputs/NAME/ as the tutorial says. The pictures are then drawn by
``python -m solver plot`` (the casting's two panels are stacked into one image) and written to
docs/images/. Every PNG in docs/images/ that a tutorial shows is made here.

    python docs/make_figures.py                       # every example, 2 ranks
    python docs/make_figures.py --only plate casting2d
    python docs/make_figures.py --ranks 4

Run it with the environment's Python (``.venv/bin/python``); as root, Open MPI also needs
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 (and oversubscription for more ranks
than cores). The whole set takes about 50 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
MAX_BYTES = 250_000  # a picture larger than this is reported: shrink its --size


@dataclass(frozen=True)
class Example:
    """One example: how to run it, and the pictures drawn from its results."""

    name: str
    run: list[str]  # the words after `mpirun -n RANKS python -m solver`
    results: str  # the results (or study) file, relative to the repository root
    plots: dict[str, list[str]] = field(default_factory=dict)  # PNG name -> plot options


def case(name: str, *extra: str, plots: dict[str, list[str]]) -> Example:
    """An example that is a case file inputs/NAME.toml, with its results in outputs/NAME/."""
    return Example(name, [f"inputs/{name}.toml", "--overwrite", *extra], f"outputs/{name}/{name}.h5", plots)


EXAMPLES = [
    case("plate", plots={
        "plate.png": ["--time", "600", "--size", "1000x600"],
        "plate_series.png": ["--series", "--size", "800x450"]}),
    case("block3d", plots={
        "block3d.png": ["--slice", "z=0.05", "--size", "900x700"]}),
    case("layered_wall", plots={
        "layered_wall.png": ["--size", "1000x360"]}),
    case("heater_ramp", "--set", "output.probes=[[0.0, 0.015], [0.15, 0.015], [0.3, 0.015]]", plots={
        "heater_ramp.png": ["--time", "150", "--size", "1000x300"],
        "heater_ramp_series.png": ["--series", "--size", "800x450"]}),
    case("plate_with_holes", plots={
        "plate_with_holes.png": ["--mesh", "--size", "800x560"]}),
    case("heatsink", plots={
        "heatsink_slice.png": ["--slice", "y=0.025"]}),
    case("heatsink_radiation", plots={
        "heatsink_radiation.png": ["--slice", "y=0.025"]}),
    case("heater_pulse", plots={
        "heater_pulse_dt.png": ["--dt", "--size", "800x450"],
        "heater_pulse_series.png": ["--series", "--size", "800x450"]}),
    case("casting2d", plots={
        "casting2d_series.png": ["--series", "--size", "800x450"]}),
    case("finned_pipe", plots={
        "finned_pipe.png": ["--time", "120"]}),
    case("reference", plots={
        "reference.png": ["--units", "", "--size", "800x700"]}),  # a problem without units
    case("reference3d", plots={
        "reference3d.png": ["--slice", "z=0.5", "--units", "", "--size", "800x700"]}),
    Example("wall_insulation", ["study", "inputs/studies/wall_insulation.toml", "--ranks-per-case", "1",
                                "--overwrite", "--quiet"],
            "outputs/wall_insulation/wall_insulation.study.h5", {
                "wall_insulation_heat.png": ["--output", "heat_in.left", "--size", "800x450"],
                "wall_insulation_std.png": ["--field", "std", "--size", "1000x360"]}),
]

# casting2d.png: the temperature and the liquid fraction at t = 30 s, one panel above the other
CASTING_PANELS = [["--time", "30", "--size", "1000x480"],
                  ["--field", "liquid_fraction", "--time", "30", "--size", "1000x480"]]


def solver(*words: str, ranks: int = 0) -> None:
    """Run `python -m solver WORDS` (under mpirun when ranks > 0) in the repository root."""
    command = [sys.executable, "-m", "solver", *words]
    if ranks:
        command = ["mpirun", "-n", str(ranks), *command]
    print("$", shlex.join(command), flush=True)
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def stack_casting(results: str) -> None:
    """docs/images/casting2d.png: the two panels of CASTING_PANELS stacked vertically."""
    import matplotlib.image as mpimg
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        panels = [Path(tmp) / f"panel{i}.png" for i in range(len(CASTING_PANELS))]
        for options, png in zip(CASTING_PANELS, panels):
            solver("plot", results, *options, "-o", str(png))
        mpimg.imsave(IMAGES / "casting2d.png", np.concatenate([mpimg.imread(p) for p in panels]))
    print("stacked the panels into", (IMAGES / "casting2d.png").relative_to(ROOT))


def make(example: Example, ranks: int) -> list[Path]:
    """Run one example and draw its pictures; the PNG files written."""
    solver(*example.run, ranks=ranks)
    for png, options in example.plots.items():
        solver("plot", example.results, *options, "-o", str(IMAGES / png))
    if example.name == "casting2d":
        stack_casting(example.results)
        return [IMAGES / "casting2d.png", *(IMAGES / png for png in example.plots)]
    return [IMAGES / png for png in example.plots]


def main(argv: list[str] | None = None) -> int:
    names = [e.name for e in EXAMPLES]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=names, metavar="NAME",
                        help=f"make these examples' pictures only ({', '.join(names)})")
    parser.add_argument("--ranks", type=int, default=2, help="MPI ranks of each run (default 2)")
    args = parser.parse_args(argv)

    IMAGES.mkdir(parents=True, exist_ok=True)
    chosen = [e for e in EXAMPLES if args.only is None or e.name in args.only]
    start = time.perf_counter()
    made = []
    for example in chosen:
        began = time.perf_counter()
        made += make(example, args.ranks)
        print(f"{example.name}: {time.perf_counter() - began:.1f} s\n", flush=True)

    too_large = [png for png in made if png.stat().st_size > MAX_BYTES]
    for png in made:
        print(f"{png.relative_to(ROOT)}  {png.stat().st_size / 1000:.0f} kB")
    print(f"{len(made)} pictures in {time.perf_counter() - start:.0f} s")
    for png in too_large:
        print(f"warning: {png.name} is over {MAX_BYTES // 1000} kB: give it a smaller --size", file=sys.stderr)
    return 1 if too_large else 0


if __name__ == "__main__":
    sys.exit(main())
