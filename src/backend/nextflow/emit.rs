//! Nextflow DSL2 backend: `main.nf`, `nextflow.config` and the job tables they read.
//!
//! # Design
//!
//! The jobs and the edges are *data*: the script holds one process per task group (per step,
//! cluster or inserted kind) and one channel expression per pair of groups that has edges,
//! so a million-job campaign gives a script of a few kilobytes.
//!
//! * `nextflow/nodes/C.tsv`: one row per job of channel node `C`: `K  JOB_ID  NPARENTS`
//!   (`K` is the job's index in its task group, the `--index` of `bpsc wrap`), then the site
//!   index and the resources when they differ between the jobs of `C`.
//! * `nextflow/edges/P--C.tsv`: one row per IR edge from a job of `P` to a job of `C`:
//!   `K_PARENT  K_CHILD  NPARENTS_OF_CHILD`.
//!
//! A *channel node* is a task group, except that groups on a cycle of the group graph (an
//! `order S serial by D` gives `S -> join -> S`; join nodes feed join nodes) are cut into
//! layers by longest path inside the cycle, so the channel graph is acyclic (a DSL2 process
//! can be invoked once, with no feedback).  Join nodes become channel expressions only.
//!
//! For each channel node `C` with parents, every parent `P` gives the events `[kp, kc, n]`
//! of its finished jobs: `done_P.join(edges)` when each parent job has at most one child in
//! `C` (one-to-one and gather), `edges.combine(done_P, by: 0)` when some have several
//! (broadcast and relational).  The events of all parents are mixed; when some job of `C`
//! has several parents they are grouped with `groupTuple` on `groupKey(kc, n)`, which emits
//! a job as soon as its `n`-th parent finished.  Jobs without parents come straight from the
//! nodes table.  A failed job (after its retries, `on_failure = continue`: errorStrategy
//! `ignore`) emits nothing, so its descendants never start and independent jobs go on.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use crate::backend::pegasus::quote::classad_hosts;
use crate::backend::templates::{TemplateSet, Templates};
use crate::backend::{Emitted, Groups, Output};
use crate::diag::Diagnostic;
use crate::ir::adjacency::topo_jobs;
use crate::ir::quote::{quote_in, Quote};
use crate::ir::{GrowthOn, Ir, JobKind, JobSettings, OnFailure, Resources, Software};

/// Sub-directory of the submit directory that holds the tables.
pub const TABLE_DIR: &str = "nextflow";

/// The variables a task keeps from the environment Nextflow gives it (a `case` pattern):
/// the user's identity and temporary directory, and what the batch system and Nextflow set
/// for the job itself.  Everything else is the launching shell's and is unset.
pub const KEEP_ENV: &str = "HOME|USER|LOGNAME|TMPDIR|NXF_TASK_WORKDIR|SLURM_*|_CONDOR_*";

/// The PATH a task starts with, unless its environment (`env { }`, `pass_env`) sets one:
/// the system's, as HTCondor and a login shell give it.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The job wrapper's "out of memory" exit status (the wrapper's exit-status contract,
/// `crate::submitdir::exit`: 75), and 137, a process killed by SIGKILL as the kernel's OOM
/// killer does: the failures after which `memory_growth_on = oom` grows the memory.
pub const OOM_EXITS: [i32; 2] = [137, 75];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CKind {
    /// A Nextflow process running `bpsc wrap`.
    Process,
    /// An IR join node: a channel expression, no task.
    Join,
}

/// A channel node: the jobs of one task group (or of one layer of it).
#[derive(Clone, Debug)]
pub struct CNode {
    /// Process name or channel name: `[A-Za-z][A-Za-z0-9_]*`, unique.
    pub name: String,
    pub group: u32,
    /// Layer number (1-based) when the group is cut into layers.
    pub part: Option<u32>,
    pub kind: CKind,
    /// Jobs, in IR order.
    pub jobs: Vec<u32>,
}

/// Channel nodes and the pairs of them that have edges.
#[derive(Debug)]
pub struct Plan {
    pub cnodes: Vec<CNode>,
    /// Channel node of each job (`u32::MAX`: the provenance job, run by `workflow.onComplete`).
    pub cnode_of: Vec<u32>,
    /// (parent cnode, child cnode) -> (edge count, largest number of children one parent job
    /// has in the child cnode).
    pub pairs: BTreeMap<(u32, u32), (u64, u32)>,
    /// Number of parents of each job.
    pub indeg: Vec<u32>,
    /// Channel nodes in a topological order.
    pub order: Vec<u32>,
}

fn ident(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

/// Strongly connected components (iterative Tarjan).  Returns the component of each node.
fn scc(n: usize, adj: &[Vec<u32>]) -> Vec<u32> {
    const UNSEEN: u32 = u32::MAX;
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0u32; n];
    let mut on = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    let mut comp = vec![UNSEEN; n];
    let (mut next, mut ncomp) = (0u32, 0u32);
    for s in 0..n {
        if index[s] != UNSEEN {
            continue;
        }
        let mut call: Vec<(usize, usize)> = vec![(s, 0)];
        index[s] = next;
        low[s] = next;
        next += 1;
        stack.push(s);
        on[s] = true;
        while let Some(top) = call.last_mut() {
            let (v, i) = *top;
            if i < adj[v].len() {
                top.1 += 1;
                let w = adj[v][i] as usize;
                if index[w] == UNSEEN {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on[w] = true;
                    call.push((w, 0));
                } else if on[w] {
                    low[v] = low[v].min(index[w]);
                }
            } else {
                call.pop();
                if let Some(&(u, _)) = call.last() {
                    low[u] = low[u].min(low[v]);
                }
                if low[v] == index[v] {
                    while let Some(w) = stack.pop() {
                        on[w] = false;
                        comp[w] = ncomp;
                        if w == v {
                            break;
                        }
                    }
                    ncomp += 1;
                }
            }
        }
    }
    comp
}

/// Cut the IR into channel nodes.
/// A failure of the channel-graph plan: a bpsc bug (E899).
fn internal(msg: impl Into<String>) -> Diagnostic {
    Diagnostic::new("E899", format!("nextflow: internal error: {}", msg.into()))
        .help("this is a bpsc bug; please report it with the campaign file that triggers it")
}

/// The templates of the Nextflow files.
pub const TEMPLATES: TemplateSet = TemplateSet {
    templates: &[
        ("main.nf", include_str!("../../../templates/nextflow/main.nf.j2")),
        ("nextflow.config", include_str!("../../../templates/nextflow/nextflow.config.j2")),
    ],
    filters: &[],
};

pub fn plan(ir: &Ir, g: &Groups) -> Result<Plan, Diagnostic> {
    let n = ir.jobs.len();
    let ng = g.names.len();
    // Group graph and its cycles.
    let mut gedges: BTreeSet<(u32, u32)> = BTreeSet::new();
    for &(p, c) in &ir.edges {
        gedges.insert((g.group_of[p as usize], g.group_of[c as usize]));
    }
    let mut adj: Vec<Vec<u32>> = vec![Vec::new(); ng];
    for &(a, b) in &gedges {
        adj[a as usize].push(b);
    }
    let comp = scc(ng, &adj);
    let mut comp_size: BTreeMap<u32, usize> = BTreeMap::new();
    for &c in &comp {
        *comp_size.entry(c).or_default() += 1;
    }
    let cyclic: Vec<bool> =
        (0..ng).map(|x| comp_size.get(&comp[x]).copied().unwrap_or(0) > 1 || gedges.contains(&(x as u32, x as u32))).collect();
    // Layers (longest path inside the cycle) of the jobs of cyclic groups.
    let mut layer = vec![0u32; n];
    if cyclic.iter().any(|&c| c) {
        let (poff, pin) = ir.parents();
        for j in topo_jobs(ir) {
            let gj = g.group_of[j as usize] as usize;
            if !cyclic[gj] {
                continue;
            }
            let mut l = 0u32;
            for &p in &pin[poff[j as usize] as usize..poff[j as usize + 1] as usize] {
                let gp = g.group_of[p as usize] as usize;
                if comp[gp] == comp[gj] {
                    l = l.max(layer[p as usize] + 1);
                }
            }
            layer[j as usize] = l;
        }
    }
    // Inserted jobs (stage-in, stage-out, cleanup) are split by the site of the step they
    // serve, so that each process gets that site's queue, account and hosts.
    let (coff, cto) = ir.children();
    let site_part = |j: usize| -> u32 {
        match ir.jobs[j].kind {
            JobKind::StageIn | JobKind::StageOut | JobKind::Cleanup => (site_index(ir, ir.settings_of(j as u32).step) + 1) as u32,
            _ => 0,
        }
    };
    // Jobs of one group whose settings become different directives (queue, account, hosts,
    // software, env, throttle, retries and their policy) are cut into one process per
    // variant: a process has one value of each, and a job must get its own (only the
    // resources may differ, as table columns).
    let class_key: Vec<String> = ir.job_settings.iter().map(variant_key).collect();
    let mut variants: BTreeMap<(u32, &str), u32> = BTreeMap::new();
    let mut per_group: Vec<u32> = vec![0; g.names.len()];
    let mut variant_of = |j: usize| -> u32 {
        let gr = g.group_of[j];
        let k = class_key[ir.jobs[j].settings as usize].as_str();
        if let Some(&v) = variants.get(&(gr, k)) {
            return v;
        }
        let v = per_group[gr as usize];
        per_group[gr as usize] += 1;
        variants.insert((gr, k), v);
        v
    };
    // Channel nodes, numbered in order of their first job.
    let mut key_to_cnode: BTreeMap<(u32, u32, u32, u32), u32> = BTreeMap::new();
    let mut cnodes: Vec<CNode> = Vec::new();
    let mut cnode_of = vec![u32::MAX; n];
    for (j, job) in ir.jobs.iter().enumerate() {
        let kind = match job.kind {
            JobKind::Provenance => continue,
            JobKind::Join => CKind::Join,
            _ => CKind::Process,
        };
        let gr = g.group_of[j];
        let var = if kind == CKind::Join { 0 } else { variant_of(j) };
        let key = (gr, site_part(j), var, layer[j]);
        let c = *key_to_cnode.entry(key).or_insert_with(|| {
            cnodes.push(CNode { name: String::new(), group: gr, part: None, kind, jobs: Vec::new() });
            (cnodes.len() - 1) as u32
        });
        cnode_of[j] = c;
        cnodes[c as usize].jobs.push(j as u32);
    }
    // Names: p_GROUP / j_GROUP, then _SITE when the group is split by site, _vN when its
    // jobs have N settings variants, and _LAYER (1-based) when it is cut into layers; unique.
    let mut parts_of_group: BTreeMap<u32, Vec<(u32, u32, u32, u32)>> = BTreeMap::new();
    for (&(gr, sp, var, l), &c) in &key_to_cnode {
        parts_of_group.entry(gr).or_default().push((sp, var, l, c));
    }
    let mut used: BTreeSet<String> = BTreeSet::new();
    for (gr, parts) in &parts_of_group {
        let sites: BTreeSet<u32> = parts.iter().map(|p| p.0).collect();
        let vars: BTreeSet<u32> = parts.iter().map(|p| p.1).collect();
        let layers: Vec<u32> = parts.iter().map(|p| p.2).collect::<BTreeSet<u32>>().into_iter().collect();
        for &(sp, var, l, c) in parts {
            let cn = &mut cnodes[c as usize];
            let prefix = if cn.kind == CKind::Process { "p_" } else { "j_" };
            let mut name = format!("{prefix}{}", ident(&g.names[*gr as usize]));
            if sites.len() > 1 {
                let site =
                    sp.checked_sub(1).and_then(|i| ir.sites.get(i as usize)).map(|s| ident(&s.name)).unwrap_or_else(|| "nosite".into());
                name = format!("{name}_{site}");
            }
            if vars.len() > 1 {
                name = format!("{name}_v{}", var + 1);
            }
            if layers.len() > 1 {
                let rank = layers.iter().position(|&x| x == l).unwrap_or(0) as u32 + 1;
                cn.part = Some(rank);
                name = format!("{name}_{rank}");
            }
            if used.contains(&name) {
                name = format!("{name}_c{c}");
            }
            used.insert(name.clone());
            cn.name = name;
        }
    }
    // Pairs.
    let mut pairs: BTreeMap<(u32, u32), (u64, u32)> = BTreeMap::new();
    let mut indeg = vec![0u32; n];
    for p in 0..n {
        let cp = cnode_of[p];
        let kids = &cto[coff[p] as usize..coff[p + 1] as usize];
        if kids.is_empty() {
            continue;
        }
        let mut per: BTreeMap<u32, u32> = BTreeMap::new();
        for &c in kids {
            indeg[c as usize] += 1;
            let cc = cnode_of[c as usize];
            if cp == u32::MAX || cc == u32::MAX {
                return Err(internal("the provenance job has edges; the nextflow backend runs it in workflow.onComplete"));
            }
            *per.entry(cc).or_default() += 1;
        }
        for (cc, k) in per {
            let e = pairs.entry((cp, cc)).or_insert((0, 0));
            e.0 += k as u64;
            e.1 = e.1.max(k);
        }
    }
    // Topological order of the channel graph (ties: cnode number).
    let nc = cnodes.len();
    let mut cindeg = vec![0u32; nc];
    let mut cadj: Vec<Vec<u32>> = vec![Vec::new(); nc];
    for &(a, b) in pairs.keys() {
        if a == b {
            return Err(internal(format!("channel node {} depends on itself", cnodes[a as usize].name)));
        }
        cadj[a as usize].push(b);
        cindeg[b as usize] += 1;
    }
    let mut ready: BTreeSet<u32> = (0..nc as u32).filter(|&c| cindeg[c as usize] == 0).collect();
    let mut order = Vec::with_capacity(nc);
    while let Some(c) = ready.pop_first() {
        order.push(c);
        for &d in &cadj[c as usize] {
            cindeg[d as usize] -= 1;
            if cindeg[d as usize] == 0 {
                ready.insert(d);
            }
        }
    }
    if order.len() != nc {
        return Err(internal("the channel graph has a cycle"));
    }
    Ok(Plan { cnodes, cnode_of, pairs, indeg, order })
}

// ------------------------------------------------------------------ quoting

/// A Groovy single-quoted string literal (no interpolation).
pub fn groovy_sq(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('\'');
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '\'' => o.push_str("\\'"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('\'');
    o
}

/// Text placed verbatim inside a Groovy `"""` GString: no interpolation, no escape.
pub fn gstring_lit(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '$' => o.push_str("\\$"),
            '"' => o.push_str("\\\""),
            c => o.push(c),
        }
    }
    o
}

/// Text safe in a `//` comment: one line, printable.
fn comment(s: &str) -> String {
    s.chars().map(|c| if (c as u32) < 0x20 || c as u32 == 0x7f { '?' } else { c }).collect()
}

/// Shell single quotes.
fn sh_sq(s: &str) -> String {
    let mut o = String::new();
    quote_in(s, Quote::None, &mut o);
    o
}

/// An environment variable reference in any quoting context.  Jobs run under `bash -u`
/// (Nextflow's default), so `USER` falls back to `id -un` when the batch system leaves it
/// unset, and other variables to the empty string.
fn var_in(name: &str, q: Quote, out: &mut String) {
    let v = if name == "USER" { "${USER:-$(id -un)}".to_string() } else { format!("${{{name}:-}}") };
    match q {
        Quote::None => out.push_str(&format!("\"{v}\"")),
        Quote::Double => out.push_str(&v),
        Quote::Single => out.push_str(&format!("'\"{v}\"'")),
    }
}

#[derive(Debug, PartialEq)]
enum TPart {
    Lit(String),
    Ph(String),
}

/// Split a template text (`{{`/`}}` literal braces, `{name}` placeholders).
fn template_parts(text: &str) -> Vec<TPart> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if text[i..].starts_with("{{") {
            lit.push('{');
            i += 2;
        } else if text[i..].starts_with("}}") {
            lit.push('}');
            i += 2;
        } else if b[i] == b'{' {
            match text[i + 1..].find(['}', '{']).map(|k| i + 1 + k) {
                Some(j) if b[j] == b'}' => {
                    if !lit.is_empty() {
                        parts.push(TPart::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(TPart::Ph(text[i + 1..j].trim().to_string()));
                    i = j + 1;
                }
                _ => {
                    lit.push('{');
                    i += 1;
                }
            }
        } else {
            let ch = text[i..].chars().next().unwrap_or(' ');
            lit.push(ch);
            i += ch.len_utf8().max(1);
        }
    }
    if !lit.is_empty() {
        parts.push(TPart::Lit(lit));
    }
    parts
}

/// What a placeholder becomes.
enum PhVal {
    Text(String),
    Env(&'static str),
}

/// A site's scratch template as a Groovy expression for the driver: `{user}` is the
/// driver's `user` variable (see `bpscSitePaths` in main.nf).
fn groovy_path(t: &str, campaign: &str, site: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    for p in template_parts(t) {
        match p {
            TPart::Lit(l) => parts.push(groovy_sq(&l)),
            TPart::Ph(name) => match name.as_str() {
                "user" => parts.push("user".into()),
                "campaign" => parts.push(groovy_sq(campaign)),
                "site" => parts.push(groovy_sq(site)),
                _ => {}
            },
        }
    }
    if parts.is_empty() {
        "''".into()
    } else {
        format!("({})", parts.join(" + "))
    }
}

/// Render a template that is a *path* (a site's scratch) as one shell word.
fn render_path_word(text: &str, f: &dyn Fn(&str) -> Option<PhVal>) -> String {
    let mut out = String::new();
    for p in template_parts(text) {
        match p {
            TPart::Lit(l) => quote_in(&l, Quote::None, &mut out),
            TPart::Ph(name) => match f(&name) {
                Some(PhVal::Text(v)) => quote_in(&v, Quote::None, &mut out),
                Some(PhVal::Env(v)) => var_in(v, Quote::None, &mut out),
                None => {}
            },
        }
    }
    if out.is_empty() {
        out.push_str("''");
    }
    out
}

// ------------------------------------------------------------------ settings

/// A value that all jobs of a channel node share, or not.
#[derive(Clone, Debug, PartialEq)]
enum Uni<T> {
    Empty,
    Same(T),
    Mixed,
}

impl<T: PartialEq> Uni<T> {
    fn add(&mut self, v: T) {
        match self {
            Uni::Empty => *self = Uni::Same(v),
            Uni::Same(x) if *x == v => {}
            Uni::Same(_) => *self = Uni::Mixed,
            Uni::Mixed => {}
        }
    }
    fn same(&self) -> Option<&T> {
        match self {
            Uni::Same(x) => Some(x),
            _ => None,
        }
    }
}

/// The settings of a step that become directives or cluster options.
#[derive(Clone, Debug, PartialEq, Default)]
struct StepOpts {
    queue: Option<String>,
    account: Option<String>,
    qos: Option<String>,
    hosts: Vec<String>,
    avoid_hosts: Vec<String>,
    software: Option<Software>,
    env: Vec<(String, String)>,
    max_jobs: Option<i64>,
}

impl<T> Default for Uni<T> {
    fn default() -> Self {
        Uni::Empty
    }
}

/// The step settings of a channel node's jobs, each kept only when all jobs agree.
#[derive(Default)]
struct OptsUni {
    queue: Uni<Option<String>>,
    account: Uni<Option<String>>,
    qos: Uni<Option<String>>,
    hosts: Uni<Vec<String>>,
    avoid_hosts: Uni<Vec<String>>,
    software: Uni<Option<Software>>,
    env: Uni<Vec<(String, String)>>,
    max_jobs: Uni<Option<i64>>,
}

impl OptsUni {
    fn add(&mut self, o: StepOpts) {
        self.queue.add(o.queue);
        self.account.add(o.account);
        self.qos.add(o.qos);
        self.hosts.add(o.hosts);
        self.avoid_hosts.add(o.avoid_hosts);
        self.software.add(o.software);
        self.env.add(o.env);
        self.max_jobs.add(o.max_jobs);
    }

    /// The shared settings, and the names of those that differ.
    fn resolve(&self) -> (StepOpts, Vec<&'static str>) {
        let mut mixed = Vec::new();
        fn pick<T: Clone + Default>(u: &Uni<T>, name: &'static str, mixed: &mut Vec<&'static str>) -> T {
            match u {
                Uni::Same(v) => v.clone(),
                Uni::Mixed => {
                    mixed.push(name);
                    T::default()
                }
                Uni::Empty => T::default(),
            }
        }
        let o = StepOpts {
            queue: pick(&self.queue, "queue", &mut mixed),
            account: pick(&self.account, "account", &mut mixed),
            qos: pick(&self.qos, "qos", &mut mixed),
            hosts: pick(&self.hosts, "hosts", &mut mixed),
            avoid_hosts: pick(&self.avoid_hosts, "avoid_hosts", &mut mixed),
            software: pick(&self.software, "software", &mut mixed),
            env: pick(&self.env, "env", &mut mixed),
            max_jobs: pick(&self.max_jobs, "max_jobs", &mut mixed),
        };
        (o, mixed)
    }
}

/// The settings of a job that become directives or cluster options.
fn job_opts(js: &JobSettings) -> StepOpts {
    StepOpts {
        queue: js.partition.clone(),
        account: js.account.clone(),
        qos: js.qos.clone(),
        hosts: js.hosts.clone(),
        avoid_hosts: js.avoid_hosts.clone(),
        software: js.software.clone(),
        env: js.env.clone(),
        max_jobs: js.max_jobs,
    }
}

/// What makes two jobs of a group need different processes: every setting that becomes a
/// directive or cluster option, except the resources (table columns) and the site (a
/// column for the scratch; the placement it implies is in the settings themselves).
fn variant_key(js: &JobSettings) -> String {
    let r = &js.resources;
    let mut codes = r.retry_unless_exit.clone();
    codes.sort_unstable();
    codes.dedup();
    format!(
        "{:?}|{}|{}|{:?}|{:?}|{:?}|{:?}|{:?}",
        job_opts(js),
        r.retries,
        fmt_f64(r.memory_growth),
        r.memory_growth_on,
        codes,
        r.on_failure,
        js.memory_cap,
        js.kind
    )
}

/// Per-job resources that may become table columns: memory MiB, cpus, walltime s, disk MiB.
type Res4 = (u64, i64, u64, u64);

fn mib(b: u64) -> u64 {
    b.div_ceil(1 << 20).max(1)
}

/// What a process cnode needs, aggregated over its jobs.
struct ProcInfo {
    res: Uni<Res4>,
    retries: i64,
    growth: f64,
    growth_on: GrowthOn,
    /// The memory cap (bytes) of the jobs (one value: processes are cut per variant).
    cap: Option<u64>,
    filter: BTreeSet<i64>,
    abort: bool,
    site: Uni<i64>,
    opts: OptsUni,
    /// Step names of the jobs (for comments and `{step}`).
    steps: BTreeSet<String>,
    kind: JobKind,
}

fn res4(r: &Resources) -> Res4 {
    (mib(r.memory), r.cpus.max(1), r.walltime.max(1), mib(r.disk))
}

fn site_index(ir: &Ir, step: Option<u32>) -> i64 {
    step.and_then(|s| ir.steps[s as usize].site.as_deref())
        .and_then(|name| ir.sites.iter().position(|x| x.name == name))
        .map(|i| i as i64)
        .unwrap_or(-1)
}

// ------------------------------------------------------------------ output

#[derive(serde::Serialize)]
struct ProcView {
    name: String,
    comments: Vec<String>,
    directives: Vec<String>,
    input: String,
    script: Vec<String>,
}

#[derive(serde::Serialize)]
struct OptView {
    name: String,
    value: String,
}

/// A value Nextflow's files cannot carry: E801.
fn invalid(msg: String) -> Diagnostic {
    Diagnostic::new("E801", format!("nextflow: {msg}"))
}

/// A value passed to the batch system in cluster options: no space, quote or separator.
fn option_value(v: &str, what: &str, step: &str) -> Result<String, Diagnostic> {
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:@+,=/%-".contains(&b)) {
        Ok(v.to_string())
    } else {
        Err(invalid(format!(
            "step `{step}`: {what} `{v}` cannot be passed to the batch system through Nextflow's clusterOptions \
             (allowed: letters, digits and ._:@+,=/%-)"
        )))
    }
}

fn is_env_name(k: &str) -> bool {
    let mut cs = k.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_') && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn notify_command(ir: &Ir, event: &str, step: &str, in_task: bool) -> Option<String> {
    use crate::ir::quote::{notify_shell, Fill};
    if !ir.notify.on.iter().any(|e| e == event) {
        return None;
    }
    let cmd = ir.notify.command.as_deref()?;
    Some(notify_shell(cmd, |name| {
        Some(match name {
            "campaign" => Fill::Text(&ir.campaign),
            "event" => Fill::Text(event),
            "step" => Fill::Text(step),
            "job" | "data_id" if in_task => Fill::Var("BPSC_NF_JOB"),
            "job" | "data_id" => Fill::Text(""),
            _ => return None,
        })
    }))
}

fn fmt_f64(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "1".into()
    }
}

/// Write the Nextflow submit directory.
/// Write the Nextflow submit directory.
pub fn write(ir: &Ir, out: &dyn Output) -> Result<Emitted, Diagnostic> {
    let g = crate::backend::groups(ir);
    crate::backend::alongside_common(ir, out, &g, &Default::default(), || {
        let plan = plan(ir, &g)?;
        out.mkdir(&format!("{TABLE_DIR}/nodes"))?;
        out.mkdir(&format!("{TABLE_DIR}/edges"))?;

        // Pass 1: what each process cnode shares.
        let mut infos: Vec<Option<ProcInfo>> = Vec::with_capacity(plan.cnodes.len());
        for cn in &plan.cnodes {
            if cn.kind != CKind::Process {
                infos.push(None);
                continue;
            }
            let kind = cn.jobs.first().map(|&j| ir.jobs[j as usize].kind).unwrap_or(JobKind::Compute);
            let mut info = ProcInfo {
                res: Uni::Empty,
                retries: 0,
                growth: 1.0,
                growth_on: GrowthOn::Oom,
                cap: None,
                filter: BTreeSet::new(),
                abort: false,
                site: Uni::Empty,
                opts: OptsUni::default(),
                steps: BTreeSet::new(),
                kind,
            };
            let mut last_settings: Option<u32> = None;
            for &j in &cn.jobs {
                let js = ir.settings_of(j);
                let r = &js.resources;
                info.res.add(res4(r));
                info.retries = info.retries.max(r.retries);
                info.growth = info.growth.max(r.memory_growth);
                info.growth_on = r.memory_growth_on;
                info.cap = js.memory_cap;
                info.filter.extend(r.retry_unless_exit.iter().copied());
                info.abort |= r.on_failure == OnFailure::Abort;
                let si = ir.jobs[j as usize].settings;
                if last_settings != Some(si) {
                    info.site.add(site_index(ir, js.step));
                    info.opts.add(job_opts(js));
                    last_settings = Some(si);
                }
                if kind == JobKind::Compute {
                    for m in ir.job_members(j) {
                        let st = &ir.steps[m.step as usize];
                        if !info.steps.contains(&st.name) {
                            info.steps.insert(st.name.clone());
                        }
                    }
                }
            }
            infos.push(Some(info));
        }

        // Node tables.
        for (ci, cn) in plan.cnodes.iter().enumerate() {
            let mut w = out.create(&format!("{TABLE_DIR}/nodes/{}.tsv", cn.name))?;
            let info = infos[ci].as_ref();
            let site_col = info.is_some_and(|i| i.site == Uni::Mixed);
            let res_col = info.is_some_and(|i| i.res == Uni::Mixed);
            for &j in &cn.jobs {
                write!(w, "{}\t{}\t{}", g.index_in_group[j as usize], ir.job_id(j), plan.indeg[j as usize])?;
                if site_col {
                    write!(w, "\t{}", site_index(ir, ir.settings_of(j).step))?;
                }
                if res_col {
                    let (m, c, t, d) = res4(&ir.settings_of(j).resources);
                    write!(w, "\t{m}\t{c}\t{t}\t{d}")?;
                }
                w.write_all(b"\n")?;
            }
            w.flush()?;
        }

        // Edge tables: edges sorted by (pair, parent, child), one file per pair.
        {
            let pair_id: BTreeMap<(u32, u32), u32> = plan.pairs.keys().enumerate().map(|(i, &k)| (k, i as u32)).collect();
            let names: Vec<(u32, u32)> = plan.pairs.keys().copied().collect();
            let mut tagged: Vec<(u32, u32, u32)> = Vec::with_capacity(ir.edges.len());
            for &(p, c) in &ir.edges {
                let key = (plan.cnode_of[p as usize], plan.cnode_of[c as usize]);
                if let Some(&id) = pair_id.get(&key) {
                    tagged.push((id, p, c));
                }
            }
            tagged.sort_unstable();
            let mut cur: Option<(u32, Box<dyn Write>)> = None;
            for (id, p, c) in tagged {
                if cur.as_ref().map(|x| x.0) != Some(id) {
                    if let Some((_, mut w)) = cur.take() {
                        w.flush()?;
                    }
                    let (a, b) = names[id as usize];
                    let path = format!("{TABLE_DIR}/edges/{}--{}.tsv", plan.cnodes[a as usize].name, plan.cnodes[b as usize].name);
                    cur = Some((id, out.create(&path)?));
                }
                if let Some((_, w)) = cur.as_mut() {
                    writeln!(w, "{}\t{}\t{}", g.index_in_group[p as usize], g.index_in_group[c as usize], plan.indeg[c as usize])?;
                }
            }
            if let Some((_, mut w)) = cur.take() {
                w.flush()?;
            }
        }

        // Processes.
        let slow = ir.notify.on.iter().any(|e| e == "slow") && ir.notify.slow_after.is_some();
        let mut procs: Vec<ProcView> = Vec::new();
        let mut slurm_opts: Vec<OptView> = Vec::new();
        let mut condor_opts: Vec<OptView> = Vec::new();
        let mut containers = false;
        for (ci, cn) in plan.cnodes.iter().enumerate() {
            let Some(info) = infos[ci].as_ref() else { continue };
            let gname = &g.names[cn.group as usize];
            let what = match info.kind {
                JobKind::Compute => {
                    let steps: Vec<&str> = info.steps.iter().map(|s| s.as_str()).collect();
                    format!("step{} {}", if steps.len() > 1 { "s" } else { "" }, steps.join(", "))
                }
                k => format!("inserted {} jobs", k.as_str()),
            };
            let mut comments = vec![comment(&format!(
                "task group `{gname}`{}: {what}, {} job{}",
                cn.part.map(|p| format!(" (layer {p})")).unwrap_or_default(),
                cn.jobs.len(),
                if cn.jobs.len() == 1 { "" } else { "s" }
            ))];
            let label = info.steps.iter().next().cloned().unwrap_or_else(|| gname.clone());
            let mut input = String::from("tuple val(k), val(id), val(n)");
            if info.site == Uni::Mixed {
                input.push_str(", val(site)");
            }
            let res_col = info.res == Uni::Mixed;
            if res_col {
                input.push_str(", val(mem), val(cpu), val(wt), val(dsk)");
            }
            let (mem, cpus, time, disk) = match info.res.same() {
                Some(&(m, c, t, d)) => (format!("{m}L"), c.to_string(), t.to_string(), d.to_string()),
                None => ("(mem as long)".into(), "cpu as int".into(), "wt".into(), "dsk".into()),
            };
            let mut d: Vec<String> = vec!["tag \"${id}\"".into()];
            d.push(if res_col { format!("cpus {{ {cpus} }}") } else { format!("cpus {cpus}") });
            if info.retries > 0 && info.growth > 1.0 {
                // Growth stops at the job's memory cap (MiB): the smaller of the step's and the
                // site's max_memory.
                let cap = info.cap.map(|c| c.div_ceil(1 << 20)).unwrap_or(0);
                let oom = info.growth_on == GrowthOn::Oom;
                d.push(format!("memory {{ \"${{bpscMemory(task, {mem}, {}d, {cap}L, {oom})}} MB\" }}", fmt_f64(info.growth)));
            } else if res_col {
                d.push("memory { \"${mem} MB\" }".into());
            } else if let Some(&(m, ..)) = info.res.same() {
                d.push(format!("memory '{m} MB'"));
            }
            d.push(if res_col { "time { \"${wt}s\" }".into() } else { format!("time '{time}s'") });
            d.push(if res_col { "disk { \"${dsk} MB\" }".into() } else { format!("disk '{disk} MB'") });
            let fin = if info.abort { "terminate" } else { "ignore" };
            d.push(format!("maxRetries {}", info.retries.max(0)));
            if info.retries <= 0 {
                d.push(format!("errorStrategy '{fin}'"));
            } else if info.filter.is_empty() {
                d.push(format!("errorStrategy {{ task.attempt <= {} ? 'retry' : '{fin}' }}", info.retries));
            } else {
                let codes: Vec<String> = info.filter.iter().map(|c| c.to_string()).collect();
                d.push(format!(
                    "errorStrategy {{ (task.exitStatus in [{}]) ? '{fin}' : (task.attempt <= {} ? 'retry' : '{fin}') }}",
                    codes.join(", "),
                    info.retries
                ));
            }
            let mut env_lines: Vec<String> = Vec::new();
            let (o, mixed) = info.opts.resolve();
            if !mixed.is_empty() {
                // Cannot happen: processes are cut per settings variant (see `plan`).
                return Err(internal(format!("process {}: {} differ between its jobs", cn.name, mixed.join(", "))));
            }
            let mut setup: Option<&str> = None;
            {
                if let Some(q) = &o.queue {
                    // Nextflow writes the queue into the job script's header: one safe word.
                    d.push(format!("queue {}", groovy_sq(&option_value(q, "queue", &label)?)));
                }
                if let Some(m) = o.max_jobs {
                    d.push(format!("maxForks {m}"));
                }
                match &o.software {
                    Some(Software::Container(img)) => {
                        d.push(format!("container {}", groovy_sq(&option_value(img, "container image", &label)?)));
                        // The task runs inside the image (apptainer, enabled in nextflow.config):
                        // the submit directory and the job's scratch must be there too, since
                        // Nextflow mounts only the task's work directory and its input files.
                        let site_expr = match &info.site {
                            Uni::Same(s) => s.to_string(),
                            Uni::Mixed => "site".into(),
                            Uni::Empty => "-1".into(),
                        };
                        d.push(format!("containerOptions {{ bpscBinds({site_expr}) }}"));
                        containers = true;
                    }
                    Some(Software::Setup(sh)) => setup = Some(sh.as_str()),
                    None => {}
                }
                for (k, v) in &o.env {
                    if !is_env_name(k) {
                        return Err(invalid(format!("step `{label}`: `{k}` is not a valid environment variable name")));
                    }
                    env_lines.push(format!("export {k}={}", sh_sq(v)));
                }
                let mut sl: Vec<String> = Vec::new();
                let mut co: Vec<String> = Vec::new();
                if let Some(a) = &o.account {
                    let a = option_value(a, "account", &label)?;
                    sl.push(format!("--account={a}"));
                    co.push(format!("accounting_group = {a}"));
                }
                if let Some(q) = &o.qos {
                    sl.push(format!("--qos={}", option_value(q, "qos", &label)?));
                }
                let hosts: Vec<String> = o.hosts.iter().map(|h| option_value(h, "host", &label)).collect::<Result<_, _>>()?;
                let avoid: Vec<String> = o.avoid_hosts.iter().map(|h| option_value(h, "host", &label)).collect::<Result<_, _>>()?;
                if hosts.len() == 1 {
                    sl.push(format!("--nodelist={}", hosts[0]));
                } else if hosts.len() > 1 {
                    comments.push(comment(&format!(
                        "hosts {}: Slurm has no `any of these nodes` option; the slurm profile leaves them out (W801)",
                        hosts.join(", ")
                    )));
                }
                if !avoid.is_empty() {
                    sl.push(format!("--exclude={}", avoid.join(",")));
                }
                // HTCondor's Machine is the fully qualified host name: a short name matches the
                // part before the first dot (the HTCondor backend's form).
                let mut req: Vec<String> = Vec::new();
                if !hosts.is_empty() {
                    req.push(classad_hosts(&hosts));
                }
                if !avoid.is_empty() {
                    req.push(format!("!{}", classad_hosts(&avoid)));
                }
                if !req.is_empty() {
                    co.push(format!("requirements = {}", req.join(" && ")));
                }
                if !sl.is_empty() {
                    slurm_opts.push(OptView { name: cn.name.clone(), value: groovy_sq(&sl.join(" ")) });
                }
                if !co.is_empty() {
                    condor_opts.push(OptView { name: cn.name.clone(), value: groovy_sq(&co.join("; ")) });
                }
            }
            // The script: GString text; only ${...} below are Groovy expressions.
            let site_expr = match &info.site {
                Uni::Same(s) => s.to_string(),
                Uni::Mixed => "site".into(),
                Uni::Empty => "-1".into(),
            };
            let mut script: Vec<String> = Vec::new();
            // The job sees exactly its environment (LANGUAGE.md 4, "Environment"): the task
            // inherits Nextflow's (local executor: the launching shell's; slurm: sbatch's default
            // --export=ALL; condor: `getenv = true` in CondorExecutor), so the script keeps only
            // the identity and the batch system's variables, then sets the job's own.
            script.push(format!(
                "bpsc_bin=\\$(command -v ${{shq(params.bpsc)}}) || {{ echo \"bpsc: ${{params.bpsc}} not found\" >&2; exit 127; }}"
            ));
            script.push(gstring_lit(&format!(
                "for bpsc_v in $(compgen -e); do case $bpsc_v in {KEEP_ENV}) ;; *) unset \"$bpsc_v\" 2>/dev/null || true ;; esac; done"
            )));
            script.push(gstring_lit(&format!("export PATH={DEFAULT_PATH}")));
            script.push(format!("${{bpscScratch({site_expr})}}"));
            for l in &env_lines {
                script.push(gstring_lit(l));
            }
            if let Some(sh) = setup {
                // software = setup(...): after the environment is set, as on every engine.
                script.push(gstring_lit("set +u"));
                script.push(gstring_lit(&format!("{{ {sh}\n}} || echo \"bpsc: software setup exited with $?\" >&2")));
                script.push(gstring_lit("set -u"));
            }
            let wrap = format!("\"\\$bpsc_bin\" wrap ${{shq(params.submit)}} --group {} --index ${{k as long}}", sh_sq(gname));
            let slow_cmd = if slow && info.kind == JobKind::Compute { notify_command(ir, "slow", &label, true) } else { None };
            match (slow_cmd, ir.notify.slow_after) {
                (Some(cmd), Some(after)) => {
                    script.push("export BPSC_NF_JOB=${shq(id)}".into());
                    script.push(gstring_lit(&format!(
                        "( trap 'kill $! 2>/dev/null; exit 0' TERM; sleep {after} & wait $!; {cmd} ) >/dev/null 2>&1 &"
                    )));
                    script.push(gstring_lit("bpsc_watchdog=$!"));
                    script.push(gstring_lit("bpsc_rc=0"));
                    script.push(format!("{wrap} || bpsc_rc=\\$?"));
                    script.push(gstring_lit("kill $bpsc_watchdog 2>/dev/null || true"));
                    script.push(gstring_lit("exit $bpsc_rc"));
                }
                _ => script.push(format!("exec {wrap}")),
            }
            // A setup script may span lines: one script line per text line.
            let script: Vec<String> = script.iter().flat_map(|l| l.split('\n').map(str::to_string).collect::<Vec<_>>()).collect();
            procs.push(ProcView { name: cn.name.clone(), comments, directives: d, input, script });
        }

        // Workflow wiring, in topological order.
        let mut parents_of: BTreeMap<u32, Vec<(u32, u32)>> = BTreeMap::new();
        for (&(a, b), &(_, max_out)) in &plan.pairs {
            parents_of.entry(b).or_default().push((a, max_out));
        }
        let mut wiring: Vec<String> = Vec::new();
        let mut joins = 0usize;
        for &c in &plan.order {
            let cn = &plan.cnodes[c as usize];
            let name = &cn.name;
            let (mut roots, mut others, mut grouped) = (false, false, false);
            for &j in &cn.jobs {
                let k = plan.indeg[j as usize];
                roots |= k == 0;
                others |= k > 0;
                grouped |= k > 1;
            }
            wiring.push(String::new());
            wiring.push(format!(
                "// {name}: {} job{}{}",
                cn.jobs.len(),
                if cn.jobs.len() == 1 { "" } else { "s" },
                if cn.kind == CKind::Join { " (join nodes: no task)" } else { "" }
            ));
            wiring.push(format!("def nodes_{name} = bpscTable('nodes/{name}')"));
            let parents = parents_of.get(&c).cloned().unwrap_or_default();
            if parents.is_empty() {
                wiring.push(format!("def in_{name} = nodes_{name}"));
            } else {
                let mut evs: Vec<String> = Vec::new();
                for (p, max_out) in &parents {
                    let pn = &plan.cnodes[*p as usize].name;
                    evs.push(if *max_out <= 1 {
                        format!("done_{pn}.join(bpscTable('edges/{pn}--{name}'))")
                    } else {
                        format!("bpscTable('edges/{pn}--{name}').combine(done_{pn}, by: 0)")
                    });
                }
                let ev = if evs.len() == 1 { evs.remove(0) } else { format!("{}.mix({})", evs[0], evs[1..].join(", ")) };
                wiring.push(format!("def ev_{name} = {ev}"));
                if grouped {
                    wiring.push(format!(
                    "def ready_{name} = ev_{name}.map {{ r -> [groupKey(r[1], r[2] as int), r[0]] }}.groupTuple().map {{ r -> r[0].toString() }}"
                ));
                } else {
                    wiring.push(format!("def ready_{name} = ev_{name}.map {{ r -> r[1] }}"));
                }
                if roots {
                    wiring.push(format!(
                    "def in_{name} = nodes_{name}.filter {{ r -> r[2] == '0' }}.mix(nodes_{name}.filter {{ r -> r[2] != '0' }}.join(ready_{name}))"
                ));
                } else if others {
                    wiring.push(format!("def in_{name} = nodes_{name}.join(ready_{name})"));
                }
            }
            match cn.kind {
                CKind::Process => {
                    wiring.push(format!("{name}(in_{name})"));
                    wiring.push(format!("def done_{name} = {name}.out.done"));
                }
                CKind::Join => {
                    joins += 1;
                    wiring.push(format!("def done_{name} = in_{name}.map {{ r -> r[0] }}"));
                }
            }
        }
        if wiring.first().is_some_and(|l| l.is_empty()) {
            wiring.remove(0);
        }

        // Site scratch directories as shell words.
        let site_scratch: Vec<String> = ir
            .sites
            .iter()
            .map(|s| match &s.scratch {
                Some(t) => {
                    let (campaign, site) = (ir.campaign.clone(), s.name.clone());
                    groovy_sq(&render_path_word(t, &move |n: &str| match n {
                        "user" => Some(PhVal::Env("USER")),
                        "campaign" => Some(PhVal::Text(campaign.clone())),
                        "site" => Some(PhVal::Text(site.clone())),
                        _ => None,
                    }))
                }
                None => "null".into(),
            })
            .collect();

        // The same directories as Groovy expressions for the driver (container binds).
        let site_paths: Vec<String> = ir
            .sites
            .iter()
            .map(|s| match &s.scratch {
                Some(t) => groovy_path(t, &ir.campaign, &s.name),
                None => "null".into(),
            })
            .collect();
        // The provenance job's own environment (that of the user's final job it runs, when
        // there is one: the campaign's `final` settings).
        let final_env: Vec<String> = ir
            .final_job
            .as_ref()
            .map(|f| f.settings.env.iter().filter(|(k, _)| is_env_name(k)).map(|(k, v)| groovy_sq(&format!("{k}={v}"))).collect())
            .unwrap_or_default();
        let provenance = g.names.iter().position(|n| n == "provenance").map(|_| groovy_sq("provenance"));
        let notify_done = notify_command(ir, "done", "", false).map(|c| groovy_sq(&c));
        let notify_failure = notify_command(ir, "failure", "", false).map(|c| groovy_sq(&c));
        let tasks: usize = plan.cnodes.iter().filter(|c| c.kind == CKind::Process).map(|c| c.jobs.len()).sum();

        let profile = default_profile(ir);
        let templates = Templates::new(&TEMPLATES)?;
        let main = templates.render(
            "main.nf",
            minijinja::context! {
                version => env!("CARGO_PKG_VERSION"),
                campaign => comment(&ir.campaign),
                jobs => ir.jobs.len(),
                tasks => tasks,
                edges => ir.edges.len(),
                joins => joins,
                processes => procs,
                wiring => wiring,
                site_scratch => site_scratch,
                site_paths => site_paths,
                oom_exits => OOM_EXITS.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", "),
                default_path => DEFAULT_PATH,
                final_env => final_env,
                local_limits => true,
                provenance => provenance,
                notify_done => notify_done,
                notify_failure => notify_failure,
            },
        )?;
        out.write("main.nf", main.as_bytes())?;
        let config = templates.render(
            "nextflow.config",
            minijinja::context! {
                version => env!("CARGO_PKG_VERSION"),
                campaign => comment(&ir.campaign),
                profile => profile,
                manifest_name => groovy_sq(&format!("bpsc-{}", ir.campaign)),
                slurm => slurm_opts,
                condor => condor_opts,
                containers => containers,
            },
        )?;
        out.write("nextflow.config", config.as_bytes())?;

        let kept = |k: JobKind| k != JobKind::Join;
        Ok(Emitted {
            groups: g.counts(),
            submit_command: format!("nextflow run main.nf -profile {profile}"),
            engine_jobs: crate::backend::kind_counts(ir, kept),
            engine_edges: ir.edges.len() as u64,
        })
    })
}

/// The profile that matches the campaign's sites: condor when they all use HTCondor,
/// slurm when any uses Slurm, else local.
pub fn default_profile(ir: &Ir) -> &'static str {
    let used: BTreeSet<&str> = ir.steps.iter().filter_map(|s| s.site.as_deref()).collect();
    let backends: BTreeSet<&str> =
        ir.sites.iter().filter(|s| used.contains(s.name.as_str())).filter_map(|s| s.backend.as_deref()).collect();
    if backends.contains("slurm") {
        "slurm"
    } else if !backends.is_empty() && backends.iter().all(|b| *b == "htcondor") {
        "condor"
    } else {
        "local"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groovy_single_quotes_escape_everything() {
        assert_eq!(groovy_sq("a'b\\c\n$x"), "'a\\'b\\\\c\\n$x'");
        assert_eq!(gstring_lit("a\"$b\\"), "a\\\"\\$b\\\\");
    }

    #[test]
    fn templates_split_into_parts() {
        assert_eq!(template_parts("a {{b}} {c} {d"), vec![TPart::Lit("a {b} ".into()), TPart::Ph("c".into()), TPart::Lit(" {d".into())]);
        let p = render_path_word("/scratch/{user}/x y/{campaign}", &|n: &str| match n {
            "user" => Some(PhVal::Env("USER")),
            "campaign" => Some(PhVal::Text("c'1".into())),
            _ => None,
        });
        assert_eq!(p, "/scratch/\"${USER:-$(id -un)}\"'/x y/''c'\\''1'");
    }

    #[test]
    fn scc_finds_cycles() {
        let adj = vec![vec![1], vec![2], vec![0, 3], vec![]];
        let c = scc(4, &adj);
        assert_eq!(c[0], c[1]);
        assert_eq!(c[1], c[2]);
        assert_ne!(c[2], c[3]);
    }
}
