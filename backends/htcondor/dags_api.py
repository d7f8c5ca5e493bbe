#!/usr/bin/env python3
"""Side-by-side benchmark: HTCondor's own DAG writer (PyPI `htcondor`, module htcondor2.dags)
on the shape of a bpsc synthetic campaign.

    bpsc synth --jobs 1000000 -o /tmp/syn
    bpsc compile /tmp/syn/campaign.bps --emit summary > /tmp/syn/summary.json
    /usr/bin/time -f '%e s %M KiB' python dags_api.py /tmp/syn/summary.json /tmp/dags-out

The summary gives the quanta per step (isr, calibrate, make_warp, coadd, summary).  Layers get
the same node counts and per-node VARS as bpsc writes (a task index).  htcondor2.dags only has
layer-to-layer edge patterns, so the edges are the nearest it can express: isr -> calibrate
OneToOne (exact); calibrate -> make_warp, make_warp -> coadd and coadd -> summary ManyToMany,
which it writes through one join node each (Grouper needs layer sizes that divide evenly,
which the overlap relation's counts do not).  Edge counts are therefore comparable, not
identical (about one edge per node either way); the point is the writer's cost per node.
"""
import json
import sys
import time
from pathlib import Path

import htcondor2
from htcondor2 import dags


def main(summary_path, out_dir):
    s = json.load(open(summary_path))
    q = {st["name"]: st["quanta"] for st in s["steps"]}
    t0 = time.time()
    sub = htcondor2.Submit({"executable": "/usr/bin/bpsc", "arguments": "wrap . --group $(group) --index $(bpsc_i)", "request_memory": "2048"})
    dag = dags.DAG()
    isr = dag.layer(name="isr", submit_description=sub, vars=[{"group": "isr", "bpsc_i": str(i)} for i in range(q["isr"])])
    cal = isr.child_layer(name="calibrate", submit_description=sub, vars=[{"group": "calibrate", "bpsc_i": str(i)} for i in range(q["calibrate"])], edge=dags.OneToOne())
    warp = cal.child_layer(name="make_warp", submit_description=sub, vars=[{"group": "make_warp", "bpsc_i": str(i)} for i in range(q["make_warp"])], edge=dags.ManyToMany())
    coadd = warp.child_layer(name="coadd", submit_description=sub, vars=[{"group": "coadd", "bpsc_i": str(i)} for i in range(q["coadd"])], edge=dags.ManyToMany())
    coadd.child_layer(name="summary", submit_description=sub, vars=[{"group": "summary", "bpsc_i": "0"}], edge=dags.ManyToMany())
    t1 = time.time()
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    dags.write_dag(dag, Path(out_dir))
    t2 = time.time()
    nodes = sum(q.values())
    print(json.dumps({"nodes": nodes, "build_seconds": round(t1 - t0, 2), "write_seconds": round(t2 - t1, 2)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
