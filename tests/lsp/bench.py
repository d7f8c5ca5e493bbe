#!/usr/bin/env python3
"""Latency benchmark of `bpsc lsp` (not a test): a minimal JSON-RPC client over pipes.

    cargo build --release
    target/release/bpsc synth --lines 5000 -o /tmp/long.bps
    python3 tests/lsp/bench.py target/release/bpsc /tmp/long.bps

Measures, on the long campaign file:
  * diagnostics: from sending a `didChange` (an edit in the middle of the file, one that
    changes the diagnostics each time) to receiving its `publishDiagnostics`, debounce
    included;
  * hover on a setting (resolved value with its override chain) and on a dimension;
  * completion of a key and of an enum value.
Prints the median and the worst of each.  Needs only the Python standard library.
"""

import json
import os
import statistics
import subprocess
import sys
import time


class Client:
    def __init__(self, cmd):
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.next_id = 0

    def send(self, msg):
        msg["jsonrpc"] = "2.0"
        b = json.dumps(msg).encode()
        self.p.stdin.write(b"Content-Length: %d\r\n\r\n" % len(b) + b)
        self.p.stdin.flush()

    def read(self):
        n = None
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise EOFError("server closed its output")
            line = line.strip()
            if not line:
                break
            k, v = line.split(b":", 1)
            if k.lower() == b"content-length":
                n = int(v)
        return json.loads(self.p.stdout.read(n))

    def request(self, method, params):
        self.next_id += 1
        i = self.next_id
        self.send({"id": i, "method": method, "params": params})
        while True:
            m = self.read()
            if m.get("id") == i:
                return m.get("result")

    def notify(self, method, params):
        self.send({"method": method, "params": params})

    def wait_diagnostics(self, uri):
        while True:
            m = self.read()
            if m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri:
                return m["params"]["diagnostics"]


def pos(text, needle, delta=0):
    return pos_at(text, text.index(needle) + delta)


def pos_at(text, i):
    line = text.count("\n", 0, i)
    col = i - (text.rfind("\n", 0, i) + 1)
    return {"line": line, "character": len(text[i - col : i].encode("utf-16-le")) // 2}


def report(name, samples, limit_ms):
    ms = [s * 1000 for s in samples]
    med, worst = statistics.median(ms), max(ms)
    verdict = "ok" if med <= limit_ms else "OVER"
    print(f"{name:<44} median {med:7.2f} ms   max {worst:7.2f} ms   (target {limit_ms} ms: {verdict})")


def main():
    bpsc, path = sys.argv[1], os.path.abspath(sys.argv[2])
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    text = open(path).read()
    uri = "file://" + path
    c = Client([bpsc, "lsp"])
    c.request("initialize", {"processId": os.getpid(), "rootUri": None, "capabilities": {}})
    c.notify("initialized", {})
    t0 = time.perf_counter()
    c.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "bps", "version": 1, "text": text}})
    c.wait_diagnostics(uri)
    print(f"{text.count(chr(10))} lines; first check after open: {(time.perf_counter() - t0) * 1000:.1f} ms")

    # An edit in the middle of the file that toggles a diagnostic: `memory = 2GiB` <-> `memroy = 2GiB`.
    mid = text.index("memory = ", len(text) // 2)
    p0 = pos_at(text, mid)
    rng = {"start": p0, "end": {"line": p0["line"], "character": p0["character"] + 6}}
    diag_t = []
    version = 1
    for k in range(rounds):
        version += 1
        word = "memroy" if k % 2 == 0 else "memory"
        t = time.perf_counter()
        c.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"range": rng, "text": word}]})
        d = c.wait_diagnostics(uri)
        diag_t.append(time.perf_counter() - t)
        assert (len(d) > 0) == (word == "memroy"), d
    text = text[:mid] + ("memroy" if (rounds - 1) % 2 == 0 else "memory") + text[mid + 6 :]
    if "memroy" in text[mid:mid + 6]:
        version += 1
        c.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"range": rng, "text": "memory"}]})
        c.wait_diagnostics(uri)
        text = text[:mid] + "memory" + text[mid + 6 :]

    def timed(method, params):
        t = time.perf_counter()
        r = c.request(method, params)
        return time.perf_counter() - t, r

    td = {"uri": uri}
    hov_key, hov_dim, comp_key, comp_enum = [], [], [], []
    key_pos = pos_at(text, mid + 2)
    dim_pos = pos_at(text, text.index("detector) after", mid - 400) + 2)
    for _ in range(rounds):
        dt, r = timed("textDocument/hover", {"textDocument": td, "position": key_pos})
        assert r and "memory" in r["contents"]["value"], r
        hov_key.append(dt)
        dt, r = timed("textDocument/hover", {"textDocument": td, "position": dim_pos})
        assert r and "189 values" in r["contents"]["value"], r
        hov_dim.append(dt)
    # Completion: a new key line in a step, then an enum value, in the middle of the file.
    line_end = text.index("\n", mid)
    for k in range(rounds):
        version += 1
        insert = "\n    on_failure = "
        p = pos_at(text, line_end)
        c.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"range": {"start": p, "end": p}, "text": insert}]})
        t2 = text[:line_end] + insert + text[line_end:]
        kp = {"line": p["line"] + 1, "character": 4}
        dt, r = timed("textDocument/completion", {"textDocument": td, "position": kp})
        labels = {i["label"] for i in r}
        assert "memory" in labels and "run" in labels, sorted(labels)
        comp_key.append(dt)
        vp = {"line": p["line"] + 1, "character": len(insert) - 1}
        dt, r = timed("textDocument/completion", {"textDocument": td, "position": vp})
        assert {i["label"] for i in r} == {"continue", "abort"}, r
        comp_enum.append(dt)
        version += 1
        c.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"range": {"start": p, "end": {"line": p["line"] + 1, "character": len(insert) - 1}}, "text": ""}]})
        c.wait_diagnostics(uri)
    # Hover right after an edit: the server checks the changed file first.
    hov_after = []
    for k in range(rounds):
        version += 1
        word = "memroy" if k % 2 == 0 else "memory"
        c.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"range": rng, "text": word}]})
        dt, r = timed("textDocument/hover", {"textDocument": td, "position": dim_pos})
        assert r and "189 values" in r["contents"]["value"], r
        hov_after.append(dt)  # (its diagnostics were published before the answer)
    report("diagnostics after a change (30 ms debounce)", diag_t, 100)
    report("hover: setting with override chain", hov_key, 20)
    report("hover: dimension values", hov_dim, 20)
    report("hover right after a change (re-checks first)", hov_after, 20)
    report("completion: key", comp_key, 20)
    report("completion: enum value", comp_enum, 20)
    c.request("shutdown", None)
    c.notify("exit", None)
    c.p.wait(5)


if __name__ == "__main__":
    main()
