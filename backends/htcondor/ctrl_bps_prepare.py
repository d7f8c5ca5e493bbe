#!/usr/bin/env python3
"""Side-by-side benchmark: LSST ctrl_bps's prepare step with its HTCondor plugin
(PyPI lsst-ctrl-bps, lsst-ctrl-bps-htcondor; Python >= 3.12) on the shape of a bpsc
synthetic campaign.

    bpsc compile /tmp/syn/campaign.bps --emit summary > summary.json
    /usr/bin/time -f '%e s %M KiB' python3.12 ctrl_bps_prepare.py summary.json OUTDIR

A GenericWorkflow gets one job per quantum of each step (the same counts bpsc lowers to),
edges isr -> calibrate one-to-one and the later steps gathered in chunks of the same sizes
(explicit parent lists; ctrl_bps has no join nodes), then HTCondorService.prepare writes the
DAG and its per-job files.  The timing covers building the workflow and prepare.
"""
import json
import sys
import time
from collections import Counter

from lsst.ctrl.bps import BpsConfig, GenericWorkflow, GenericWorkflowExec, GenericWorkflowJob
from lsst.ctrl.bps.htcondor import HTCondorService


def main(summary, out):
    q = {st["name"]: st["quanta"] for st in json.load(open(summary))["steps"]}
    t0 = time.time()
    gw = GenericWorkflow("synthetic")
    exe = GenericWorkflowExec("bpsc", "/usr/bin/bpsc", False)

    def job(label, i):
        return GenericWorkflowJob(name=f"{label}_{i}", label=label, quanta_counts=Counter({label: 1}), executable=exe,
                                  arguments=f"wrap . --group {label} --index {i}", request_memory=2048, request_cpus=1,
                                  number_of_retries=2)

    prev = None
    for label in ["isr", "calibrate", "make_warp", "coadd", "summary"]:
        n = q[label]
        names = []
        for i in range(n):
            j = job(label, i)
            if prev is None:
                gw.add_job(j)
            elif len(prev) == n:
                gw.add_job(j, parent_names=[prev[i]])
            else:
                k = max(1, len(prev) // n)
                lo = i * k
                hi = len(prev) if i == n - 1 else min(len(prev), lo + k)
                gw.add_job(j, parent_names=prev[lo:hi])
            names.append(j.name)
        prev = names
    t1 = time.time()
    config = BpsConfig({"submitPath": out, "bpsUseShared": True, "overwriteJobFiles": True, "memoryLimit": 491520, "wmsServiceClass": "lsst.ctrl.bps.htcondor.HTCondorService"})
    HTCondorService(config).prepare(config, gw, out_prefix=out)
    t2 = time.time()
    print(json.dumps({"jobs": len(gw), "build_seconds": round(t1 - t0, 2), "prepare_seconds": round(t2 - t1, 2)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
