//! The Pegasus backend, every example × both formats (`pegasus`: YAML 5.0, `pegasus-dax`:
//! DAX 3.6), plus a campaign of hostile data ID values.
//!
//! - The YAML workflow and its three catalogs are validated against the official Pegasus
//!   JSON schemas in `../shared/reference/pegasus/` (offline: the relative `$ref`s between
//!   wf-5.0.yml, common.yml, rc/tc/sc-5.0.yml are resolved through an in-memory registry).
//! - The DAX is validated with `xmllint --schema dax-3.6.xsd`.
//! - On top, the checks the schemas cannot make and Pegasus (or DAGMan) would fail on
//!   later: unique ids, resolvable and acyclic dependencies, one producer per LFN, inputs
//!   produced by an ancestor or in the replica catalog, DAGMan-safe node names, every job's
//!   transformation and site catalogued, `bpsc wrap` arguments that select the job's own
//!   task line, and the dependency structure of the IR (reachability between the jobs
//!   Pegasus runs equals the IR's, after dropping the stage and cleanup jobs).
//!
//! External prerequisites (the reference files, xmllint) are checked when present; when
//! absent the test says so loudly and fails if the environment variable CI is set.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as J;

const EXAMPLES: &[&str] = &["drp/drp", "nightly_calib/nightly_calib", "afterburner/afterburner", "special_programs/special_programs"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A prerequisite is missing: fail under CI, pass with a loud note otherwise.
fn missing(what: &str) {
    let msg = format!("PEGASUS TEST PREREQUISITE MISSING: {what}");
    if std::env::var("CI").is_ok() {
        panic!("{msg} (CI is set, so this check must not be skipped)");
    }
    eprintln!("\n*** {msg}\n*** the test passes WITHOUT this check; with CI set it fails ***\n");
}

fn reference() -> Option<PathBuf> {
    let p = repo().join("../shared/reference/pegasus");
    if p.join("wf-5.0.yml").is_file() && p.join("dax-3.6.xsd").is_file() {
        Some(p)
    } else {
        missing(&format!("{} (the official Pegasus schemas, from ../shared)", p.display()));
        None
    }
}

fn tmp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("bpsc-pegasus-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    p
}

fn bpsc(args: &[&str]) -> std::process::Output {
    bpsc_env(args, &[])
}

/// [`bpsc`] with variables added to its environment (`pass_env` reads them at compile time).
fn bpsc_env(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_bpsc")).args(args).envs(env.iter().copied()).output().expect("run bpsc");
    assert!(out.status.success(), "bpsc {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn compile(file: &Path, backend: &str, out: &Path) {
    bpsc(&["compile", &file.to_string_lossy(), "--backend", backend, "-o", &out.to_string_lossy(), "--force"]);
}

/// The campaign and the IR's job lines: (id, kind, parent ids).
type IrJobs = (String, Vec<(String, String, Vec<String>)>);

fn ir_jobs(file: &Path, name: &str) -> IrJobs {
    ir_jobs_env(file, name, &[])
}

fn ir_jobs_env(file: &Path, name: &str, env: &[(&str, &str)]) -> IrJobs {
    let d = tmp(&format!("ir-{name}"));
    bpsc_env(&["compile", &file.to_string_lossy(), "--emit", "ir", "-o", &d.to_string_lossy(), "--force"], env);
    let text = std::fs::read_to_string(d.join("ir.jsonl")).expect("ir.jsonl");
    let mut lines = text.lines();
    let header: J = serde_json::from_str(lines.next().expect("header")).expect("header json");
    let jobs = lines
        .map(|l| {
            let v: J = serde_json::from_str(l).expect("job json");
            (
                v["id"].as_str().unwrap_or_default().to_string(),
                v["kind"].as_str().unwrap_or_default().to_string(),
                v["parents"].as_array().map(|a| a.iter().filter_map(|p| p.as_str().map(String::from)).collect()).unwrap_or_default(),
            )
        })
        .collect();
    let _ = std::fs::remove_dir_all(&d);
    (header["campaign"].as_str().unwrap_or_default().to_string(), jobs)
}

fn load_yaml(path: &Path) -> J {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut o = serde_saphyr::Options::default();
    o.budget = None;
    serde_saphyr::from_str_with_options(&text, o).unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()))
}

// ----------------------------------------------------------------------------- schemas

struct Schemas {
    wf: jsonschema::Validator,
    rc: jsonschema::Validator,
    tc: jsonschema::Validator,
    sc: jsonschema::Validator,
}

const BASE: &str = "file:///pegasus-schema/";

fn schemas(dir: &Path) -> Schemas {
    let docs: Vec<(String, J)> = ["common.yml", "wf-5.0.yml", "rc-5.0.yml", "tc-5.0.yml", "sc-5.0.yml"]
        .iter()
        .map(|n| (format!("{BASE}{n}"), load_yaml(&dir.join(n))))
        .collect();
    let registry =
        jsonschema::Registry::new().extend(docs.iter().map(|(u, v)| (u.as_str(), v))).and_then(|b| b.prepare()).expect("schema registry");
    let build = |name: &str| {
        let doc = &docs.iter().find(|(u, _)| u.ends_with(name)).expect("schema").1;
        jsonschema::options()
            .with_registry(&registry)
            .with_base_uri(format!("{BASE}{name}"))
            .build(doc)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    Schemas { wf: build("wf-5.0.yml"), rc: build("rc-5.0.yml"), tc: build("tc-5.0.yml"), sc: build("sc-5.0.yml") }
}

fn schema_errors(v: &jsonschema::Validator, doc: &J) -> Vec<String> {
    v.iter_errors(doc).take(10).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

fn assert_valid(v: &jsonschema::Validator, path: &Path) -> J {
    let doc = load_yaml(path);
    let errs = schema_errors(v, &doc);
    assert!(errs.is_empty(), "{} is not schema-valid:\n{}", path.display(), errs.join("\n"));
    doc
}

// ----------------------------------------------------------------------------- a parsed workflow

#[derive(Debug, Default, Clone)]
struct WJob {
    id: String,
    namespace: String,
    name: String,
    args: Vec<String>,
    /// (lfn, optional)
    inputs: Vec<(String, bool)>,
    /// (lfn, stageOut, registerReplica)
    outputs: Vec<(String, bool, bool)>,
    site: String,
    metadata: BTreeMap<String, String>,
    /// The job's own profiles (what its group does not share).
    profiles: BTreeMap<(String, String), String>,
    /// Its profiles as Pegasus merges them: the job's, then its transformation's (which win,
    /// configuration.rst "Profiles").
    effective: BTreeMap<(String, String), String>,
}

#[derive(Debug, Default)]
struct Wf {
    name: String,
    jobs: Vec<WJob>,
    edges: Vec<(String, String)>,
    metadata: BTreeMap<String, String>,
    hooks: Vec<(String, String)>,
    /// Replica catalog LFNs (external inputs).
    replicas: BTreeSet<String>,
    /// Output replica catalog: LFN -> URL.
    outputs: BTreeMap<String, String>,
    /// Transformation catalog: (namespace, name) -> sites.
    transformations: BTreeMap<(String, String), BTreeSet<String>>,
    /// Transformation catalog profiles: (name, site) -> profiles (the transformation's and
    /// those of its entry at the site).
    tc_profiles: BTreeMap<(String, String), BTreeMap<(String, String), String>>,
    sites: BTreeSet<String>,
}

fn text(v: &J) -> String {
    match v {
        J::String(s) => s.clone(),
        J::Number(n) => n.to_string(),
        J::Bool(b) => b.to_string(),
        _ => panic!("not a scalar: {v}"),
    }
}

fn parse_yaml_workflow(dir: &Path, s: Option<&Schemas>) -> Wf {
    let wf_path = dir.join("workflow.yml");
    let doc = match s {
        Some(s) => assert_valid(&s.wf, &wf_path),
        None => load_yaml(&wf_path),
    };
    let rc = match s {
        Some(s) => assert_valid(&s.rc, &dir.join("replicas.yml")),
        None => load_yaml(&dir.join("replicas.yml")),
    };
    let orc = match s {
        Some(s) => assert_valid(&s.rc, &dir.join("outputs.yml")),
        None => load_yaml(&dir.join("outputs.yml")),
    };
    let tc = match s {
        Some(s) => assert_valid(&s.tc, &dir.join("transformations.yml")),
        None => load_yaml(&dir.join("transformations.yml")),
    };
    let sc = match s {
        Some(s) => assert_valid(&s.sc, &dir.join("sites.yml")),
        None => load_yaml(&dir.join("sites.yml")),
    };
    let mut wf = Wf { name: text(&doc["name"]), ..Default::default() };
    for (k, v) in doc["metadata"].as_object().into_iter().flatten() {
        wf.metadata.insert(k.clone(), text(v));
    }
    for h in doc["hooks"]["shell"].as_array().into_iter().flatten() {
        wf.hooks.push((text(&h["_on"]), text(&h["cmd"])));
    }
    for j in doc["jobs"].as_array().expect("jobs") {
        let mut w = WJob {
            id: text(&j["id"]),
            namespace: j["namespace"].as_str().unwrap_or_default().into(),
            name: text(&j["name"]),
            args: j["arguments"].as_array().expect("arguments").iter().map(text).collect(),
            ..Default::default()
        };
        for u in j["uses"].as_array().expect("uses") {
            let lfn = text(&u["lfn"]);
            match u["type"].as_str() {
                Some("input") => w.inputs.push((lfn, u["optional"].as_bool().unwrap_or(false))),
                Some("output") => {
                    w.outputs.push((lfn, u["stageOut"].as_bool().unwrap_or(false), u["registerReplica"].as_bool().unwrap_or(false)))
                }
                t => panic!("job {}: use type {t:?}", w.id),
            }
        }
        for (k, v) in j["metadata"].as_object().into_iter().flatten() {
            w.metadata.insert(k.clone(), text(v));
        }
        for (ns, kv) in j["profiles"].as_object().into_iter().flatten() {
            for (k, v) in kv.as_object().into_iter().flatten() {
                w.profiles.insert((ns.clone(), k.clone()), text(v));
            }
        }
        w.site = w.profiles.get(&("selector".into(), "execution.site".into())).cloned().unwrap_or_default();
        assert!(j.get("metadata").is_none(), "{}: per-job metadata (its data ID is in its task table)", w.id);
        wf.jobs.push(w);
    }
    for d in doc["jobDependencies"].as_array().expect("jobDependencies") {
        let p = text(&d["id"]);
        for c in d["children"].as_array().expect("children") {
            wf.edges.push((p.clone(), text(c)));
        }
    }
    for r in rc["replicas"].as_array().expect("replicas") {
        wf.replicas.insert(text(&r["lfn"]));
    }
    for r in orc["replicas"].as_array().expect("output replicas") {
        let pfns = r["pfns"].as_array().expect("pfns");
        assert_eq!(pfns.len(), 1);
        assert_eq!(pfns[0]["site"], "local", "outputs go to the output site `local`");
        assert!(wf.outputs.insert(text(&r["lfn"]), text(&pfns[0]["pfn"])).is_none(), "output LFN twice in outputs.yml");
    }
    let profiles_of = |v: &J| -> BTreeMap<(String, String), String> {
        let mut m = BTreeMap::new();
        for (ns, kv) in v.as_object().into_iter().flatten() {
            for (k, v) in kv.as_object().into_iter().flatten() {
                m.insert((ns.clone(), k.clone()), text(v));
            }
        }
        m
    };
    for t in tc["transformations"].as_array().expect("transformations") {
        let key = (t["namespace"].as_str().unwrap_or_default().to_string(), text(&t["name"]));
        let sites: BTreeSet<String> = t["sites"].as_array().expect("tc sites").iter().map(|s| text(&s["name"])).collect();
        let own = profiles_of(&t["profiles"]);
        for s in t["sites"].as_array().expect("tc sites") {
            let mut p = own.clone();
            for (k, v) in profiles_of(&s["profiles"]) {
                assert!(p.insert(k.clone(), v).is_none(), "{key:?}: profile {k:?} both on the transformation and at a site");
            }
            wf.tc_profiles.insert((key.1.clone(), text(&s["name"])), p);
        }
        assert!(wf.transformations.insert(key.clone(), sites).is_none(), "transformation {key:?} twice");
    }
    effective(&mut wf);
    for s in sc["sites"].as_array().expect("sites") {
        assert!(wf.sites.insert(text(&s["name"])), "site twice");
        let dc = text(&s["profiles"]["pegasus"]["data.configuration"]);
        assert!(["sharedfs", "condorio", "nonsharedfs"].contains(&dc.as_str()), "data.configuration {dc}");
    }
    wf
}

/// Each job's site (its `execution.site` profile, else its transformation's one site) and
/// its profiles as Pegasus merges them.  Checks the invariant that makes the compact form
/// exact: a transformation-catalog profile wins over a job's (configuration.rst
/// "Profiles"), so no key a job carries may be in its transformation's catalog entry.
fn effective(wf: &mut Wf) {
    for j in &mut wf.jobs {
        if j.site.is_empty() {
            let sites = wf.transformations.get(&(j.namespace.clone(), j.name.clone())).cloned().unwrap_or_default();
            assert_eq!(sites.len(), 1, "{}: no execution.site, and transformation {} is at {sites:?}", j.id, j.name);
            j.site = sites.into_iter().next().unwrap_or_default();
        } else {
            let sites = &wf.transformations[&(j.namespace.clone(), j.name.clone())];
            assert!(sites.len() > 1, "{}: execution.site on a job whose transformation has one site", j.id);
        }
        let tc = wf.tc_profiles.get(&(j.name.clone(), j.site.clone())).cloned().unwrap_or_default();
        for k in j.profiles.keys() {
            if k.1 != "execution.site" {
                assert!(
                    !tc.contains_key(k),
                    "{}: profile {k:?} is both on the job and in its transformation (the catalog's would win)",
                    j.id
                );
            }
        }
        j.effective = j.profiles.clone();
        j.effective.extend(tc);
    }
}

fn attr(e: &quick_xml::events::BytesStart, k: &str) -> Option<String> {
    e.try_get_attribute(k).ok().flatten().map(|a| a.unescape_value().expect("attribute").into_owned())
}

fn parse_dax_workflow(dir: &Path) -> Wf {
    use quick_xml::events::Event;
    let text = std::fs::read_to_string(dir.join("workflow.dax")).expect("workflow.dax");
    let mut r = quick_xml::Reader::from_str(&text);
    let mut wf = Wf::default();
    let mut stack: Vec<String> = Vec::new();
    let mut cur: Option<WJob> = None;
    let mut key: Option<(String, String)> = None; // (element, key/namespace)
    let mut pkey: Option<(String, String)> = None;
    let mut child: Option<String> = None;
    let mut exe: Option<(String, String)> = None;
    // The executable being read: its own profiles, and per pfn site that pfn's.
    let mut exe_profiles: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut pfn_profiles: BTreeMap<String, BTreeMap<(String, String), String>> = BTreeMap::new();
    let mut pfn_site: Option<String> = None;
    let mut buf = String::new();
    loop {
        let ev = r.read_event().expect("well-formed XML");
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                let empty = matches!(ev, Event::Empty(_));
                buf.clear();
                match name.as_str() {
                    "adag" => wf.name = attr(e, "name").expect("adag name"),
                    "job" => {
                        cur = Some(WJob {
                            id: attr(e, "id").expect("id"),
                            namespace: attr(e, "namespace").unwrap_or_default(),
                            name: attr(e, "name").expect("name"),
                            ..Default::default()
                        })
                    }
                    "metadata" => key = Some(("metadata".into(), attr(e, "key").expect("key"))),
                    "invoke" => key = Some(("invoke".into(), attr(e, "when").expect("when"))),
                    "profile" => pkey = Some((attr(e, "namespace").expect("ns"), attr(e, "key").expect("key"))),
                    "uses" => {
                        let j = cur.as_mut().expect("uses in job");
                        let lfn = attr(e, "name").expect("uses name");
                        let t = |k: &str| attr(e, k).as_deref() == Some("true");
                        match attr(e, "link").as_deref() {
                            Some("input") => j.inputs.push((lfn, t("optional"))),
                            Some("output") => j.outputs.push((lfn, t("transfer"), t("register"))),
                            l => panic!("link {l:?}"),
                        }
                    }
                    "file" if stack.last().map(|s| s.as_str()) == Some("adag") => {
                        wf.replicas.insert(attr(e, "name").expect("file name"));
                    }
                    "executable" => exe = Some((attr(e, "namespace").unwrap_or_default(), attr(e, "name").expect("exe name"))),
                    "pfn" => {
                        if let Some(k) = &exe {
                            let site = attr(e, "site").expect("pfn site");
                            wf.transformations.entry(k.clone()).or_default().insert(site.clone());
                            pfn_profiles.entry(site.clone()).or_default();
                            if !empty {
                                pfn_site = Some(site);
                            }
                        }
                    }
                    "child" => child = Some(attr(e, "ref").expect("child ref")),
                    "parent" => wf.edges.push((attr(e, "ref").expect("parent ref"), child.clone().expect("in child"))),
                    _ => {}
                }
                if !empty {
                    stack.push(name);
                }
            }
            Event::Text(t) => buf.push_str(&t.decode().expect("text")),
            Event::GeneralRef(g) => {
                let n = g.decode().expect("ref");
                let c = if let Some(h) = n.strip_prefix('#') {
                    let code = if let Some(x) = h.strip_prefix('x') { u32::from_str_radix(x, 16) } else { h.parse() };
                    char::from_u32(code.expect("char ref")).expect("char")
                } else {
                    match n.as_ref() {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => panic!("entity {other}"),
                    }
                };
                buf.push(c);
            }
            Event::End(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                stack.pop();
                match name.as_str() {
                    "job" => wf.jobs.push(cur.take().expect("job")),
                    "argument" => cur.as_mut().expect("argument").args = buf.split_whitespace().map(String::from).collect(),
                    "metadata" => {
                        let (_, k) = key.take().expect("metadata key");
                        match cur.as_mut() {
                            Some(j) => j.metadata.insert(k, buf.clone()),
                            None if exe.is_some() => None,
                            None => wf.metadata.insert(k, buf.clone()),
                        };
                    }
                    "invoke" => {
                        let (_, when) = key.take().expect("invoke");
                        let on = match when.as_str() {
                            "on_error" => "error",
                            "at_end" => "end",
                            w => w,
                        };
                        wf.hooks.push((on.to_string(), buf.clone()));
                    }
                    "profile" => {
                        let k = pkey.take().expect("profile");
                        if let Some(j) = cur.as_mut() {
                            if k == ("hints".to_string(), "execution.site".to_string()) {
                                j.site = buf.clone();
                            }
                            j.profiles.insert(k, buf.clone());
                        } else if let Some(site) = &pfn_site {
                            pfn_profiles.entry(site.clone()).or_default().insert(k, buf.clone());
                        } else if exe.is_some() {
                            exe_profiles.insert(k, buf.clone());
                        }
                    }
                    "pfn" => pfn_site = None,
                    "executable" => {
                        let (_, name) = exe.take().expect("executable");
                        for (site, ps) in std::mem::take(&mut pfn_profiles) {
                            let mut p = exe_profiles.clone();
                            for (k, v) in ps {
                                assert!(p.insert(k.clone(), v).is_none(), "{name}: profile {k:?} both on the executable and its pfn");
                            }
                            wf.tc_profiles.insert((name.clone(), site), p);
                        }
                        exe_profiles.clear();
                    }
                    _ => {}
                }
                buf.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    effective(&mut wf);
    // outputs.rc: "LFN" "URL" site="local"
    for line in std::fs::read_to_string(dir.join("outputs.rc")).expect("outputs.rc").lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let f = rc_fields(line);
        assert_eq!(f.len(), 3, "outputs.rc line {line}");
        assert_eq!(f[2], "site=local");
        assert!(wf.outputs.insert(f[0].clone(), f[1].clone()).is_none());
    }
    // sites.xml
    let sx = std::fs::read_to_string(dir.join("sites.xml")).expect("sites.xml");
    let mut r = quick_xml::Reader::from_str(&sx);
    loop {
        match r.read_event().expect("sites.xml well-formed") {
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"site" => {
                wf.sites.insert(attr(&e, "handle").expect("handle"));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    wf
}

/// Fields of a File replica catalog line (quoted with backslash escapes, or bare).
fn rc_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut q, mut esc, mut any) = (false, false, false);
    for c in line.chars() {
        if esc {
            cur.push(c); // `\"`, `\\`, `\$`: the character itself
            esc = false;
        } else if c == '\\' && q {
            esc = true;
        } else if c == '"' {
            q = !q;
            any = true;
        } else if c.is_whitespace() && !q {
            if any || !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
                any = false;
            }
        } else {
            cur.push(c);
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

// ----------------------------------------------------------------------------- semantic checks

const DAGMAN_RESERVED: &[&str] = &["ALL_NODES", "PARENT", "CHILD", "JOB", "DATA", "SUBDAG", "SPLICE", "FINAL", "SERVICE", "PROVISIONER"];

fn safe_id(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Descendants (by index) of every node, as bitsets.
fn reach(n: usize, edges: &[(usize, usize)]) -> Vec<Vec<u64>> {
    let words = n.div_ceil(64);
    let mut children = vec![Vec::new(); n];
    let mut indeg = vec![0usize; n];
    for &(p, c) in edges {
        children[p].push(c);
        indeg[c] += 1;
    }
    let mut order = Vec::with_capacity(n);
    let mut q: Vec<usize> = (0..n).filter(|&i| indeg[i] == 0).collect();
    while let Some(v) = q.pop() {
        order.push(v);
        for &c in &children[v] {
            indeg[c] -= 1;
            if indeg[c] == 0 {
                q.push(c);
            }
        }
    }
    assert_eq!(order.len(), n, "the dependency graph has a cycle");
    let mut r = vec![vec![0u64; words]; n];
    for &v in order.iter().rev() {
        let mut acc = vec![0u64; words];
        for &c in &children[v] {
            acc[c / 64] |= 1 << (c % 64);
            for (a, b) in acc.iter_mut().zip(&r[c]) {
                *a |= *b;
            }
        }
        r[v] = acc;
    }
    r
}

fn has(r: &[Vec<u64>], a: usize, b: usize) -> bool {
    r[a][b / 64] >> (b % 64) & 1 == 1
}

/// Everything the schemas cannot say.  Returns the number of jobs.
fn semantic(wf: &Wf, dir: &Path, ir: &IrJobs) -> usize {
    let (campaign, ir_jobs) = ir;
    // Ids and names.
    let mut idx: HashMap<&str, usize> = HashMap::new();
    for (i, j) in wf.jobs.iter().enumerate() {
        assert!(idx.insert(&j.id, i).is_none(), "duplicate job id {}", j.id);
        assert!(safe_id(&j.id), "job id {:?} is not [A-Za-z0-9_-]+", j.id);
        assert!(safe_id(&j.name), "transformation name {:?}", j.name);
        let node = format!("{}_{}", j.name, j.id);
        assert!(!DAGMAN_RESERVED.iter().any(|r| r.eq_ignore_ascii_case(&node)), "DAGMan reserved node name {node}");
        assert!(node.len() < 1000 && !node.contains('+') && !node.contains('.'), "DAGMan node name {node}");
    }
    assert!(safe_id(&wf.name), "workflow name {:?}", wf.name);
    // Edges resolve, no duplicates, no self-loops, acyclic.
    let mut seen = BTreeSet::new();
    let mut e: Vec<(usize, usize)> = Vec::new();
    for (p, c) in &wf.edges {
        let (Some(&pi), Some(&ci)) = (idx.get(p.as_str()), idx.get(c.as_str())) else {
            panic!("dependency {p} -> {c} names a job that does not exist");
        };
        assert_ne!(pi, ci, "self-dependency of {p}");
        assert!(seen.insert((pi, ci)), "dependency {p} -> {c} twice");
        e.push((pi, ci));
    }
    let r = reach(wf.jobs.len(), &e);
    // One producer per file; inputs produced by an ancestor or in the replica catalog.
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, j) in wf.jobs.iter().enumerate() {
        for (lfn, _, _) in &j.outputs {
            if let Some(o) = producer.insert(lfn, i) {
                panic!("{lfn} is produced by {} and {}", wf.jobs[o].id, j.id);
            }
        }
    }
    for (i, j) in wf.jobs.iter().enumerate() {
        let mut mine = BTreeSet::new();
        for (lfn, _) in &j.inputs {
            assert!(mine.insert(lfn), "{}: input {lfn} twice", j.id);
            match producer.get(lfn.as_str()) {
                Some(&p) => assert!(has(&r, p, i), "{}: input {lfn} is produced by {}, which is not an ancestor", j.id, wf.jobs[p].id),
                None => assert!(wf.replicas.contains(lfn), "{}: input {lfn} is neither produced nor in the replica catalog", j.id),
            }
            assert!(!j.outputs.iter().any(|o| &o.0 == lfn), "{}: {lfn} both input and output", j.id);
        }
        for (lfn, stage_out, register) in &j.outputs {
            assert_eq!(stage_out, register, "{lfn}: archived outputs are staged out and registered, others neither");
            assert_eq!(*stage_out, wf.outputs.contains_key(lfn), "{lfn}: stageOut={stage_out} but output catalog says otherwise");
        }
    }
    let staged_out: usize = wf.jobs.iter().map(|j| j.outputs.iter().filter(|o| o.1).count()).sum();
    assert_eq!(staged_out, wf.outputs.len(), "output catalog has files no job stages out");
    // Each job runs its group's launcher with its index K (launch/G.sh K runs `bpsc wrap
    // ${BPSC_SUBMIT} --group G --index K`), and line K of G is its task.
    for j in &wf.jobs {
        assert_eq!(j.namespace, "", "{}: no namespace (neither job nor transformation has one)", j.id);
        assert_eq!(j.args.len(), 1, "{}: arguments {:?}", j.id, j.args);
        let k: u64 = j.args[0].parse().expect("index");
        let launcher = std::fs::read_to_string(dir.join("launch").join(format!("{}.sh", j.name))).expect("launcher");
        assert!(
            launcher.contains(&format!("wrap \"${{BPSC_SUBMIT:?")) && launcher.contains(&format!("--group {} --index \"$1\"", j.name)),
            "{launcher}"
        );
        let line = bpsc::submitdir::tasks::read_task(&dir, &j.name, k).expect("task line");
        let task: J = serde_json::from_str(&line).expect("task json");
        assert_eq!(task["id"], j.id.as_str(), "task {k} of group {} is not job {}", j.name, j.id);
        // Catalogued transformation and site.
        let sites = wf
            .transformations
            .get(&(j.namespace.clone(), j.name.clone()))
            .unwrap_or_else(|| panic!("{}: no transformation {}", j.id, j.name));
        assert!(sites.contains(&j.site), "{}: transformation {} is not at site {}", j.id, j.name, j.site);
        assert!(wf.sites.contains(&j.site), "{}: site {} not in the site catalog", j.id, j.site);
        assert!(j.metadata.is_empty(), "{}: per-job metadata {:?}", j.id, j.metadata);
        // Every job has its resources, retries and priority, from itself or its transformation.
        if !j.id.starts_with("join_") {
            for k in [("pegasus", "runtime"), ("dagman", "RETRY"), ("dagman", "PRIORITY")] {
                assert!(j.effective.contains_key(&(k.0.to_string(), k.1.to_string())), "{}: no {k:?} in {:?}", j.id, j.effective);
            }
            assert!(j.effective.keys().any(|k| k.1 == "memory" || k.1 == "request_memory"), "{}: no memory in {:?}", j.id, j.effective);
        }
    }
    assert_eq!(wf.metadata.get("campaign"), Some(campaign));
    // The dependency structure is the IR's: reachability between the jobs Pegasus runs.
    let ir_idx: HashMap<&str, usize> = ir_jobs.iter().enumerate().map(|(i, j)| (j.0.as_str(), i)).collect();
    let ir_idx = &ir_idx;
    let ir_e: Vec<(usize, usize)> =
        ir_jobs.iter().enumerate().flat_map(|(i, j)| j.2.iter().map(move |p| (ir_idx[p.as_str()], i))).collect();
    let ir_r = reach(ir_jobs.len(), &ir_e);
    let kept: Vec<usize> = (0..ir_jobs.len()).filter(|&i| matches!(ir_jobs[i].1.as_str(), "compute" | "join" | "cleanup")).collect();
    let wf_ids: BTreeSet<&str> = wf.jobs.iter().map(|j| j.id.as_str()).collect();
    let ir_ids: BTreeSet<&str> = kept.iter().map(|&i| ir_jobs[i].0.as_str()).collect();
    assert_eq!(wf_ids, ir_ids, "Pegasus runs exactly the IR's compute, join and cleanup jobs");
    let mut pairs = 0;
    for &a in &kept {
        for &b in &kept {
            let (wa, wb) = (idx[ir_jobs[a].0.as_str()], idx[ir_jobs[b].0.as_str()]);
            assert_eq!(has(&ir_r, a, b), has(&r, wa, wb), "reachability {} -> {} differs from the IR", ir_jobs[a].0, ir_jobs[b].0);
            pairs += has(&r, wa, wb) as usize;
        }
    }
    assert!(pairs >= wf.edges.len());
    // The provenance job became the end hook.
    if ir_jobs.iter().any(|j| j.1 == "provenance") {
        assert!(
            wf.hooks.iter().any(|(on, c)| on == "end" && c.contains("wrap") && c.contains("--group provenance")),
            "provenance hook: {:?}",
            wf.hooks
        );
    }
    wf.jobs.len()
}

/// Every `${NAME}` left in the raw text of the files Pegasus reads is one bpsc means
/// pegasus-plan to expand.
fn only_plan_vars(dir: &Path, files: &[&str]) {
    for f in files {
        let text = std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        for (i, _) in text.match_indices("${") {
            let rest = &text[i..];
            // In the File replica catalog `\${` is an escaped `${` (for Pegasus's expansion
            // and for the format's quoted strings alike).
            if f.ends_with(".rc") && text[..i].ends_with('\\') {
                continue;
            }
            assert!(
                ["${USER}", "${BPSC_SUBMIT}", "${BPSC_BIN}", "${BPSC_BIN_DIR}"].iter().any(|v| rest.starts_with(v)),
                "{f}: pegasus-plan would expand {:?}",
                &rest[..rest.len().min(40)]
            );
        }
    }
}

const YAML_FILES: &[&str] = &["workflow.yml", "replicas.yml", "outputs.yml", "transformations.yml", "sites.yml"];
const DAX_FILES: &[&str] = &["workflow.dax", "sites.xml", "outputs.rc"];

fn xmllint(path: &Path, xsd: &Path) -> bool {
    match Command::new("xmllint").arg("--noout").arg("--schema").arg(xsd).arg(path).output() {
        Ok(o) => {
            assert!(o.status.success(), "xmllint rejects {}:\n{}", path.display(), String::from_utf8_lossy(&o.stderr));
            true
        }
        Err(_) => {
            missing("xmllint (apt-get install -y libxml2-utils)");
            false
        }
    }
}

/// Both formats of one campaign: compile, validate, check; the two must describe the same
/// workflow.  Returns (YAML dir, DAX dir).
fn check_campaign(file: &Path, name: &str) -> (PathBuf, PathBuf, Wf, Wf) {
    let ir = ir_jobs(file, name);
    let (ydir, ddir) = (tmp(&format!("{name}-yaml")), tmp(&format!("{name}-dax")));
    compile(file, "pegasus", &ydir);
    compile(file, "pegasus-dax", &ddir);
    let refdir = reference();
    let s = refdir.as_deref().map(schemas);
    let y = parse_yaml_workflow(&ydir, s.as_ref());
    let n = semantic(&y, &ydir, &ir);
    assert!(n > 0);
    only_plan_vars(&ydir, YAML_FILES);
    if let Some(r) = &refdir {
        xmllint(&ddir.join("workflow.dax"), &r.join("dax-3.6.xsd"));
    }
    let d = parse_dax_workflow(&ddir);
    semantic(&d, &ddir, &ir);
    only_plan_vars(&ddir, DAX_FILES);
    // Same jobs, files, dependencies, metadata and hooks in both formats.
    assert_eq!(y.name, d.name);
    assert_eq!(y.edges.iter().collect::<BTreeSet<_>>(), d.edges.iter().collect::<BTreeSet<_>>());
    assert_eq!(y.jobs.len(), d.jobs.len());
    for (a, b) in y.jobs.iter().zip(&d.jobs) {
        assert_eq!((&a.id, &a.name, &a.args, &a.site, &a.metadata), (&b.id, &b.name, &b.args, &b.site, &b.metadata));
        assert_eq!(a.inputs, b.inputs, "{}", a.id);
        assert_eq!(a.outputs, b.outputs, "{}", a.id);
    }
    assert_eq!(y.outputs, d.outputs);
    assert_eq!(y.replicas, d.replicas);
    assert_eq!(y.hooks, d.hooks);
    (ydir, ddir, y, d)
}

/// An example's main file.  special_programs is a copy in which site in2p3 has a shared
/// filesystem: as written (`shared_fs = false`) Pegasus cannot run it and the backend says
/// so (E801, `a_site_without_a_shared_filesystem_is_refused_with_what_to_configure`).
fn example(e: &str) -> PathBuf {
    if e == "special_programs/special_programs" {
        return special_programs_shared();
    }
    repo().join("examples").join(format!("{e}.bps"))
}

fn special_programs_shared() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let d = tmp("sp-shared-src");
        let src = repo().join("examples/special_programs");
        copy_dir(&src, &d);
        let sites = std::fs::read_to_string(d.join("sites.bps")).expect("sites.bps");
        assert!(sites.contains("shared_fs      = false"), "special_programs/sites.bps changed");
        std::fs::write(d.join("sites.bps"), sites.replace("shared_fs      = false", "shared_fs      = true")).expect("write");
        d
    })
    .join("special_programs.bps")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).expect("copy");
        }
    }
}

// ----------------------------------------------------------------------------- tests

/// The validator itself agrees with the verdicts of ../shared/reference/pegasus/SOURCES.md:
/// it is not vacuous.
#[test]
fn schema_validator_agrees_with_reference_verdicts() {
    let Some(r) = reference() else { return };
    let s = schemas(&r);
    for (f, valid) in [
        ("tiny-3job.api-5.1.3.yml", true),
        ("hierarchical-workflow.yml", true),
        ("inner_diamond_workflow.yml", true),
        ("diamond-inline-catalogs.yml", false),
        ("api-inline-sitecatalog.schema-invalid.yml", false),
    ] {
        let doc = load_yaml(&r.join("examples").join(f));
        let errs = schema_errors(&s.wf, &doc);
        assert_eq!(errs.is_empty(), valid, "{f}: {errs:?}");
    }
    // A bad id and a job without `uses` are caught.
    let mut doc = load_yaml(&r.join("examples/tiny-3job.api-5.1.3.yml"));
    doc["jobs"][0]["id"] = J::String("a b".into());
    assert!(!s.wf.is_valid(&doc));
    let mut doc = load_yaml(&r.join("examples/tiny-3job.api-5.1.3.yml"));
    doc["jobs"][0].as_object_mut().expect("job").remove("uses");
    assert!(!s.wf.is_valid(&doc));
    // The regex quirks (see README): `\u55295` is `\u5529` then `5`, so `:` passes the
    // workflow-name pattern and `.` does not; parent ids are unchecked (`ref:`, not `$ref:`).
    let base = load_yaml(&r.join("examples/tiny-3job.api-5.1.3.yml"));
    let named = |n: &str| {
        let mut d = base.clone();
        d["name"] = J::String(n.into());
        s.wf.is_valid(&d)
    };
    assert!(named("a-b_c") && named("a:b") && !named("a.b") && !named("a b") && !named("a/b"));
    let mut doc = base.clone();
    doc["jobDependencies"][0]["id"] = J::String("not an id!".into());
    assert!(s.wf.is_valid(&doc), "parent ids are not validated by the schema: bpsc's own checks cover them");
    // The reference DAX passes xmllint, so the xmllint check is meaningful.
    xmllint(&r.join("examples/blackdiamond-3.6.dax"), &r.join("dax-3.6.xsd"));
}

#[test]
fn examples_both_formats_valid_and_faithful() {
    for e in EXAMPLES {
        let name = e.split('/').next().unwrap_or(e);
        let (y, d, wf, _) = check_campaign(&example(e), name);
        // The data configuration follows shared_fs: special_programs has a site without one.
        let sites = load_yaml(&y.join("sites.yml"));
        for s in sites["sites"].as_array().expect("sites") {
            let shared = s["directories"][0]["sharedFileSystem"].as_bool().expect("sharedFileSystem");
            let dc = text(&s["profiles"]["pegasus"]["data.configuration"]);
            assert_eq!(shared, dc == "sharedfs", "{name}: site {} data.configuration {dc}", s["name"]);
        }
        // Inserted stage jobs are gone (Pegasus plans the transfers); bpsc's cleanup jobs stay,
        // in group `cleanup` (they remove undeclared `discard` outputs).
        assert!(!wf.jobs.iter().any(|j| j.id.starts_with("stagein_") || j.id.starts_with("stageout_")));
        assert!(wf.jobs.iter().filter(|j| j.id.starts_with("cleanup_")).all(|j| j.name == "cleanup"), "{name}");
        let props = std::fs::read_to_string(y.join("pegasus.properties")).expect("properties");
        assert!(props.contains("pegasus.data.configuration = "));
        assert!(props.contains("pegasus.dir.storage.mapper = Replica"));
        let plan = std::fs::read_to_string(y.join("plan.sh")).expect("plan.sh");
        assert!(plan.contains("workflow.yml") && plan.contains("--sites "));
        let _ = std::fs::remove_dir_all(&y);
        let _ = std::fs::remove_dir_all(&d);
    }
}

#[test]
fn special_programs_stages_exactly_what_the_ir_stages() {
    // pre_job inputs are declared as inputs and catalogued; Pegasus stages them itself.
    let (y, d, wf, _) = check_campaign(&example("special_programs/special_programs"), "sp-stage");
    let j = wf.jobs.iter().find(|j| j.id == "single_frame_2024110800100_0").expect("job");
    let ins: Vec<&str> = j.inputs.iter().map(|i| i.0.as_str()).collect();
    // Visit 2024110800100 is r band: one flat, not every band's flat of detector 0.
    assert_eq!(ins, ["bias/0", "flat/0_r", "raw/2024110800100_0"]);
    assert!(j.outputs.iter().any(|o| o.0 == "calexp/2024110800100_0" && o.1));
    assert_eq!(j.site, "in2p3");
    // Only what Pegasus must plan is declared: no intermediate file of a one-site chain.
    assert!(j.outputs.iter().all(|o| o.1), "{}: only archived outputs are declared: {:?}", j.id, j.outputs);
    let sites = std::fs::read_to_string(y.join("sites.yml")).expect("sites");
    assert!(!sites.contains("nonsharedfs"), "{sites}");
    // max_jobs -> DAGMan category limit.
    let props = std::fs::read_to_string(y.join("pegasus.properties")).expect("properties");
    assert!(props.contains(".maxjobs = "), "{props}");
    let _ = std::fs::remove_dir_all(&y);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn profiles_map_resources_retries_priority_and_sites() {
    let (y, d, wf, dax) = check_campaign(&example("nightly_calib/nightly_calib"), "nc-profiles");
    for w in [&wf, &dax] {
        let c = w.jobs.iter().find(|j| j.id == "certify").expect("certify");
        let p = |ns: &str, k: &str| c.effective.get(&(ns.to_string(), k.to_string())).cloned();
        if std::ptr::eq(w, &wf) {
            assert!(
                p("pegasus", "memory").is_some() && p("pegasus", "cores").is_some() && p("pegasus", "diskspace").is_some(),
                "{:?}",
                c.effective
            );
        } else {
            assert!(
                p("condor", "request_memory").is_some() && p("condor", "request_cpus").is_some() && p("condor", "request_disk").is_some()
            );
        }
        assert_eq!(p("dagman", "RETRY").as_deref(), Some("0"), "certify has retries = 0");
        // on_failure = abort: bpsc's POST script exits 3 after the last attempt only.
        assert_eq!(p("dagman", "ABORT-DAG-ON").as_deref(), Some("3 RETURN 1"), "on_failure = abort");
        assert_eq!(p("dagman", "POST").as_deref(), Some("bpsc"));
        assert_eq!(p("dagman", "POST.PATH.bpsc").as_deref(), Some("${BPSC_SUBMIT}/bpsc-post.sh"));
        assert_eq!(p("dagman", "POST.ARGUMENTS").as_deref(), Some("$RETURN $RETRY $MAX_RETRIES 1 -"));
        assert!(p("dagman", "PRIORITY").is_some());
        assert_eq!(c.site, "usdf_condor");
        // Joins run on the submit host.
        assert!(w.jobs.iter().any(|j| j.id.starts_with("join_") && j.site == "local"));
    }
    // The campaign's notify command on failure, wrapped for pegasus-monitord's shlex.
    assert!(wf.hooks.iter().any(|(on, c)| on == "error" && c.starts_with("/bin/sh -c \"") && c.contains("notify.sh")));
    let _ = std::fs::remove_dir_all(&y);
    let _ = std::fs::remove_dir_all(&d);
}

/// Run the drp workflow the way Pegasus runs it in `sharedfs`: every job, in the file's
/// (topological) order, in one working directory, as its launcher `launch/G.sh K` with its
/// transformation's environment (`BPSC_SCRATCH=.`; `${BPSC_BIN}` and `${BPSC_SUBMIT}` as
/// pegasus-plan expands them).  Every declared input LFN must be there before its consumer
/// runs, and every output of the job's task line after it (declared or not: the wrapper
/// writes exactly where Pegasus looks); bpsc's cleanup jobs remove the discarded ones.
/// Then the provenance end hook.
#[test]
fn sharedfs_run_produces_every_declared_file_under_its_lfn() {
    let d = tmp("run-drp");
    // The example passes BPSC_EXAMPLE_DIR (pass_env): the jobs see its value at compile time.
    let o = Command::new(env!("CARGO_BIN_EXE_bpsc"))
        .args(["compile", &example("drp/drp").to_string_lossy(), "--backend", "pegasus", "-o", &d.to_string_lossy(), "--force"])
        .env("BPSC_EXAMPLE_DIR", repo().join("examples"))
        .output()
        .expect("run bpsc");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let wf = parse_yaml_workflow(&d, None);
    let work = d.join("pegasus-scratch/s3df");
    std::fs::create_dir_all(&work).expect("work dir");
    let produced: BTreeSet<&str> = wf.jobs.iter().flat_map(|j| j.outputs.iter().map(|o| o.0.as_str())).collect();
    let submit = d.to_string_lossy().into_owned();
    let mut cleaned = 0;
    for j in &wf.jobs {
        for (lfn, _) in &j.inputs {
            if produced.contains(lfn.as_str()) {
                assert!(work.join(lfn).is_file(), "{}: input {lfn} is not in the working directory", j.id);
            }
        }
        let mut cmd = Command::new(d.join("launch").join(format!("{}.sh", j.name)));
        cmd.args(&j.args).current_dir(&work).env_clear().env("PATH", "/usr/bin:/bin").env("FAKE_TASK_SLEEP", "0");
        for ((ns, k), v) in &j.effective {
            if ns == "env" {
                cmd.env(k, v.replace("${BPSC_BIN}", env!("CARGO_BIN_EXE_bpsc")).replace("${BPSC_SUBMIT}", &submit));
            }
        }
        if !j.effective.contains_key(&("env".into(), "BPSC_EXAMPLE_DIR".into())) {
            cmd.env("BPSC_EXAMPLE_DIR", repo().join("examples"));
        }
        let out = cmd.output().expect("launcher");
        assert!(out.status.success(), "{} exited {:?}: {}", j.id, out.status.code(), String::from_utf8_lossy(&out.stderr));
        for (lfn, _, _) in &j.outputs {
            assert!(work.join(lfn).is_file(), "{}: output {lfn} was not written under its LFN", j.id);
        }
        let k: u64 = j.args[0].parse().expect("index");
        let task: J = serde_json::from_str(&bpsc::submitdir::tasks::read_task(&d, &j.name, k).expect("task")).expect("json");
        for q in task["quanta"].as_array().into_iter().flatten() {
            for o in q["outputs"].as_array().into_iter().flatten() {
                let path = text(&o["path"]).replace("${BPSC_SCRATCH}/", "");
                assert!(work.join(&path).is_file(), "{}: output {path} of its task line is not in the working directory", j.id);
            }
        }
        if j.name == "cleanup" {
            cleaned += 1;
        }
    }
    assert!(cleaned > 0, "drp discards outputs: bpsc's cleanup jobs run in the Pegasus workflow");
    // The end hook gathers one provenance record per job.
    let (_, hook) = wf.hooks.iter().find(|(_, c)| c.contains("--group provenance")).expect("provenance hook");
    let hook = hook.replace("${BPSC_BIN}", env!("CARGO_BIN_EXE_bpsc")).replace("${BPSC_SUBMIT}", &submit);
    if let Some(_out) = run_like_monitord(&hook) {
        let all = std::fs::read_to_string(d.join("provenance/campaign.jsonl")).expect("campaign.jsonl");
        let ids: BTreeSet<String> = all
            .lines()
            .filter_map(|l| serde_json::from_str::<J>(l).ok())
            .filter(|r| r["kind"] != "provenance")
            .map(|r| text(&r["job_id"]))
            .collect();
        assert_eq!(ids, wf.jobs.iter().map(|j| j.id.clone()).collect::<BTreeSet<_>>());
        // Records point at the absolute scratch: the relative BPSC_SCRATCH was resolved.
        assert!(all.contains(&format!("\"path\":\"{}/", work.to_string_lossy())), "records use the absolute scratch path");
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn output_is_deterministic() {
    for backend in ["pegasus", "pegasus-dax"] {
        let (a, b) = (tmp(&format!("det-a-{backend}")), tmp(&format!("det-b-{backend}")));
        compile(&example("special_programs/special_programs"), backend, &a);
        compile(&example("special_programs/special_programs"), backend, &b);
        let fa = common::list_files(&a);
        assert_eq!(fa, common::list_files(&b));
        for f in &fa {
            assert!(std::fs::read(a.join(f)).ok() == std::fs::read(b.join(f)).ok(), "{backend}: {f} differs between two compiles");
        }
        let _ = std::fs::remove_dir_all(&a);
        let _ = std::fs::remove_dir_all(&b);
    }
}

const HOSTILE_CSV: &str =
    "visit,label\n1,../../etc\n2,$(rm -rf ~)\n3,${HOME}\n4,\"it's \"\"quoted\"\"\"\n5,a b\tc\n6,yes\n7,-o\n8,ünï ${X}$\n";
const HOSTILE_LABELS: &[&str] = &["../../etc", "$(rm -rf ~)", "${HOME}", "it's \"quoted\"", "a b\tc", "yes", "-o", "ünï ${X}$"];

const HOSTILE_BPS: &str = r#"bps 1

site s1 {
  backend   = slurm
  shared_fs = true
  scratch   = "/scratch/{user}/{campaign}"
}
site s2 {
  backend   = htcondor
  shared_fs = true
}

relation labelled(visit, label) = table("data/visits.csv")

dataset raw(visit, label) {
  source = "file:///data/raw/{label}/{visit}.fits"
  stage  = pre_job
}
dataset calexp(visit, label) {
  persist = archive
  archive = "file:///archive/{campaign}/{label}.fits"
}

pipeline p {
  env { NOTE = "${HOME} and $(whoami) 'q'" }
  step a over (visit, label) {
    inputs  = [raw]
    outputs = [calexp]
    run     = "echo {label} > {outputs}"
  }
  step b over (label) {
    inputs  = [calexp]
    outputs = [summary]
    run     = "cat {inputs} > {outputs}"
    site    = s2
  }
}

campaign "hostile ${HOME} 'c'" {
  use p
  coverage = labelled
  site     = s1
  notify { on = [failure, done], command = "echo '{campaign}' {event} \"{step}\" ${{HOME}}" }
}
"#;

#[test]
fn hostile_data_ids_stay_inside_ids_lfns_and_quotes() {
    let root = tmp("hostile-src");
    std::fs::create_dir_all(root.join("data")).expect("mkdir");
    std::fs::write(root.join("data/visits.csv"), HOSTILE_CSV).expect("csv");
    std::fs::write(root.join("hostile.bps"), HOSTILE_BPS).expect("bps");
    let (y, d, wf, dax) = check_campaign(&root.join("hostile.bps"), "hostile");
    for w in [&wf, &dax] {
        // Ids and LFNs are encoded tokens: no path escape, no quote, no space, no `$`.
        for j in &w.jobs {
            for lfn in j.inputs.iter().map(|i| &i.0).chain(j.outputs.iter().map(|o| &o.0)) {
                let (ds, rest) = lfn.split_once('/').expect("dataset/instance");
                assert!(safe_id(ds) && safe_id(rest), "LFN {lfn:?}");
            }
        }
        // The data IDs themselves survive exactly, in the task lines the jobs select.
        let dir = if std::ptr::eq(w, &wf) { &y } else { &d };
        let got: BTreeSet<String> = w
            .jobs
            .iter()
            .filter(|j| j.name == "b")
            .map(|j| {
                let line = bpsc::submitdir::tasks::read_task(dir, &j.name, j.args[0].parse().expect("index")).expect("task");
                let t: J = serde_json::from_str(&line).expect("json");
                text(&t["quanta"][0]["data_id"]["label"])
            })
            .collect();
        let want: BTreeSet<String> = HOSTILE_LABELS.iter().map(|l| l.to_string()).collect();
        assert_eq!(got, want);
        assert_eq!(w.metadata["campaign"], "hostile ${HOME} 'c'");
        // The notify command keeps its shell semantics: ${HOME} reaches the shell, quoted values do not.
        let (_, cmd) = w.hooks.iter().find(|(on, _)| on == "error").expect("error hook");
        assert_eq!(cmd, r#"/bin/sh -c "echo 'hostile ${HOME} '\\''c'\\''' failure \"\" ${HOME}""#);
        // Run it the way pegasus-monitord does (shlex.split, no shell): the campaign name
        // arrives verbatim, the command's own ${HOME} is expanded by the shell.
        if let Some(out) = run_like_monitord(cmd) {
            assert_eq!(out, "hostile ${HOME} 'c' failure  /home/hook-test\n");
        }
    }
    // Source URLs percent-encode the values; pegasus-plan expands nothing of theirs.
    let rc = std::fs::read_to_string(y.join("replicas.yml")).expect("replicas");
    assert!(rc.contains("file:///data/raw/..%2F..%2Fetc/1.fits") && rc.contains("%24%7BHOME%7D"), "{rc}");
    // The env value round-trips.
    let tc = load_yaml(&y.join("transformations.yml"));
    assert_eq!(tc["transformations"][0]["profiles"]["env"]["NOTE"], "${HOME} and $(whoami) 'q'");
    // No line of the YAML workflow holds a raw control character (tabs are escaped).
    let text = std::fs::read_to_string(y.join("workflow.yml")).expect("workflow");
    assert!(!text.chars().any(|c| c.is_control() && c != '\n'));
    let _ = std::fs::remove_dir_all(&y);
    let _ = std::fs::remove_dir_all(&d);
    let _ = std::fs::remove_dir_all(&root);
}

/// Run a hook command as pegasus-monitord does: `subprocess.Popen(shlex.split(cmd))`.
fn run_like_monitord(cmd: &str) -> Option<String> {
    let py = "import shlex, subprocess, sys; sys.stdout.write(subprocess.run(shlex.split(sys.argv[1]), capture_output=True, text=True, check=True).stdout)";
    match Command::new("python3").arg("-c").arg(py).arg(cmd).env("HOME", "/home/hook-test").output() {
        Ok(o) => {
            assert!(o.status.success(), "{cmd}: {}", String::from_utf8_lossy(&o.stderr));
            Some(String::from_utf8_lossy(&o.stdout).into_owned())
        }
        Err(_) => {
            missing("python3 (to run hook commands the way pegasus-monitord does)");
            None
        }
    }
}

// ----------------------------------------------------------------------------- issue 13, 14, 17

/// `du -sb DIR`: every byte written under the submit directory, directories included.
fn du_bytes(dir: &Path) -> u64 {
    let o = Command::new("du").arg("-sb").arg(dir).output().expect("du");
    String::from_utf8_lossy(&o.stdout).split_whitespace().next().expect("du output").parse().expect("du number")
}

/// Issue 13: a large campaign takes at most 150 bytes a job, everything under the submit
/// directory (task tables included), in both formats.  Before: ~580 (YAML) and ~920 (DAX)
/// bytes a job on this campaign (per-job metadata, profiles, `uses`, long arguments).
#[test]
fn a_large_campaign_takes_at_most_150_bytes_a_job() {
    let src = tmp("compact-src");
    bpsc(&["synth", "--jobs", "100000", "-o", &src.to_string_lossy()]);
    for backend in ["pegasus", "pegasus-dax"] {
        let out = tmp(&format!("compact-{backend}"));
        compile(&src.join("campaign.bps"), backend, &out);
        let meta: J = serde_json::from_str(&std::fs::read_to_string(out.join("bpsc.json")).expect("bpsc.json")).expect("json");
        let jobs = meta["jobs"].as_u64().expect("jobs");
        let bytes = du_bytes(&out);
        eprintln!("{backend}: {bytes} bytes for {jobs} jobs: {:.1} bytes a job", bytes as f64 / jobs as f64);
        assert!(jobs > 90_000, "{jobs}");
        assert!(bytes <= 150 * jobs, "{backend}: {bytes} bytes for {jobs} jobs ({} a job)", bytes / jobs);
        let _ = std::fs::remove_dir_all(&out);
    }
    let _ = std::fs::remove_dir_all(&src);
}

/// Evaluate ClassAd expressions with HTCondor's own library: `cases` is a list of
/// [expression, job ad (JSON object), machine ad (JSON object)]; prints the values.
const CLASSAD_EVAL: &str = r#"
import json, sys, classad2
out = []
for expr, my, target in json.load(open(sys.argv[1])):
    job = classad2.ClassAd()
    for k, v in my.items():
        job[k] = classad2.ExprTree(v) if isinstance(v, str) and v.startswith("[") else v
    job["bpsc_expr"] = classad2.ExprTree(expr)
    v = job.eval("bpsc_expr") if not target else classad2.ExprTree(expr).eval(classad2.ClassAd(target))
    out.append(v if isinstance(v, (bool, int, float)) else repr(v))
print(json.dumps(out))
"#;

fn classad_eval(cases: &J) -> Option<Vec<J>> {
    let py = std::env::var("BPSC_CONDOR_PYTHON").unwrap_or_else(|_| "python3".into());
    if !Command::new(&py).args(["-c", "import classad2"]).output().is_ok_and(|o| o.status.success()) {
        missing("a Python with the HTCondor bindings (classad2): export BPSC_CONDOR_PYTHON=V/bin/python");
        return None;
    }
    let f = tmp("classad-cases.json");
    std::fs::write(&f, cases.to_string()).expect("write");
    let o = Command::new(&py).args(["-c", CLASSAD_EVAL]).arg(&f).output().expect("python");
    assert!(o.status.success(), "classad2: {}", String::from_utf8_lossy(&o.stderr));
    let _ = std::fs::remove_file(&f);
    Some(serde_json::from_slice(&o.stdout).expect("json"))
}

/// Evaluate constant ClassAd expressions with the pool's HTCondor (`condor_status -limit 1
/// -af`): one value each, `true`/`false` for these.  None (reported missing) without a pool.
fn condor_status_eval(exprs: &[String]) -> Option<Vec<String>> {
    let o = Command::new("condor_status").args(["-limit", "1", "-af"]).args(exprs).output();
    match o {
        Ok(o) if o.status.success() && !o.stdout.is_empty() => {
            let text = String::from_utf8_lossy(&o.stdout);
            Some(text.lines().next().unwrap_or_default().split_whitespace().map(str::to_string).collect())
        }
        _ => {
            missing("an HTCondor pool answering condor_status (to evaluate the host requirements)");
            None
        }
    }
}

/// P1: `hosts` are short names, and HTCondor's `Machine` is the fully qualified host name:
/// `Machine == "sdfrome041"` never matches and the jobs would sit idle for ever.  The
/// requirements must accept the full name of a listed host, and reject other hosts.
#[test]
fn host_requirements_match_the_fully_qualified_machine_name() {
    let (y, d, wf, dax) = check_campaign(&example("nightly_calib/nightly_calib"), "nc-hosts");
    for w in [&wf, &dax] {
        let c = w.jobs.iter().find(|j| j.id == "certify").expect("certify");
        let req = c.effective.get(&("condor".into(), "requirements".into())).expect("requirements").clone();
        assert!(req.contains(r#"split(Machine, ".")[0]"#), "{req}");
        // The Python bindings' ClassAd library (classad2 25.x) evaluates `split` to an error,
        // so these go through a real HTCondor's evaluator: condor_status evaluates each
        // expression, with `Machine` replaced by the machine name as a string literal.
        let machines = [
            "sdfrome041.slac.stanford.edu",
            "SDFROME043.slac.stanford.edu",
            "sdfrome042",
            "sdfrome044.slac.stanford.edu",
            "sdfrome0411.slac.stanford.edu",
        ];
        let exprs: Vec<String> = machines.iter().map(|m| req.replace("Machine", &format!("\"{m}\""))).collect();
        if let Some(v) = condor_status_eval(&exprs) {
            assert_eq!(v, ["true", "true", "true", "false", "false"], "{req}");
        }
    }
    let _ = std::fs::remove_dir_all(&y);
    let _ = std::fs::remove_dir_all(&d);
}

/// P3: a site without a shared filesystem is refused (E801) before anything is written,
/// saying what to configure.
#[test]
fn a_site_without_a_shared_filesystem_is_refused_with_what_to_configure() {
    let f = repo().join("examples/special_programs/special_programs.bps");
    for backend in ["pegasus", "pegasus-dax"] {
        let out = tmp(&format!("nonshared-{backend}"));
        let o = Command::new(env!("CARGO_BIN_EXE_bpsc"))
            .args(["compile", &f.to_string_lossy(), "--backend", backend, "-o", &out.to_string_lossy()])
            .output()
            .expect("bpsc");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains("E801") && err.contains("site `in2p3`") && err.contains("shared_fs = true"), "{err}");
        assert!(err.contains("--backend htcondor"), "{err}");
        assert!(!out.exists(), "nothing written");
        // `bpsc check --backend` says the same.
        let o =
            Command::new(env!("CARGO_BIN_EXE_bpsc")).args(["check", &f.to_string_lossy(), "--backend", backend]).output().expect("bpsc");
        assert_eq!(o.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&o.stdout).contains("E801") || String::from_utf8_lossy(&o.stderr).contains("E801"));
    }
}

/// P4 and P7: bpsc's POST script decides what DAGMan does after each attempt.  An aborting
/// job aborts the workflow only after its last attempt (exit 3, ABORT-DAG-ON 3); a
/// retry_unless_exit status stops the retries (exit 2, RETRY N UNLESS-EXIT 2); anything
/// else may be retried (exit 1).  Before, `ABORT-DAG-ON 1 RETURN 1` fired at the first
/// failed attempt, and retry_unless_exit was ignored.
#[test]
fn the_post_script_aborts_only_after_the_last_attempt_and_honours_retry_unless_exit() {
    let (y, d, wf, _) = check_campaign(&example("nightly_calib/nightly_calib"), "nc-post");
    let post = y.join("bpsc-post.sh");
    assert!(post.is_file(), "bpsc-post.sh");
    // A job of a group with retries = 1, retry_unless_exit = [2], on_failure = abort.
    let j = wf
        .jobs
        .iter()
        .find(|j| j.effective.get(&("dagman".into(), "RETRY".into())).map(|r| r.as_str()) == Some("1 UNLESS-EXIT 2"))
        .expect("a job that retries");
    assert_eq!(j.effective[&("dagman".into(), "POST.ARGUMENTS".into())], "$RETURN $RETRY $MAX_RETRIES 1 2");
    assert_eq!(j.effective[&("dagman".into(), "ABORT-DAG-ON".into())], "3 RETURN 1");
    // (RETURN, RETRY, MAX_RETRIES, ABORT, CODES) -> exit
    for (args, want) in [
        (["0", "0", "1", "1", "2"], 0),
        (["1", "0", "1", "1", "2"], 1), // first attempt failed: retried, no abort
        (["1", "1", "1", "1", "2"], 3), // last attempt failed: abort
        (["2", "0", "1", "1", "2"], 3), // a no-retry status of an aborting job: abort now
        (["2", "0", "1", "0", "2"], 2), // ... of a continuing job: no retry
        (["7", "0", "3", "0", "-"], 1),
        (["-1004", "3", "3", "0", "-"], 1),
        (["-1004", "3", "3", "1", "-"], 3),
    ] {
        let o = Command::new("/bin/sh").arg(&post).args(args).arg("job.out").env("PATH", "/usr/bin:/bin").output().expect("sh");
        assert_eq!(o.status.code(), Some(want), "bpsc-post.sh {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let _ = std::fs::remove_dir_all(&y);
    let _ = std::fs::remove_dir_all(&d);
}

/// P5: `persist = scratch` outputs must survive the workflow; Pegasus's leaf cleanup
/// (part of `inplace`) removes the working directory they are in, so such a campaign is
/// planned with `--cleanup none`.  A campaign without one keeps `inplace`.
#[test]
fn scratch_persisted_outputs_survive_pegasus_cleanup() {
    let d = tmp("cleanup-drp");
    compile(&example("drp/drp"), "pegasus", &d);
    let plan = std::fs::read_to_string(d.join("plan.sh")).expect("plan.sh");
    assert!(plan.contains("--cleanup none"), "drp persists coadd_det as scratch:\n{plan}");
    let _ = std::fs::remove_dir_all(&d);
    let d = tmp("cleanup-nc");
    compile(&example("nightly_calib/nightly_calib"), "pegasus", &d);
    let plan = std::fs::read_to_string(d.join("plan.sh")).expect("plan.sh");
    assert!(plan.contains("--cleanup inplace"), "{plan}");
    let _ = std::fs::remove_dir_all(&d);
}

const GROWTH_BPS: &str = r#"bps 1.1
site pool {
  backend   = htcondor
  shared_fs = true
  max_memory = 10GiB
}
site hpc {
  backend   = slurm
  shared_fs = true
}
dimension d = 0..3
pipeline p {
  step any_growth over (d) {
    run              = "echo {d}"
    memory           = 4GiB
    retries          = 3
    memory_growth    = 1.5
    memory_growth_on = any
  }
  step oom_growth over (d) after any_growth {
    run              = "echo {d}"
    memory           = 4GiB
    retries          = 2
    memory_growth    = 2.0
    memory_growth_on = oom
    max_running      = 2
    env { A = "1" }
    pass_env         = ["BPSC_PEGASUS_TEST_PASS"]
  }
  step at_slurm over (d) after oom_growth {
    run           = "echo {d}"
    site          = hpc
    retries       = 2
    memory_growth = 2.0
  }
}
campaign growth {
  use p
  coverage = d
  site     = pool
}
"#;

/// P7 and language 1.1: memory growth at an HTCondor site is a `condor.request_memory`
/// expression, evaluated here by HTCondor's ClassAd library as the schedd would: on DAGMan's
/// `$(RETRY)` for `memory_growth_on = any`, on the job's own memory holds (and the
/// wrapper's exit 75 turned into one) for `oom`, capped at the site's max_memory; at a Slurm
/// (glite) site it cannot grow, and says so (W801).  max_running is a DAGMan category with
/// its maxjobs; pass_env values are env profiles, and nothing else from the compiling shell.
#[test]
fn memory_growth_at_htcondor_sites_throttles_and_pass_env() {
    let src = tmp("growth-src");
    std::fs::create_dir_all(&src).expect("mkdir");
    std::fs::write(src.join("g.bps"), GROWTH_BPS).expect("write");
    let file = src.join("g.bps");
    // W801 for the Slurm site's growth, at its setting; none for the HTCondor site's.
    let o = Command::new(env!("CARGO_BIN_EXE_bpsc"))
        .args(["check", &file.to_string_lossy(), "--backend", "pegasus", "--format", "json"])
        .env("BPSC_PEGASUS_TEST_PASS", "passed value")
        .output()
        .expect("bpsc");
    let diags: Vec<J> = String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    let w801: Vec<&J> = diags.iter().filter(|d| d["code"] == "W801").collect();
    assert_eq!(w801.len(), 1, "{diags:?}");
    assert!(w801[0]["message"].as_str().unwrap_or("").contains("memory_growth"), "{w801:?}");
    let ir = ir_jobs_env(&file, "growth", &[("BPSC_PEGASUS_TEST_PASS", "passed value")]);
    let (y, d) = (tmp("growth-yaml"), tmp("growth-dax"));
    for (backend, dir) in [("pegasus", &y), ("pegasus-dax", &d)] {
        let out = Command::new(env!("CARGO_BIN_EXE_bpsc"))
            .args(["compile", &file.to_string_lossy(), "--backend", backend, "-o", &dir.to_string_lossy(), "--force"])
            .env("BPSC_PEGASUS_TEST_PASS", "passed value")
            .env("BPSC_PEGASUS_TEST_LEAK", "must not reach a job")
            .output()
            .expect("bpsc");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let refdir = reference();
    let s = refdir.as_deref().map(schemas);
    let wf = parse_yaml_workflow(&y, s.as_ref());
    semantic(&wf, &y, &ir);
    let dax = parse_dax_workflow(&d);
    semantic(&dax, &d, &ir);
    for w in [&wf, &dax] {
        let get = |id: &str, ns: &str, k: &str| {
            w.jobs.iter().find(|j| j.id == id).and_then(|j| j.effective.get(&(ns.to_string(), k.to_string())).cloned())
        };
        // any: $(RETRY) from DAGMan.
        let any = get("any_growth_0", "condor", "request_memory").expect("request_memory");
        assert!(any.contains("$(RETRY)"), "{any}");
        // oom: the job's memory holds, released until the retries are spent.
        let oom = get("oom_growth_0", "condor", "request_memory").expect("request_memory");
        assert!(oom.contains("NumHoldsByReason.JobOutOfResources"), "{oom}");
        assert_eq!(get("oom_growth_0", "condor", "on_exit_hold_subcode").as_deref(), Some("34"));
        let release = get("oom_growth_0", "condor", "periodic_release").expect("periodic_release");
        let remove = get("oom_growth_0", "condor", "periodic_remove").expect("periodic_remove");
        // Slurm site: a fixed pegasus.memory (YAML) / request_memory (DAX), no expression.
        let slurm_mem = get("at_slurm_0", "pegasus", "memory").or_else(|| get("at_slurm_0", "condor", "request_memory")).expect("memory");
        assert_eq!(slurm_mem, "2048");
        // max_running: a category and its maxjobs.
        assert_eq!(get("oom_growth_0", "dagman", "CATEGORY").as_deref(), Some("oom_growth"));
        // pass_env and env { }: env profiles; the compiling shell's other variables: nowhere.
        assert_eq!(get("oom_growth_0", "env", "BPSC_PEGASUS_TEST_PASS").as_deref(), Some("passed value"));
        assert_eq!(get("oom_growth_0", "env", "A").as_deref(), Some("1"));
        assert_eq!(get("any_growth_0", "env", "BPSC_PEGASUS_TEST_PASS"), None);
        let cases = serde_json::json!([
            [any.replace("$(RETRY)", "0"), {}, null],
            [any.replace("$(RETRY)", "2"), {}, null],
            [any.replace("$(RETRY)", "3"), {}, null],
            [oom.clone(), {}, null],
            [oom.clone(), {"NumHoldsByReason": "[ JobOutOfResources = 1 ]"}, null],
            [oom.clone(), {"NumHoldsByReason": "[ JobOutOfResources = 1; JobPolicy = 1; UserRequest = 4 ]"}, null],
            [oom.clone(), {"NumHoldsByReason": "[ UserRequest = 4 ]"}, null],
            [release.clone(), {"HoldReasonCode": 34, "NumHoldsByReason": "[ JobOutOfResources = 2 ]"}, null],
            [release.clone(), {"HoldReasonCode": 34, "NumHoldsByReason": "[ JobOutOfResources = 3 ]"}, null],
            [release.clone(), {"HoldReasonCode": 3, "HoldReasonSubCode": 34, "NumHoldsByReason": "[ JobPolicy = 1 ]"}, null],
            [release.clone(), {"HoldReasonCode": 1, "NumHoldsByReason": "[ UserRequest = 1 ]"}, null],
            [remove.clone(), {"JobStatus": 5, "HoldReasonCode": 34, "NumHoldsByReason": "[ JobOutOfResources = 3 ]"}, null],
            [remove.clone(), {"JobStatus": 5, "HoldReasonCode": 34, "NumHoldsByReason": "[ JobOutOfResources = 1 ]"}, null],
        ]);
        if let Some(v) = classad_eval(&cases) {
            let n = |x: i64| J::from(x);
            // 4096 MiB x 1.5^RETRY, capped at the site's 10 GiB; x 2 per memory hold.
            assert_eq!(v[..7], [n(4096), n(9216), n(10240), n(4096), n(8192), n(10240), n(4096)], "{any} / {oom}");
            assert_eq!(
                v[7..],
                [J::Bool(true), J::Bool(false), J::Bool(true), J::Bool(false), J::Bool(true), J::Bool(false)],
                "{release} / {remove}"
            );
        }
    }
    let props = std::fs::read_to_string(y.join("pegasus.properties")).expect("properties");
    assert!(props.contains("dagman.oom_growth.maxjobs = 2"), "{props}");
    for dir in [&y, &d] {
        for f in common::list_files(dir) {
            let text = std::fs::read(dir.join(&f)).unwrap_or_default();
            assert!(!String::from_utf8_lossy(&text).contains("must not reach a job"), "{f} holds a variable not in pass_env");
        }
    }
    for p in [&y, &d, &src] {
        let _ = std::fs::remove_dir_all(p);
    }
}

/// A deterministic excerpt of a generated file: head, tail and counts.
fn excerpt(path: &Path, head: usize, tail: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let lines: Vec<&str> = text.lines().collect();
    let mut s = format!("--- {} ({} lines)\n", path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(), lines.len());
    if lines.len() <= head + tail {
        s.push_str(&lines.join("\n"));
    } else {
        s.push_str(&lines[..head].join("\n"));
        s.push_str(&format!("\n[... {} lines ...]\n", lines.len() - head - tail));
        s.push_str(&lines[lines.len() - tail..].join("\n"));
    }
    s.push('\n');
    s
}

#[test]
fn snapshots() {
    for e in EXAMPLES {
        let name = e.split('/').next().unwrap_or(e);
        for (backend, files) in [
            (
                "pegasus",
                &[
                    ("workflow.yml", 90, 12),
                    ("transformations.yml", 40, 0),
                    ("sites.yml", 80, 0),
                    ("pegasus.properties", 60, 0),
                    ("plan.sh", 60, 0),
                ][..],
            ),
            ("pegasus-dax", &[("workflow.dax", 90, 12), ("sites.xml", 60, 0), ("pegasus.properties", 60, 0), ("plan.sh", 60, 0)][..]),
        ] {
            let d = tmp(&format!("snap-{name}-{backend}"));
            compile(&example(e), backend, &d);
            let wf = if backend == "pegasus" { parse_yaml_workflow(&d, None) } else { parse_dax_workflow(&d) };
            let mut s = format!(
                "jobs: {}\ndependencies: {}\ninputs: {}\noutputs: {}\nstaged out: {}\nreplicas: {}\nfiles: {:?}\n",
                wf.jobs.len(),
                wf.edges.len(),
                wf.jobs.iter().map(|j| j.inputs.len()).sum::<usize>(),
                wf.jobs.iter().map(|j| j.outputs.len()).sum::<usize>(),
                wf.outputs.len(),
                wf.replicas.len(),
                common::list_files(&d).iter().filter(|f| !f.starts_with("tasks/") && !f.starts_with("logs/")).collect::<Vec<_>>()
            );
            for (f, h, t) in files {
                s.push_str(&excerpt(&d.join(f), *h, *t));
            }
            insta::with_settings!({snapshot_path => repo().join("snapshots/pegasus"), prepend_module_to_snapshot => false}, {
                insta::assert_snapshot!(format!("{name}-{backend}"), s);
            });
            let _ = std::fs::remove_dir_all(&d);
        }
    }
}
