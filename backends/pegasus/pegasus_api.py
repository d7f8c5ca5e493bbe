#!/usr/bin/env python3
"""Side-by-side for the bpsc Pegasus backend: build the same workflow with the official
Pegasus Python API (PyPI `pegasus-wms.api`) and write it, timing the build and the write.

    pip install pegasus-wms.api
    backends/pegasus/bench.sh 100000               # writes /tmp/bpsc-pegasus-bench-100000/{big.bps,ir/}
    /usr/bin/time -v python3 backends/pegasus/pegasus_api.py /tmp/bpsc-pegasus-bench-100000/ir/ir.jsonl out.yml
    /usr/bin/time -v target/release/bpsc compile /tmp/bpsc-pegasus-bench-100000/big.bps --backend pegasus -o out --force

Input: the IR as JSON Lines (`bpsc compile FILE --emit ir -o DIR`).  Output: a Pegasus
5 workflow YAML with the shape bpsc writes: one job per IR compute or join job (stage-in,
stage-out, cleanup and provenance jobs dropped and the dependencies re-wired around them),
the same ids and transformation (task group) names, `bpsc wrap` arguments, outputs with
stageOut/registerReplica for archived datasets, inputs from the parents' outputs and
staged files, the same condor/dagman/pegasus/selector profiles and metadata, and
*explicit* dependencies (infer_dependencies=False).  Task indexes follow the IR file's
order, not bpsc's group order: the shape and the sizes are the same, the numbers may differ.
"""

import json
import re
import sys
import time

from Pegasus.api import Job, Namespace, Workflow

DROPPED = {"stage_in", "stage_out", "cleanup", "provenance"}


def sanitize(name):
    return re.sub(r"[^A-Za-z0-9_]", "-", name)


def main(ir_path, out_path):
    t0 = time.perf_counter()
    with open(ir_path) as f:
        header = json.loads(f.readline())
        jobs = [json.loads(line) for line in f]
    steps = {s["name"]: s for s in header["steps"]}
    archived = {
        o["dataset"]
        for s in header["steps"]
        for o in s["outputs"]
        if o["persist"] == "archive" and o["archive"]
    }
    kind = {j["id"]: j["kind"] for j in jobs}
    parents = {j["id"]: j["parents"] for j in jobs}
    t_read = time.perf_counter()

    wf = Workflow(sanitize(header["campaign"]), infer_dependencies=False)
    wf.add_metadata(campaign=header["campaign"], order=header["order"], priority=header["priority"])
    groups = {}
    made = {}
    outputs_of = {}
    for j in jobs:
        if j["kind"] in DROPPED:
            continue
        if j["kind"] == "join":
            group = "join"
        elif "cluster" in j:
            group = "cluster-" + sanitize(j["cluster"])
        else:
            group = sanitize(j["quanta"][0]["step"])
        index = groups.get(group, 0)
        groups[group] = index + 1
        job = Job(group, _id=j["id"], namespace="bpsc")
        job.add_args("wrap", "${BPSC_SUBMIT}", "--group", group, "--index", str(index))
        if j["kind"] == "compute":
            outs = []
            for q in j["quanta"]:
                for o in q["outputs"]:
                    lfn = o["path"].replace("${BPSC_SCRATCH}/", "", 1)
                    outs.append((lfn, o["dataset"]))
            for lfn, ds in outs:
                keep = ds in archived
                job.add_outputs(lfn, stage_out=keep, register_replica=keep)
            outputs_of[j["id"]] = {lfn for lfn, _ in outs}
            wanted = {i["dataset"] for q in j["quanta"] for i in steps[q["step"]]["inputs"]}
            ins = set()
            for p in parents[j["id"]]:
                if kind[p] == "compute":
                    ins |= {lfn for lfn in outputs_of.get(p, ()) if lfn.split("/", 1)[0] in wanted}
            ins -= outputs_of[j["id"]]
            if ins:
                job.add_inputs(*sorted(ins))
            r = header["resources"][j["resources"]]  # IR 2: an index into the header's list
            job.add_profiles(Namespace.CONDOR, key="request_memory", value=-(-r["memory"] // (1 << 20)))
            job.add_profiles(Namespace.CONDOR, key="request_cpus", value=r["cpus"])
            job.add_profiles(Namespace.CONDOR, key="request_disk", value=-(-r["disk"] // 1024))
            job.add_profiles(Namespace.PEGASUS, key="runtime", value=r["walltime"])
            job.add_profiles(Namespace.DAGMAN, key="RETRY", value=str(r["retries"]))
            q0 = j["quanta"][0]
            job.add_metadata(
                campaign=header["campaign"],
                step=",".join(dict.fromkeys(q["step"] for q in j["quanta"])),
                data_id=",".join(f"{k}={v}" for k, v in q0["data_id"].items()),
            )
            site = j.get("site", "condorpool")
        else:
            job.add_metadata(campaign=header["campaign"], kind="join")
            site = "local"
        job.add_profiles(Namespace.DAGMAN, key="PRIORITY", value=str(j["priority"]))
        job.add_profiles(Namespace.SELECTOR, key="execution.site", value=site)
        wf.add_jobs(job)
        made[j["id"]] = job
    t_jobs = time.perf_counter()

    # Explicit dependencies between kept jobs, re-wired around the dropped ones.
    children = {}
    for j in jobs:
        for p in j["parents"]:
            children.setdefault(p, []).append(j["id"])
    n_edges = 0
    for pid, job in made.items():
        kids, stack, seen = set(), list(children.get(pid, ())), set()
        while stack:
            c = stack.pop()
            if c in made:
                kids.add(c)
            elif c not in seen:
                seen.add(c)
                stack.extend(children.get(c, ()))
        if kids:
            wf.add_dependency(job, children=[made[c] for c in sorted(kids)])
            n_edges += len(kids)
    t_deps = time.perf_counter()

    wf.write(out_path)
    t_write = time.perf_counter()
    print(
        f"jobs {len(made)} dependencies {n_edges}: read IR {t_read - t0:.2f} s, "
        f"jobs {t_jobs - t_read:.2f} s, dependencies {t_deps - t_jobs:.2f} s, "
        f"write {t_write - t_deps:.2f} s, total {t_write - t0:.2f} s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
