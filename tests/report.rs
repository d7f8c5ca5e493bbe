//! `bpsc report` on synthetic submit directories: an HTCondor-shaped directory of the drp
//! example (DAGMan's metrics file, records as `bpsc wrap` writes them, clusters, retries
//! and a failure that prunes its descendants); a campaign and its restart as one history,
//! also once the campaign file is gone; hostile values in every field of a record, which
//! must not become markup; and the aggregation of a large campaign.  The real engine runs
//! are tests/report_slurm.rs; the browser is tests/report_browser.rs.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

const T0: f64 = 1_796_605_323.0; // 2026-12-07

fn compile(bps: &Path, backend: &str, out: &Path) {
    let (code, _, err) = bpsc_cmd!("compile", bps, "--backend", backend, "-o", out, "--force");
    assert_eq!(code, 0, "{err}");
}

fn report_json(dirs: &[&Path]) -> Value {
    let mut args: Vec<String> = vec!["report".into(), "--json".into()];
    args.extend(dirs.iter().map(|d| d.display().to_string()));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_bpsc")).args(&args).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn report_html(dirs: &[&Path], out: &Path) -> String {
    let mut args: Vec<String> = vec!["report".into(), "-o".into(), out.display().to_string()];
    args.extend(dirs.iter().map(|d| d.display().to_string()));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_bpsc")).args(&args).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read_to_string(out).unwrap()
}

fn status_json(dir: &Path) -> Value {
    let (_, out, err) = bpsc_cmd!("status", "--json", dir);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"))
}

fn step<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["steps"].as_array().unwrap().iter().find(|s| s["step"] == name).unwrap_or_else(|| panic!("no step {name}"))
}

/// A succeeded attempt of `line` at `t`, using `frac` of the requested memory.
fn ok_attempt(line: &Value, t: f64, secs: f64, frac: f64, host: &str) -> Value {
    let mem = line["resources"]["memory"].as_f64().unwrap_or(1e9);
    json!({"exit_code": 0, "host": host, "start": common::rfc3339(t), "end": common::rfc3339(t + secs), "seconds": secs,
           "peak_rss_kib": (mem * frac / 1024.0) as i64, "software": "lsst_distrib w_2026_46", "env_digest": "sha256:aa",
           "inputs": [{"dataset": "raw", "path": "/repo/raw/x.fits", "size": 1000}],
           "outputs": [{"dataset": "out", "path": "/scratch/y.fits", "size": 4000}]})
}

fn failed_attempt(t: f64, secs: f64, host: &str, exit: Option<i64>, signal: Option<i64>) -> Value {
    json!({"exit_code": exit, "signal": signal, "host": host, "start": common::rfc3339(t), "end": common::rfc3339(t + secs),
           "seconds": secs, "peak_rss_kib": 100_000, "error": "payload failed", "software": "lsst_distrib w_2026_46"})
}

#[test]
fn htcondor_shaped_drp_run() {
    let dir = common::fresh("report-drp");
    let sub = dir.join("submit");
    compile(&common::repo().join("examples/drp/drp.bps"), "htcondor", &sub);
    // One measure quantum is killed (signal 9) on every try; what depends on it never runs.
    let mut measure: Vec<String> = Vec::new();
    common::synth_records(&sub, |t| {
        if t.line["quanta"][0]["step"] == "measure" {
            measure.push(t.line["id"].as_str().unwrap().to_string());
        }
        Vec::new()
    });
    measure.sort();
    let bad = measure[0].clone();
    let doomed = common::descendants(&sub, &[&bad]);
    let _ = std::fs::remove_dir_all(sub.join("provenance"));
    let n = common::synth_records(&sub, |t| {
        let id = t.line["id"].as_str().unwrap();
        let h = common::mix(t.index ^ (t.group.len() as u64) << 32);
        let start = T0 + (h % 3600) as f64;
        let host = format!("node{:02}", h % 6);
        let retries = t.line["resources"]["retries"].as_u64().unwrap_or(0);
        if id == bad {
            return (0..=retries).map(|k| failed_attempt(start + k as f64 * 700.0, 600.0, "node03", None, Some(9))).collect();
        }
        if doomed.contains(id) {
            return Vec::new();
        }
        let frac = 0.2 + (h >> 20) as f64 % 100.0 / 1000.0;
        if h.is_multiple_of(7) && t.line["kind"] == "compute" {
            // Fails once (exit 1), succeeds on the retry.
            vec![failed_attempt(start, 30.0, &host, Some(1), None), ok_attempt(t.line, start + 60.0, 300.0, frac, &host)]
        } else {
            vec![ok_attempt(t.line, start, 100.0 + (h % 500) as f64, frac, &host)]
        }
    });
    assert!(n > 100, "{n} records");
    common::dag_finished(&sub, 1);
    let v = report_json(&[&sub]);
    let st = status_json(&sub);
    // One run: the report counts what bpsc status counts.
    assert_eq!(v["bpsc_report"], 1);
    assert_eq!(v["runs"].as_array().unwrap().len(), 1);
    assert_eq!(v["runs"][0]["backend"], "htcondor");
    assert_eq!(v["state"], "failed");
    for k in ["jobs", "succeeded", "failed", "skipped", "pending", "running"] {
        assert_eq!(v["totals"][k], st["totals"][k], "{k}");
    }
    for s in st["steps"].as_array().unwrap() {
        let r = step(&v, s["step"].as_str().unwrap());
        for k in ["jobs", "succeeded", "failed", "skipped"] {
            assert_eq!(r[k], s[k], "{} {k}", s["step"]);
        }
    }
    assert_eq!(v["totals"]["attempts"].as_u64().unwrap() as usize, n);
    // The cluster of three steps: its memory hint is written for each of them.
    let sf = step(&v, "single_frame");
    assert_eq!(sf["member_steps"], json!(["isr", "characterize", "calibrate"]));
    assert_eq!(sf["requested"]["memory_bytes"], 4u64 << 30, "a cluster takes the largest memory of its steps");
    let hint = &sf["hints"][0];
    assert_eq!(hint["key"], "memory");
    assert_eq!(hint["action"], "lower", "{hint}");
    assert!(hint["paste"].as_str().unwrap().starts_with("step isr { memory = "), "{hint}");
    assert!(sf["retried_jobs"].as_u64().unwrap() > 0);
    let ms = step(&v, "merge_detections");
    assert_eq!(ms["hints"][1]["key"], "walltime");
    assert!(ms["hints"][1]["evidence"].as_str().unwrap().contains("of 1.0 h requested"), "{}", ms["hints"][1]);
    // The step graph from the parents in the task tables, without the campaign file.
    let names: Vec<String> = v["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap().to_string()).collect();
    let edges: BTreeSet<(String, String)> = v["graph"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (names[e[0].as_u64().unwrap() as usize].clone(), names[e[1].as_u64().unwrap() as usize].clone()))
        .collect();
    for (a, b) in
        [("single_frame", "make_warp"), ("make_warp", "assemble_coadd"), ("merge_detections", "measure"), ("measure", "merge_measurements")]
    {
        assert!(edges.contains(&(a.to_string(), b.to_string())), "{a} -> {b} missing: {edges:?}");
    }
    assert!(!names.iter().any(|n| n == "join"), "joins are bookkeeping");
    // The failure: still failed first, its last try, signal 9 on node03.
    let f = &v["failures"]["rows"][0];
    assert_eq!(f["job"], bad.as_str());
    assert_eq!((f["signal"].as_i64(), f["host"].as_str(), f["final_state"].as_str()), (Some(9), Some("node03"), Some("failed")));
    assert_eq!(f["try_number"], step(&v, "measure")["requested"]["retries"].as_u64().unwrap() + 1);
    assert!(f["log"].as_str().unwrap().ends_with(".err"));
    assert!(f["data_id_text"].as_str().unwrap().contains("tract="), "{f}");
    assert_eq!(v["hosts"][0]["host"], "node03");
    assert_eq!(v["timeline"]["mode"], "attempts");
    assert!(v["timeline"]["lanes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["attempts"].as_array().unwrap())
        .any(|a| a["outcome"] == "retry_succeeded"));
    assert_eq!(v["provenance"]["software"][0]["what"], "lsst_distrib w_2026_46");
    assert!(v["provenance"]["outputs_bytes"].as_u64().unwrap() > 0);
    // The page shows the same.
    let html = report_html(&[&sub], &dir.join("report.html"));
    for s in &names {
        assert!(html.contains(&format!("data-step=\"{s}\"")), "{s}");
    }
    assert!(html.contains(&format!("data-job=\"{bad}\"")));
    assert!(!html.contains("<script"), "no script");
}

/// Records for a run of `mini`: `fail` fails with exit 1 on every attempt (its descendants
/// never run); everything else succeeds.
fn run_mini(sub: &Path, t0: f64, fail: Option<&str>) -> usize {
    let doomed = fail.map(|f| common::descendants(sub, &[f])).unwrap_or_default();
    common::synth_records(sub, |t| {
        let id = t.line["id"].as_str().unwrap();
        let start = t0 + t.index as f64 * 10.0;
        if Some(id) == fail {
            return vec![
                failed_attempt(start, 5.0, "bad-node", Some(1), None),
                failed_attempt(start + 20.0, 5.0, "bad-node", Some(1), None),
            ];
        }
        if doomed.contains(id) {
            return Vec::new();
        }
        vec![ok_attempt(t.line, start, 5.0, 0.3, "good-node")]
    })
}

#[test]
fn a_campaign_and_its_restart_are_one_history() {
    let dir = common::fresh("report-restart");
    let bps = common::mini_campaign(&dir, "mini");
    let sub = dir.join("submit");
    compile(&bps, "htcondor", &sub);
    run_mini(&sub, T0, Some("calibrate_2_1"));
    common::dag_finished(&sub, 1);
    let one = report_json(&[&sub]);
    assert_eq!(one["state"], "failed");
    assert_eq!(step(&one, "coadd")["skipped"], 1);
    let restart = dir.join("restart1");
    let (code, out, err) = bpsc_cmd!("restart", &sub, "-o", &restart);
    assert_eq!(code, 0, "{out}{err}");
    run_mini(&restart, T0 + 3600.0, None);
    common::dag_finished(&restart, 0);
    // Naming the restart is enough: restart.of is followed back.
    let v = report_json(&[&restart]);
    assert_eq!(v["runs"].as_array().unwrap().len(), 2);
    assert_eq!(v["runs"][1]["restart_of"].as_str().map(PathBuf::from), Some(sub.clone()));
    assert_eq!(v["state"], "done", "{:#}", v["totals"]);
    assert_eq!(v["totals"]["jobs"], one["totals"]["jobs"], "a job in both runs is one job");
    assert_eq!(v["totals"]["succeeded"], v["totals"]["jobs"]);
    // The failed job's two failed tries are listed, and it succeeded on its third.
    let rows = v["failures"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows
        .iter()
        .all(|r| r["job"] == "calibrate_2_1" && r["final_state"] == "succeeded" && r["run"] == 0 && r["host"] == "bad-node"));
    let lane = v["timeline"]["lanes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| v["steps"][l["step"].as_u64().unwrap() as usize]["step"] == "calibrate")
        .unwrap();
    let third = lane["attempts"].as_array().unwrap().iter().find(|a| a["job"] == "calibrate_2_1" && a["run"] == 1).unwrap();
    assert_eq!((third["try_number"].as_u64(), third["outcome"].as_str()), (Some(3), Some("retry_succeeded")));
    assert_eq!(step(&v, "calibrate")["retried_jobs"], 1);
    assert!(v["timeline"]["run_starts"][1].as_f64().unwrap() >= 3600.0);
    assert_eq!(v["hosts"][0], json!({"host": "bad-node", "failures": 2, "attempts": 2}));
    // Both directories named, in any order: the same history.
    let both = report_json(&[&restart, &sub]);
    assert_eq!(both["totals"], v["totals"]);
    assert_eq!(both["runs"][0]["submit"], v["runs"][0]["submit"]);
    // The campaign file gone: still a report, and it says so.
    std::fs::remove_file(&bps).unwrap();
    let gone = report_json(&[&restart]);
    assert_eq!(gone["totals"], v["totals"]);
    assert_eq!(gone["graph"]["edges"], v["graph"]["edges"]);
    assert_eq!(gone["runs"][0]["campaign_file_present"], false);
    let html = report_html(&[&restart], &dir.join("r.html"));
    assert!(html.contains("no longer there"));
    // Another campaign's directory is refused.
    let other = dir.join("other");
    compile(&common::mini_campaign(&dir, "other"), "htcondor", &other);
    let (code, _, err) = bpsc_cmd!("report", "--json", &restart, &other);
    assert_eq!(code, 2);
    assert!(err.contains("a report shows one campaign"), "{err}");
    let (code, _, err) = bpsc_cmd!("report", dir.join("nothing"));
    assert_eq!((code, err.contains("not a bpsc submit directory")), (2, true), "{err}");
}

// ------------------------------------------------------------------ escaping

/// Values no record field may turn into markup.
fn hostile() -> Vec<String> {
    let mut v: Vec<String> = bpsc::ir::quote::INJECTION_CORPUS.iter().map(|s| s.to_string()).collect();
    v.extend(
        [
            "<script>alert(1)</script>",
            "\"><img src=x onerror=alert(1)>",
            "'><svg onload=alert(1)>",
            "</style><script>x</script>",
            "</title><script>x</script>",
            "<!--",
            "]]><foreignObject>",
            "javascript:alert(1)",
            "&lt;b&gt;entity&lt;/b&gt;",
            "a\u{0}b\u{1b}[31mred",
            "</text></svg><iframe src=//evil>",
            "{{ campaign }}",
        ]
        .map(String::from),
    );
    v
}

/// Every tag of `html`: (name, attribute names and values).  Panics on a `<` that does
/// not start a well-formed tag, so text holding a raw `<` fails too.
fn tags(html: &str) -> Vec<(String, Vec<(String, String)>)> {
    let b = html.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(k) = html[i..].find('<') {
        let mut p = i + k + 1;
        if html[p..].starts_with("!DOCTYPE") {
            i = p + html[p..].find('>').unwrap() + 1;
            continue;
        }
        let closing = b[p] == b'/';
        if closing {
            p += 1;
        }
        let start = p;
        while p < b.len() && (b[p].is_ascii_alphanumeric() || b[p] == b'-') {
            p += 1;
        }
        let name = html[start..p].to_string();
        assert!(!name.is_empty(), "a `<` that starts no tag at {}: {:?}", i + k, &html[i + k..(i + k + 60).min(html.len())]);
        let mut attrs = Vec::new();
        loop {
            while b[p].is_ascii_whitespace() {
                p += 1;
            }
            if b[p] == b'>' || html[p..].starts_with("/>") {
                break;
            }
            let s = p;
            while b[p].is_ascii_alphanumeric() || b[p] == b'-' || b[p] == b':' {
                p += 1;
            }
            let an = html[s..p].to_string();
            assert!(!an.is_empty(), "malformed tag <{name}> at {}: {:?}", i + k, &html[i + k..(p + 40).min(html.len())]);
            let mut val = String::new();
            if b[p] == b'=' {
                assert_eq!(b[p + 1], b'"', "unquoted attribute {an} in <{name}>");
                let e = p + 2 + html[p + 2..].find('"').unwrap();
                val = html[p + 2..e].to_string();
                p = e + 1;
            }
            attrs.push((an, val));
        }
        i = p;
        if !closing && (name == "style" || name == "title") {
            let end = format!("</{name}>");
            let e = html[i..].find(&end).unwrap_or_else(|| panic!("unclosed <{name}>"));
            assert!(!html[i..i + e].contains('<'), "markup inside <{name}>");
            i += e;
        }
        out.push((name, attrs));
    }
    out
}

#[test]
fn no_value_from_a_record_becomes_markup() {
    let dir = common::fresh("report-hostile");
    let sub = dir.join("submit");
    compile(&common::mini_campaign(&dir, "mini"), "htcondor", &sub);
    let evil = hostile();
    let pick = |k: usize| evil[k % evil.len()].clone();
    let mut k = 0usize;
    common::synth_records(&sub, |t| {
        k += 1;
        let (a, b, c, d, e) = (pick(k), pick(k + 7), pick(k + 13), pick(k + 19), pick(k + 23));
        let quanta: Vec<Value> = t.line["quanta"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|q| json!({"step": q["step"], "data_id": {"visit": a, "detector": b, "x": {"nested": c}}, "exit_code": 1}))
            .collect();
        let fail = json!({"exit_code": 1, "signal": null, "host": a, "start": common::rfc3339(T0 + k as f64), "end": common::rfc3339(T0 + k as f64 + 9.0),
            "seconds": 9.0, "peak_rss_kib": 1000, "error": b, "software": c, "env_digest": d, "quanta": quanta,
            "log": {"out": e, "err": d}, "inputs": [{"dataset": a, "size": 3}], "outputs": [{"dataset": e, "size": 5}]});
        let mut ok = fail.clone();
        ok["exit_code"] = json!(0);
        ok["quanta"] = json!([]);
        vec![fail, ok]
    });
    common::dag_finished(&sub, 0);
    let html = report_html(&[&sub], &dir.join("report.html"));
    // Only our tags and attributes, links only inside the page.
    let allowed_tags: BTreeSet<&str> = [
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "header",
        "div",
        "h1",
        "h2",
        "h3",
        "span",
        "nav",
        "a",
        "main",
        "section",
        "p",
        "b",
        "i",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "svg",
        "rect",
        "defs",
        "marker",
        "path",
        "g",
        "text",
        "line",
        "figure",
        "figcaption",
        "pre",
        "code",
        "br",
        "ul",
        "li",
        "footer",
    ]
    .into();
    let allowed_attrs: BTreeSet<&str> = [
        "lang",
        "charset",
        "http-equiv",
        "content",
        "name",
        "class",
        "id",
        "href",
        "width",
        "height",
        "viewBox",
        "role",
        "aria-label",
        "x",
        "y",
        "x1",
        "x2",
        "y1",
        "y2",
        "rx",
        "d",
        "refX",
        "refY",
        "markerWidth",
        "markerHeight",
        "orient",
        "marker-end",
        "data-step",
        "data-kind",
        "data-count",
        "data-job",
        "data-key",
        "colspan",
        "title",
    ]
    .into();
    let all = tags(&html);
    assert!(all.len() > 100);
    for (name, attrs) in &all {
        assert!(allowed_tags.contains(name.as_str()), "tag <{name}> {attrs:?}");
        for (a, v) in attrs {
            assert!(allowed_attrs.contains(a.as_str()), "attribute {a}={v:?} on <{name}>");
            if a == "href" {
                assert!(v.starts_with('#'), "href {v:?}");
            }
            assert!(!v.to_ascii_lowercase().contains("javascript:") || a.starts_with("data-") || a == "aria-label", "{a}={v:?}");
        }
    }
    // And the values are there, readable, escaped.
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
    assert!(html.contains("&amp;lt;b&amp;gt;entity"));
    assert!(!html.contains('\u{0}') && !html.contains('\u{1b}'));
    // The JSON keeps them as they are.
    let v = report_json(&[&sub]);
    let text = serde_json::to_string(&v).unwrap();
    assert!(text.contains(r#"\"><img src=x onerror=alert(1)>"#));
}

// ------------------------------------------------------------------ scale

/// A synthetic campaign of about `jobs` jobs compiled for Slurm, with one record per job
/// (2 % fail once then succeed, 0.5 % fail on every try): (submit dir, records written).
fn large(name: &str, jobs: u64) -> (PathBuf, usize) {
    large_in(&common::fresh(name), jobs)
}

fn large_in(dir: &Path, jobs: u64) -> (PathBuf, usize) {
    let (code, _, err) = bpsc_cmd!("synth", "--jobs", jobs.to_string(), "-o", dir.join("c"));
    assert_eq!(code, 0, "{err}");
    let sub = dir.join("submit");
    let (code, _, err) = bpsc_cmd!("compile", dir.join("c/campaign.bps"), "--backend", "slurm", "-o", &sub);
    assert_eq!(code, 0, "{err}");
    let n = common::synth_records(&sub, |t| {
        let h = common::mix(t.index.wrapping_mul(31) ^ (t.group.len() as u64) << 40);
        let start = T0 + (h % 86_400) as f64;
        let host = format!("node{:03}", h % 200);
        let frac = 0.15 + (h >> 16) as f64 % 200.0 / 1000.0;
        match h % 200 {
            0 => (0..4).map(|k| failed_attempt(start + k as f64 * 100.0, 50.0, &host, Some(1), None)).collect(),
            1..=4 => vec![
                failed_attempt(start, 30.0, &host, None, Some(9)),
                ok_attempt(t.line, start + 60.0, 200.0 + (h % 900) as f64, frac, &host),
            ],
            _ => vec![ok_attempt(t.line, start, 200.0 + (h % 900) as f64, frac, &host)],
        }
    });
    (sub, n)
}

#[test]
fn a_large_campaign_is_aggregated() {
    let (sub, n) = large("report-large", 20_000);
    assert!(n > 20_000);
    let out = sub.parent().unwrap().join("report.html");
    let html = report_html(&[&sub], &out);
    let v = report_json(&[&sub]);
    assert_eq!(v["timeline"]["mode"], "binned");
    let lanes = v["timeline"]["lanes"].as_array().unwrap();
    assert!(lanes.iter().all(|l| l["attempts"].as_array().unwrap().is_empty()));
    assert!(lanes.iter().any(|l| l["bins"].as_array().unwrap().len() == 200));
    assert_eq!(v["failures"]["rows"].as_array().unwrap().len(), 200);
    let not_shown = v["failures"]["not_shown"].as_u64().unwrap();
    assert_eq!(not_shown + 200, v["failures"]["failed_attempts"].as_u64().unwrap());
    assert!(html.contains("id=\"failures-not-shown\""));
    assert!(html.len() < 1_000_000, "{} bytes", html.len());
    assert_eq!(v["totals"]["attempts"].as_u64().unwrap() as usize, n);
}

/// The measurement in the README: `BPSC_REPORT_JOBS` (default 1,000,000) jobs, measured
/// with the binary `BPSC_REPORT_BIN` (default: this build's; use a release build):
/// `BPSC_REPORT_BIN=target/release/bpsc cargo test --test report -- --ignored --nocapture`
#[test]
#[ignore]
fn measure_a_million_jobs() {
    let jobs: u64 = std::env::var("BPSC_REPORT_JOBS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let bin = std::env::var("BPSC_REPORT_BIN").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from(env!("CARGO_BIN_EXE_bpsc")));
    // BPSC_REPORT_REUSE=1: measure the directory a previous run generated.
    let dir = common::repo().join("target/test-scratch/report-measure");
    let sub = dir.join("submit");
    let n = if std::env::var("BPSC_REPORT_REUSE").as_deref() == Ok("1") && sub.join("provenance").is_dir() {
        std::fs::read_dir(sub.join("provenance")).unwrap().count()
    } else {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let t = std::time::Instant::now();
        let (_, n) = large_in(&dir, jobs);
        eprintln!("generated {n} records in {:.1} s", t.elapsed().as_secs_f64());
        n
    };
    if std::env::var("BPSC_REPORT_GENERATE_ONLY").as_deref() == Ok("1") {
        return;
    }
    for (what, args) in [("html", vec!["-o", "report.html"]), ("json", vec!["--json", "-o", "report.json"])] {
        let out = sub.parent().unwrap().join(args.last().unwrap());
        let t = std::time::Instant::now();
        let o = std::process::Command::new("/usr/bin/time")
            .arg("-f")
            .arg("%M")
            .arg(&bin)
            .arg("report")
            .args(&args[..args.len() - 1])
            .arg(&out)
            .arg(&sub)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let rss = String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("").trim().to_string();
        let size = std::fs::metadata(&out).unwrap().len();
        eprintln!("{what}: {n} records -> {size} bytes in {:.1} s, peak RSS {rss} KiB", t.elapsed().as_secs_f64());
        assert!(size < 20 << 20);
    }
}
