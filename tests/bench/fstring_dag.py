#!/usr/bin/env python3
"""Peer for the writers benchmark: a same-shaped DAGMan file written with plain Python
f-strings (the floor for a Python writer), from a bpsc synthetic campaign's shape.

    bpsc compile CAMPAIGN --emit summary > summary.json
    python3 fstring_dag.py summary.json OUT_DIR

The summary gives the quanta per step (isr, calibrate, make_warp, coadd, summary).  Every node
gets JOB, VARS (its task index), RETRY and PRIORITY lines, as a DAG writer that does not
compact would; isr -> calibrate is one-to-one, the other step pairs go through one join node
each (about one edge per node, as in bpsc's DAG).  Prints nodes and seconds as JSON.
"""
import json
import sys
import time
from pathlib import Path


def main(summary_path, out_dir):
    s = json.load(open(summary_path))
    q = {st["name"]: st["quanta"] for st in s["steps"]}
    t0 = time.time()
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    steps = ["isr", "calibrate", "make_warp", "coadd", "summary"]
    prio = {name: 10 * (len(steps) - i) for i, name in enumerate(steps)}
    with open(Path(out_dir) / "workflow.dag", "w", buffering=1 << 20) as f:
        w = f.write
        w("CONFIG dagman.config\n")
        for name in steps:
            p = prio[name]
            for i in range(q[name]):
                node = f"{name}_{i}"
                w(f"JOB {node} {name}.sub\nVARS {node} bpsc_i=\"{i}\"\nRETRY {node} 2\nPRIORITY {node} {p}\n")
        for k in range(3):
            w(f"JOB join_{k} noop.sub NOOP\n")
        for i in range(min(q["isr"], q["calibrate"])):
            w(f"PARENT isr_{i} CHILD calibrate_{i}\n")
        for k, (a, b) in enumerate([("calibrate", "make_warp"), ("make_warp", "coadd"), ("coadd", "summary")]):
            for i in range(q[a]):
                w(f"PARENT {a}_{i} CHILD join_{k}\n")
            for i in range(q[b]):
                w(f"PARENT join_{k} CHILD {b}_{i}\n")
    nodes = sum(q[n] for n in steps) + 3
    print(json.dumps({"nodes": nodes, "seconds": round(time.time() - t0, 2)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
