#!/usr/bin/env python3
"""Regenerate the special-programs example tables.

Run from anywhere:  python3 examples/special_programs/data/generate.py
Deterministic (no random numbers, no clock); re-running it must leave `git diff` empty.
qa_rejects.csv is not generated: it is the hand-kept list from the QA team.

Model:

* Three nights (day_obs 20241108-10).  Each night has 4 main-survey (WFD) visits and one
  deep-drilling (DDF) sequence of 4 back-to-back visits in a single band: g, r, i on the
  three nights.  Visit ids follow LSST's day_obs * 100000 + seq_num; a DDF sequence id is
  day_obs * 100 + n.
* A 9-detector camera (one 3 x 3 raft).  In "patch units" a detector is 0.31 x 0.31 on
  a 1/3 pitch, so the focal plane is 1 x 1 patch.
* The sky is 2 tracts x 4 patches: a 4 x 2 grid of patches.  Grid columns 0-1 belong to
  tract 5063, columns 2-3 to tract 5064.  Patch ids are the lsst_cells_v1 convention
  `y * 10 + x` in a 10 x 10 tract: tract 5063 uses its right-hand 2 x 2 block (x = 8, 9;
  y = 4, 5), tract 5064 its left-hand one (x = 0, 1; y = 4, 5).
* WFD pointings spread over x in [0, 3); DDF pointings stay within x in [1.55, 1.85], so
  the deep field straddles the tract boundary and covers the 4 central patches only.
  Vertical offsets are multiples of 1/3 (plus a small jitter), so no detector crosses a
  patch row boundary and every visit-detector overlaps exactly 1 or 2 patches (asserted).
"""

import csv
import math
import os

HERE = os.path.dirname(os.path.abspath(__file__))

NIGHTS = [20241108, 20241109, 20241110]
DDF_BAND = {20241108: "g", 20241109: "r", 20241110: "i"}
WFD_BANDS = {20241108: ["r", "r", "i", "i"], 20241109: ["i", "i", "z", "z"], 20241110: ["g", "g", "r", "r"]}

N_DET = 3                          # 3 x 3: detector d at column d % 3, row d // 3
PITCH = 1.0 / 3.0
SIZE = 0.31

TRACTS = [5063, 5064]
GRID_X, GRID_Y = 4, 2
LOCAL_X = {0: 8, 1: 9, 2: 0, 3: 1}
LOCAL_Y = {0: 4, 1: 5}

GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def observations():
    """(visit, band, program, ddf_sequence or None, pointing) in time order."""
    obs = []
    k = 0
    for night in NIGHTS:
        seq = 100  # seq_num of the first exposure of the night
        for band in WFD_BANDS[night][:2]:          # two WFD visits before the DDF sequence
            obs.append((night * 100000 + seq, band, "wfd", None, k)); seq += 1; k += 1
        ddf_seq = night * 100 + 1
        for _ in range(4):
            obs.append((night * 100000 + seq, DDF_BAND[night], "ddf", ddf_seq, k)); seq += 1; k += 1
        for band in WFD_BANDS[night][2:]:          # and two after it
            obs.append((night * 100000 + seq, band, "wfd", None, k)); seq += 1; k += 1
    return obs


def pointing(program, k):
    jitter = 0.005 * (k % 2)
    if program == "wfd":
        px = 3.0 * ((0.5 + k * GOLDEN) % 1.0)
        py = PITCH * (k % 4) + jitter            # 0, 1/3, 2/3, 1
    else:
        px = 1.55 + 0.3 * ((k * GOLDEN) % 1.0)
        py = PITCH * (1 + k % 2) + jitter        # 1/3, 2/3
    return px, py


def overlaps(obs):
    rows = []
    for visit, _band, program, _seq, k in obs:
        px, py = pointing(program, k)
        for det in range(N_DET * N_DET):
            col, row = det % N_DET, det // N_DET
            x0 = px + col * PITCH + (PITCH - SIZE) / 2
            y0 = py + row * PITCH + (PITCH - SIZE) / 2
            x1, y1 = x0 + SIZE, y0 + SIZE
            cells = {
                (gx, gy)
                for gx in range(math.floor(x0), math.floor(x1) + 1)
                for gy in range(math.floor(y0), math.floor(y1) + 1)
                if 0 <= gx < GRID_X and 0 <= gy < GRID_Y
            }
            assert 1 <= len(cells) <= 2, (visit, det, cells)
            for gx, gy in sorted(cells):
                rows.append((visit, det, TRACTS[gx // 2], LOCAL_Y[gy] * 10 + LOCAL_X[gx]))
    return sorted(rows)


def write(name, header, rows):
    with open(os.path.join(HERE, name), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def main():
    obs = observations()
    write("wfd_exposures.csv", ["visit", "band"], [(v, b) for v, b, p, _, _ in obs if p == "wfd"])
    write("ddf_exposures.csv", ["visit", "band"], [(v, b) for v, b, p, _, _ in obs if p == "ddf"])
    write("ddf_sequences.csv", ["ddf_sequence", "visit"], [(s, v) for v, _, p, s, _ in obs if p == "ddf"])
    write("overlaps.csv", ["visit", "detector", "tract", "patch"], overlaps(obs))


if __name__ == "__main__":
    main()
