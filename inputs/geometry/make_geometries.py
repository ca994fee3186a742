"""Build the example geometries with the gmsh Python API (pip install gmsh).

    python inputs/geometry/make_geometries.py            # writes the .msh files beside this script
    python inputs/geometry/make_geometries.py --size 0.5 # finer (a mesh-size factor: smaller is finer)

plate_with_holes.msh  2D steel plate 0.2 m x 0.1 m with three holes.
    boundary groups: left, right, bottom, top, holes; region group: plate
heatsink.msh          3D aluminium heat sink: a 60 x 50 x 5 mm base with 7 fins 2 x 50 x 30 mm.
    boundary groups: base (the heated underside), fins (every other face); region groups:
    base_plate, fin_array
finned_pipe.msh       2D cross-section of a pipe (bore 20 mm, wall 4 mm) with 8 radial fins 16 x 2 mm
    with rounded tips; a second-order mesh (6-node triangles, curved edges on every arc).
    boundary groups: bore (inside), air (the outside); region group: pipe

Physical groups become the boundary names (facets) and region names (cells) of case files.
"""

import argparse
import math
from pathlib import Path

import gmsh

HERE = Path(__file__).resolve().parent
TOL = 1e-5  # OpenCASCADE pads bounding boxes by ~1e-7


def plate_with_holes(size: float, path: Path):
    gmsh.model.add("plate_with_holes")
    occ = gmsh.model.occ
    plate = occ.addRectangle(0, 0, 0, 0.2, 0.1)
    holes = [occ.addDisk(x, y, 0, r, r) for x, y, r in ((0.05, 0.05, 0.015), (0.1, 0.03, 0.01), (0.15, 0.06, 0.02))]
    occ.cut([(2, plate)], [(2, h) for h in holes])
    occ.synchronize()
    curves = {"left": [], "right": [], "bottom": [], "top": [], "holes": []}
    for _, tag in gmsh.model.getEntities(1):
        x0, y0, _, x1, y1, _ = gmsh.model.getBoundingBox(1, tag)
        if abs(x0) < TOL and abs(x1) < TOL:
            curves["left"].append(tag)
        elif abs(x0 - 0.2) < TOL and abs(x1 - 0.2) < TOL:
            curves["right"].append(tag)
        elif abs(y0) < TOL and abs(y1) < TOL:
            curves["bottom"].append(tag)
        elif abs(y0 - 0.1) < TOL and abs(y1 - 0.1) < TOL:
            curves["top"].append(tag)
        else:
            curves["holes"].append(tag)
    for name, tags in curves.items():
        gmsh.model.addPhysicalGroup(1, tags, name=name)
    gmsh.model.addPhysicalGroup(2, [t for _, t in gmsh.model.getEntities(2)], name="plate")
    gmsh.option.setNumber("Mesh.MeshSizeMax", 0.003 * size)
    gmsh.model.mesh.generate(2)
    gmsh.write(str(path))


def heatsink(size: float, path: Path):
    gmsh.model.add("heatsink")
    occ = gmsh.model.occ
    base = occ.addBox(0, 0, 0, 0.06, 0.05, 0.005)
    fins = [occ.addBox(0.002 + i * 0.0093, 0, 0.005, 0.002, 0.05, 0.03) for i in range(7)]
    out, _ = occ.fragment([(3, base)], [(3, f) for f in fins])
    occ.synchronize()
    volumes = [t for _, t in gmsh.model.getEntities(3)]
    base_vol = [t for t in volumes if gmsh.model.getBoundingBox(3, t)[5] <= 0.005 + TOL]
    fin_vols = [t for t in volumes if t not in base_vol]
    gmsh.model.addPhysicalGroup(3, base_vol, name="base_plate")
    gmsh.model.addPhysicalGroup(3, fin_vols, name="fin_array")
    boundary = gmsh.model.getBoundary([(3, t) for t in volumes], combined=True, oriented=False)
    underside, others = [], []
    for _, tag in boundary:
        z0, z1 = gmsh.model.getBoundingBox(2, tag)[2], gmsh.model.getBoundingBox(2, tag)[5]
        (underside if abs(z0) < TOL and abs(z1) < TOL else others).append(tag)
    gmsh.model.addPhysicalGroup(2, underside, name="base")
    gmsh.model.addPhysicalGroup(2, others, name="fins")
    gmsh.option.setNumber("Mesh.MeshSizeMax", 0.0015 * size)
    gmsh.model.mesh.generate(3)
    gmsh.write(str(path))


def finned_pipe(size: float, path: Path):
    gmsh.model.add("finned_pipe")
    occ = gmsh.model.occ
    r_bore, r_wall, length, thickness, n_fins = 0.010, 0.014, 0.016, 0.002, 8
    wall = occ.addDisk(0, 0, 0, r_wall, r_wall)
    parts = []
    for i in range(n_fins):
        fin = occ.addRectangle(r_wall - 0.001, -thickness / 2, 0, length + 0.001, thickness)
        tip = occ.addDisk(r_wall + length, 0, 0, thickness / 2, thickness / 2)
        for tag in (fin, tip):
            occ.rotate([(2, tag)], 0, 0, 0, 0, 0, 1, 2 * math.pi * i / n_fins)
            parts.append((2, tag))
    body, _ = occ.fuse([(2, wall)], parts)
    bore = occ.addDisk(0, 0, 0, r_bore, r_bore)
    occ.cut(body, [(2, bore)])
    occ.synchronize()
    inside, outside = [], []
    for _, tag in gmsh.model.getEntities(1):
        x0, y0, _, x1, y1, _ = gmsh.model.getBoundingBox(1, tag)
        (inside if max(abs(x0), abs(y0), abs(x1), abs(y1)) <= r_bore + TOL else outside).append(tag)
    gmsh.model.addPhysicalGroup(1, inside, name="bore")
    gmsh.model.addPhysicalGroup(1, outside, name="air")
    gmsh.model.addPhysicalGroup(2, [t for _, t in gmsh.model.getEntities(2)], name="pipe")
    gmsh.option.setNumber("Mesh.MeshSizeMax", 0.0008 * size)
    gmsh.option.setNumber("Mesh.ElementOrder", 2)  # midpoints on the arcs: curved, isoparametric cells
    gmsh.model.mesh.generate(2)
    gmsh.write(str(path))
    gmsh.option.setNumber("Mesh.ElementOrder", 1)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=float, default=1.0, help="mesh-size factor (smaller: finer)")
    p.add_argument("--out", type=Path, default=HERE, help="output folder")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    gmsh.initialize()
    gmsh.option.setNumber("General.Terminal", 0)
    gmsh.option.setNumber("Mesh.Binary", 1)  # Gmsh 4.1 binary: smaller files
    try:
        plate_with_holes(args.size, args.out / "plate_with_holes.msh")
        heatsink(args.size, args.out / "heatsink.msh")
        finned_pipe(args.size, args.out / "finned_pipe.msh")
    finally:
        gmsh.finalize()


if __name__ == "__main__":
    main()
