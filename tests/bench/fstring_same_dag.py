#!/usr/bin/env python3
"""Peer for the writers benchmark: the same DAGMan file as `bpsc compile --backend htcondor`
writes for a `bpsc synth` campaign, computed from the same input tables and written with
plain Python f-strings.

    python3 fstring_same_dag.py CAMPAIGN_DIR OUT_DIR            # write OUT_DIR/workflow.dag
    python3 fstring_same_dag.py --compare BPSC_DAG PEER_DAG     # same nodes, edges, settings?

Where `fstring_dag.py` is handed the quanta counts and streams one fixed line pattern (a
floor on formatting alone), this peer does the work any Python writer of this campaign has to
do: read `data/exposures.csv` and `data/overlaps.csv`, build the coverage (every exposure's
visit x every detector), the make_warp quanta (the overlaps of covered visit-detectors), the
coadd quanta (tract x patch x the visit's band), the edges (isr -> calibrate one to one,
calibrate -> make_warp and make_warp -> coadd through the overlap and exposure relations,
coadd -> one NOOP join -> summary) and the node priorities, then write JOB, RETRY,
PRIORITY, FINAL and PARENT lines as bpsc does, with idiomatic dicts, sets and f-strings.

`--compare` proves the shape: the two files must have the same JOB lines, the same PARENT ->
CHILD pairs (however they are grouped on lines), the same PRIORITY lines and the same
RETRY/FINAL/VARS lines; comments and line order do not count.  Exit 0 when equal, 1 (with
the first differences) when not.  The benchmark compares the files at every size it runs.

Prints nodes, edges and seconds as JSON.
"""
import json
import re
import sys
import time
from pathlib import Path


def read_rows(path):
    with open(path) as f:
        next(f)  # header
        return [line.rstrip("\n").split(",") for line in f if line.strip()]


def write(campaign_dir, out_dir):
    t0 = time.time()
    campaign_dir = Path(campaign_dir)
    text = (campaign_dir / "campaign.bps").read_text()
    m = re.search(r"dimension\s+detector\s*=\s*(\d+)\.\.(\d+)", text)
    if not m:
        sys.exit("fstring_same_dag.py: no `dimension detector = A..B` in campaign.bps")
    detectors = range(int(m.group(1)), int(m.group(2)))

    band_of = {}
    for visit, band in read_rows(campaign_dir / "data" / "exposures.csv"):
        band_of[int(visit)] = band
    visits = sorted(band_of)

    # make_warp quanta and calibrate -> make_warp edges from the overlap relation.
    children = {}  # (visit, detector) -> set of (visit, tract, patch)
    warps = set()
    covered_detectors = set(detectors)
    for visit, detector, tract, patch in read_rows(campaign_dir / "data" / "overlaps.csv"):
        v, d = int(visit), int(detector)
        if v not in band_of or d not in covered_detectors:
            continue
        w = (v, int(tract), int(patch))
        warps.add(w)
        children.setdefault((v, d), set()).add(w)
    warps = sorted(warps)
    coadds = sorted({(t, p, band_of[v]) for v, t, p in warps}, key=lambda c: (c[0], c[1], c[2]))

    # Priorities as bpsc gives them (breadth-first: the step's depth from the end).
    prio = {"isr": 4, "calibrate": 3, "make_warp": 2, "coadd": 1}

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    nodes = edges = 0
    with open(out_dir / "workflow.dag", "w", buffering=1 << 20) as f:
        w = f.write
        w("CONFIG htcondor/dagman.config\n")
        w("NODE_STATUS_FILE workflow.dag.status 60\n")
        w("JOBSTATE_LOG workflow.dag.jobstate.log\n")
        for v in visits:
            for d in detectors:
                w(f"JOB isr_{v}_{d} htcondor/isr.sub\n")
        for v in visits:
            for d in detectors:
                w(f"JOB calibrate_{v}_{d} htcondor/calibrate.sub\n")
        for v, t, p in warps:
            w(f"JOB make_warp_{v}_{t}_{p} htcondor/make_warp.sub\n")
        for t, p, b in coadds:
            w(f"JOB coadd_{t}_{p}_{b} htcondor/coadd.sub\n")
        w("JOB summary htcondor/summary.sub\n")
        w("JOB join_0 htcondor/noop.sub NOOP\n")
        nodes = 2 * len(visits) * len(detectors) + len(warps) + len(coadds) + 2
        w("RETRY ALL_NODES 2\n")
        for step in ("isr", "calibrate"):
            p_ = prio[step]
            for v in visits:
                for d in detectors:
                    w(f"PRIORITY {step}_{v}_{d} {p_}\n")
        for v, t, p in warps:
            w(f"PRIORITY make_warp_{v}_{t}_{p} 2\n")
        for t, p, b in coadds:
            w(f"PRIORITY coadd_{t}_{p}_{b} 1\n")
        w("FINAL provenance htcondor/provenance.sub\n")
        w('VARS provenance bpsc_i="0"\n')
        w("SCRIPT POST provenance htcondor/bpsc-post.sh final $RETURN $DAG_STATUS $FAILED_COUNT\n")
        for v in visits:
            for d in detectors:
                w(f"PARENT isr_{v}_{d} CHILD calibrate_{v}_{d}\n")
        edges += len(visits) * len(detectors)
        for v in visits:
            for d in detectors:
                kids = children.get((v, d))
                if kids:
                    names = " ".join(f"make_warp_{a}_{b}_{c}" for a, b, c in sorted(kids))
                    w(f"PARENT calibrate_{v}_{d} CHILD {names}\n")
                    edges += len(kids)
        for v, t, p in warps:
            w(f"PARENT make_warp_{v}_{t}_{p} CHILD coadd_{t}_{p}_{band_of[v]}\n")
        edges += len(warps)
        for t, p, b in coadds:
            w(f"PARENT coadd_{t}_{p}_{b} CHILD join_0\n")
        edges += len(coadds)
        w("PARENT join_0 CHILD summary\n")
        edges += 1
    print(json.dumps({"nodes": nodes + 1, "edges": edges, "seconds": round(time.time() - t0, 2)}))


def shape(path):
    """The set of facts a DAG file states, independent of grouping, order and comments."""
    facts = set()
    with open(path) as f:
        for line in f:
            words = line.split()
            if not words or words[0].startswith("#"):
                continue
            if words[0] == "PARENT":
                i = words.index("CHILD")
                for p in words[1:i]:
                    for c in words[i + 1:]:
                        facts.add(("EDGE", p, c))
            elif words[0] in ("JOB", "PRIORITY", "RETRY", "FINAL", "VARS", "SCRIPT", "CONFIG"):
                facts.add(tuple(words))
    return facts


def compare(bpsc_dag, peer_dag):
    a, b = shape(bpsc_dag), shape(peer_dag)
    if a == b:
        edges = sum(1 for x in a if x[0] == "EDGE")
        jobs = sum(1 for x in a if x[0] in ("JOB", "FINAL"))
        print(json.dumps({"same": True, "nodes": jobs, "edges": edges}))
        return 0
    only_a = sorted(a - b)[:5]
    only_b = sorted(b - a)[:5]
    print(json.dumps({"same": False, "only_in_bpsc": only_a, "only_in_peer": only_b,
                      "counts": [len(a - b), len(b - a)]}))
    return 1


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    write(sys.argv[1], sys.argv[2])
