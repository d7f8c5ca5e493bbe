#!/usr/bin/env python3
"""Regenerate the DRP example tables: exposures.csv and overlaps.csv.

Run from anywhere:  python3 examples/drp/data/generate.py
The output is deterministic (no random numbers, no clock); re-running it must leave
`git diff` empty.

Model (deliberately small, but shaped like a real HSC/LSST data release):

* 24 visits in three bands, one night per band, 8 visits each.  Visit ids are even, as
  HSC's are, and jump between nights.
* A cut-down camera of 8 detectors in a 4 x 2 layout.  In "patch units" (1 = one patch
  side) a detector is 0.45 x 0.45 on a 0.5 pitch, so the focal plane is 2 x 1 patches.
* The sky is 2 tracts x 4 patches: a 4 x 2 grid of patches.  Grid columns 0-1 belong to
  tract 9812, columns 2-3 to tract 9813.  Patch ids are the real skymap convention
  `y * 9 + x` within a 9 x 9 tract, so tract 9812 uses its right-hand 2 x 2 block
  (x = 7, 8; y = 4, 5) and tract 9813 its left-hand block (x = 0, 1; y = 4, 5).
* Pointings dither in x over [0, 2) (a golden-ratio sequence), and in y over the three
  offsets 0, 0.5, 1 plus a small jitter.  With those y offsets no detector ever crosses a
  patch row boundary, and a 0.45-wide detector crosses at most one column boundary, so
  every visit-detector overlaps exactly 1 or 2 patches.  The generator asserts this.
"""

import csv
import math
import os

HERE = os.path.dirname(os.path.abspath(__file__))

BANDS = ["g", "r", "i"]
FIRST_VISIT = {"g": 30400, "r": 30460, "i": 30520}  # one night per band
VISITS_PER_BAND = 8

N_DET_X, N_DET_Y = 4, 2           # detector d sits at column d % 4, row d // 4
DET_SIZE, DET_PITCH = 0.45, 0.5

TRACTS = [9812, 9813]             # grid columns 0-1 -> 9812, 2-3 -> 9813
GRID_X, GRID_Y = 4, 2
LOCAL_X = {0: 7, 1: 8, 2: 0, 3: 1}  # grid column -> patch x inside its tract
LOCAL_Y = {0: 4, 1: 5}              # grid row    -> patch y inside its tract

GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def visits():
    out = []
    for band in BANDS:
        for j in range(VISITS_PER_BAND):
            out.append((FIRST_VISIT[band] + 2 * j, band))
    return out


def pointing(k):
    """Lower-left corner of the focal plane for the k-th visit, in patch units."""
    px = 2.0 * ((0.5 + k * GOLDEN) % 1.0)          # [0, 2): the 2-wide plane stays on the grid
    py = 0.5 * (k % 3) + 0.01 * (k % 2)             # 0, 0.5, 1 (+ jitter)
    return px, py


def patch_of(gx, gy):
    tract = TRACTS[gx // 2]
    return tract, LOCAL_Y[gy] * 9 + LOCAL_X[gx]


def overlaps():
    rows = []
    for k, (visit, _band) in enumerate(visits()):
        px, py = pointing(k)
        for det in range(N_DET_X * N_DET_Y):
            col, row = det % N_DET_X, det // N_DET_X
            x0 = px + col * DET_PITCH + (DET_PITCH - DET_SIZE) / 2
            y0 = py + row * DET_PITCH + (DET_PITCH - DET_SIZE) / 2
            x1, y1 = x0 + DET_SIZE, y0 + DET_SIZE
            cells = {
                (gx, gy)
                for gx in range(math.floor(x0), math.floor(x1) + 1)
                for gy in range(math.floor(y0), math.floor(y1) + 1)
                if 0 <= gx < GRID_X and 0 <= gy < GRID_Y
            }
            assert 1 <= len(cells) <= 2, (visit, det, cells)
            for gx, gy in sorted(cells):
                tract, patch = patch_of(gx, gy)
                rows.append((visit, det, tract, patch))
    return sorted(rows)


def write(name, header, rows):
    with open(os.path.join(HERE, name), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def main():
    write("exposures.csv", ["visit", "band"], visits())
    write("overlaps.csv", ["visit", "detector", "tract", "patch"], overlaps())


if __name__ == "__main__":
    main()
