//! HTCondor DAGMan backend: one DAG file, one submit description per task group, a DAGMan
//! configuration file, a job launcher and a POST script.
//!
//! ```text
//! SUBMIT/
//!   workflow.dag              JOB/VARS/RETRY/PRIORITY/CATEGORY/SCRIPT PRE/POST per node,
//!                             PARENT/CHILD per parent, FINAL provenance node (streamed)
//!   htcondor/GROUP.sub        one submit description per task group (step, cluster, inserted kind)
//!   htcondor/noop.sub         named by the NOOP join nodes (never submitted)
//!   htcondor/dagman.config    DAGMan throttles (CONFIG)
//!   htcondor/bpsc-job.sh      job launcher: software setup, then `bpsc wrap`
//!   htcondor/bpsc-post.sh     POST script: multi-code retry_unless_exit, on_failure = abort (halt), final status, notify
//!   htcondor/bpsc-pre.sh      PRE script of sandboxed nodes: their next attempt number (htcondor/attempt/)
//!   + the common contract (bpsc.json, tasks/, provenance/, logs/)
//! ```
//!
//! The mapping of every language feature, the limits and how to validate for real are in
//! `backends/htcondor/README.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use crate::backend::templates::{TemplateSet, Templates};
use crate::backend::{Emitted, Groups, Output};
use crate::diag::Diagnostic;
use crate::ir::{Ir, JobKind, JobSettings, OnFailure, Resources, Software, Unexpected};

/// The DAG file, relative to the submit directory.
pub const DAG_FILE: &str = "workflow.dag";
/// Jobs per task-table shard for groups that run without a shared filesystem: each such job
/// transfers its shard, so a shard stays around a megabyte whatever the campaign size.
pub const SHARD: usize = 1000;
/// POST-script exit statuses the DAG lines key on (see templates/htcondor/bpsc-post.sh.j2).
pub const POST_NO_RETRY: i32 = 2;
/// Default DAGMan throttles written to htcondor/dagman.config.
pub const MAX_JOBS_IDLE: u64 = 1000;
pub const MAX_JOBS_SUBMITTED: u64 = 10000;
/// DAGMan's node-log scan interval (seconds) and node jobs submitted per scan (see
/// templates/htcondor/dagman.config.j2 for the reasons).
pub const SCAN_INTERVAL: u64 = 1;
pub const SUBMITS_PER_INTERVAL: u64 = 100;
/// Where the PRE script of a sandboxed node writes its next attempt number (one file a node).
pub const ATTEMPT_DIR: &str = "htcondor/attempt";
/// Children per PARENT … CHILD line.
const CHILDREN_PER_LINE: usize = 64;
/// Node names DAGMan reserves (case-insensitively): they would be read as keywords.
pub const RESERVED_NODE_NAMES: &[&str] = &["PARENT", "CHILD", "ALL_NODES"];

/// A value the HTCondor files cannot carry: E801.
fn invalid(msg: String) -> Diagnostic {
    Diagnostic::new("E801", format!("htcondor: {msg}"))
}

/// The templates of the HTCondor files.
pub const TEMPLATES: TemplateSet = TemplateSet {
    templates: &[
        ("submit", include_str!("../../../templates/htcondor/submit.sub.j2")),
        ("noop", include_str!("../../../templates/htcondor/noop.sub.j2")),
        ("config", include_str!("../../../templates/htcondor/dagman.config.j2")),
        ("job", include_str!("../../../templates/htcondor/bpsc-job.sh.j2")),
        ("post", include_str!("../../../templates/htcondor/bpsc-post.sh.j2")),
        ("pre", include_str!("../../../templates/htcondor/bpsc-pre.sh.j2")),
    ],
    filters: &[],
};

// ------------------------------------------------------------------ quoting

/// Refuse text that cannot be written into a one-line submit or DAG value.
fn no_control(s: &str, what: &str) -> Result<(), Diagnostic> {
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(invalid(format!("{what} {s:?} contains the control character {c:?}, which an HTCondor submit file cannot hold")));
    }
    Ok(())
}

/// A literal for a submit-file value: `$` would start a macro, so it becomes `$(DOLLAR)`.
pub fn submit_literal(s: &str) -> String {
    s.replace('$', "$(DOLLAR)")
}

/// A ClassAd string literal, quotes included, ready for a submit file: `\` and `"` are
/// escaped for the ClassAd parser, control characters become octal escapes, `$` becomes
/// `$(DOLLAR)` for the submit-macro expander.
pub fn classad_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '$' => out.push_str("$(DOLLAR)"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\{:03o}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One word of a new-syntax `arguments`/`environment` value (inside its double quotes):
/// wrapped in single quotes, `'` doubled, `"` doubled, `$` escaped.
pub fn quoted_word(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '"' => out.push_str("\"\""),
            '$' => out.push_str("$(DOLLAR)"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A VARS value, quotes included (DAGMan: `\"` and `\\`).  Only bpsc's own tokens go there
/// (task-group names, indices, numbers); data ID values never do.
pub fn vars_value(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Is `name` usable as a DAGMan node name as it is?
pub fn node_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !RESERVED_NODE_NAMES.iter().any(|r| r.eq_ignore_ascii_case(name))
}

/// DAG node names: the IR job ids (`[A-Za-z0-9_-]+`), except that a reserved word gets a
/// leading `_`.  Fails if that would collide with another id.
pub fn node_names(ir: &Ir) -> Result<Vec<String>, Diagnostic> {
    let mut names: Vec<String> = (0..ir.jobs.len() as u32).map(|j| ir.job_id(j)).collect();
    let renamed: Vec<usize> = (0..names.len()).filter(|&i| RESERVED_NODE_NAMES.iter().any(|r| r.eq_ignore_ascii_case(&names[i]))).collect();
    if !renamed.is_empty() {
        let taken: std::collections::HashSet<String> = names.iter().cloned().collect();
        for i in renamed {
            let n = format!("_{}", names[i]);
            if taken.contains(&n) {
                return Err(invalid(format!("job id `{}` is a DAGMan keyword and `{n}` is taken by another job", names[i])));
            }
            names[i] = n;
        }
    }
    for n in &names {
        if !node_name_ok(n) {
            return Err(invalid(format!("job id `{n}` is not a valid DAGMan node name")));
        }
    }
    Ok(names)
}

/// Expand a site scratch template for the job environment: `{user}` becomes `$ENV(USER)`
/// (the submitting user, expanded when DAGMan submits), `{campaign}` and `{site}` their values.
fn scratch_value(t: &str, campaign: &str, site: &str) -> String {
    let mut out = String::new();
    let mut rest = t;
    while let Some(p) = rest.find(['{', '}']) {
        out.push_str(&submit_literal(&rest[..p]));
        let r = &rest[p..];
        if r.starts_with("{{") || r.starts_with("}}") {
            out.push_str(&r[..1]);
            rest = &r[2..];
            continue;
        }
        if r.starts_with('{') {
            if let Some(end) = r.find('}') {
                match &r[1..end] {
                    "user" => out.push_str("$ENV(USER)"),
                    "campaign" => out.push_str(&submit_literal(campaign)),
                    "site" => out.push_str(&submit_literal(site)),
                    other => out.push_str(&submit_literal(&format!("{{{other}}}"))),
                }
                rest = &r[end + 1..];
                continue;
            }
        }
        out.push_str(&r[..1]);
        rest = &r[1..];
    }
    out.push_str(&submit_literal(rest));
    out
}

// ------------------------------------------------------------------ plan

/// What a submit description is for.
#[derive(Debug, Clone)]
pub struct SubFile {
    /// File stem: `htcondor/NAME.sub`.
    pub name: String,
    /// Its common task group (step, cluster or inserted kind): the DAGMan category of its
    /// nodes when the step or cluster has `max_running`, across sites.
    pub base: u32,
    pub kind: JobKind,
    pub site: Option<String>,
    /// HTCondor file transfer instead of the shared filesystem.
    pub transfer: bool,
    /// Its nodes' task groups are shards (`NAME.sK`).
    pub sharded: bool,
    /// The job settings (env, hosts, account, software) of its jobs (the first job's; jobs
    /// of one submit file share their governing step).  `None` for the provenance job, which
    /// runs on the access point.
    pub settings: Option<u32>,
    pub jobs: Vec<u32>,
}

/// Task groups and submit files.
#[derive(Debug, Clone)]
pub struct Plan {
    pub groups: Groups,
    /// Names of the common task groups ([`SubFile::base`]).
    pub base_names: Vec<String>,
    pub subs: Vec<SubFile>,
    /// Submit file of each job (`u32::MAX` for join nodes).
    pub sub_of: Vec<u32>,
}

fn site_shared(ir: &Ir, site: Option<&str>) -> bool {
    site.and_then(|s| ir.sites.iter().find(|x| x.name == s)).is_none_or(|s| s.shared_fs)
}

/// Group jobs into task groups and submit files: the common groups (per step, cluster or
/// inserted kind), split by site when a group spans sites, and into shards of [`SHARD`] jobs
/// when its jobs run without a shared filesystem.
pub fn plan(ir: &Ir) -> Plan {
    let base = crate::backend::groups(ir);
    let n = ir.jobs.len();
    // The provenance job runs on the access point (local universe); joins are NOOP nodes.
    let site_of = |j: usize| -> Option<String> {
        match ir.jobs[j].kind {
            JobKind::Join | JobKind::Provenance => None,
            _ => ir.settings_of(j as u32).site.clone(),
        }
    };
    // Sites of each base group.
    let mut sites_in: Vec<BTreeSet<Option<String>>> = vec![BTreeSet::new(); base.names.len()];
    for j in 0..n {
        sites_in[base.group_of[j] as usize].insert(site_of(j));
    }
    let mut sub_index: BTreeMap<(u32, Option<String>), u32> = BTreeMap::new();
    let mut subs: Vec<SubFile> = Vec::new();
    let mut sub_of = vec![u32::MAX; n];
    for j in 0..n {
        let job = &ir.jobs[j];
        if job.kind == JobKind::Join {
            continue;
        }
        let g = base.group_of[j];
        let site = site_of(j);
        let key = (g, if sites_in[g as usize].len() > 1 { site.clone() } else { None });
        let s = *sub_index.entry(key.clone()).or_insert_with(|| {
            let name = match &key.1 {
                Some(site) => format!("{}.{}", base.names[g as usize], crate::ir::naming::sanitize(site)),
                None => base.names[g as usize].clone(),
            };
            let transfer = match job.kind {
                JobKind::Provenance | JobKind::Join => false,
                JobKind::Compute => {
                    !site_shared(ir, site.as_deref()) || matches!(ir.settings_of(j as u32).software, Some(Software::Container(_)))
                }
                _ => !site_shared(ir, site.as_deref()),
            };
            let settings = (job.kind != JobKind::Provenance).then_some(job.settings);
            subs.push(SubFile { name, base: g, kind: job.kind, site: site.clone(), transfer, sharded: false, settings, jobs: Vec::new() });
            subs.len() as u32 - 1
        });
        subs[s as usize].jobs.push(j as u32);
        sub_of[j] = s;
    }
    for s in &mut subs {
        s.sharded = s.transfer && s.jobs.len() > SHARD;
    }
    // Task groups: one per submit file (or per shard); join jobs keep their common group.
    let mut names: Vec<String> = Vec::new();
    // Task group of each (submit file or base group, shard); u32::MAX marks a base group.
    let mut gindex: std::collections::HashMap<(u32, u32, usize), u32> = std::collections::HashMap::new();
    let mut group_of = vec![0u32; n];
    let mut index_in_group = vec![0u32; n];
    let mut members: Vec<Vec<u32>> = Vec::new();
    let mut pos_in_sub = vec![0usize; subs.len()];
    for j in 0..n {
        let key = match sub_of[j] {
            u32::MAX => (u32::MAX, base.group_of[j], 0),
            s => {
                let p = pos_in_sub[s as usize];
                pos_in_sub[s as usize] += 1;
                (s, 0, if subs[s as usize].sharded { p / SHARD } else { 0 })
            }
        };
        let g = *gindex.entry(key).or_insert_with(|| {
            names.push(match key {
                (u32::MAX, bg, _) => base.names[bg as usize].clone(),
                (s, _, k) if subs[s as usize].sharded => format!("{}.s{k}", subs[s as usize].name),
                (s, _, _) => subs[s as usize].name.clone(),
            });
            members.push(Vec::new());
            names.len() as u32 - 1
        });
        group_of[j] = g;
        index_in_group[j] = members[g as usize].len() as u32;
        members[g as usize].push(j as u32);
    }
    Plan { groups: Groups { names, group_of, index_in_group, members }, base_names: base.names.clone(), subs, sub_of }
}

// ------------------------------------------------------------------ submit files

fn mib(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 20).max(1)
}

fn kib(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 10).max(1)
}

fn growth_text(g: f64) -> String {
    let s = format!("{g}");
    if s.contains('.') || s.contains('e') {
        s
    } else {
        format!("{s}.0")
    }
}

/// `(member(toLower(Machine), {…}) || member(toLower(split(Machine, ".")[0]), {…}))`: a host
/// given by full or short name.
fn hosts_expr(hosts: &[String]) -> String {
    let list = hosts.iter().map(|h| classad_str(&h.to_lowercase())).collect::<Vec<_>>().join(", ");
    format!("(member(toLower(Machine), {{{list}}}) || member(toLower(split(Machine, \".\")[0]), {{{list}}}))")
}

fn requirements(sf: &SubFile, js: Option<&JobSettings>) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(site) = &sf.site {
        let s = classad_str(site);
        parts.push(format!("(TARGET.BpscSite =?= undefined || TARGET.BpscSite == {s})"));
    }
    if let Some(js) = js {
        if !js.hosts.is_empty() {
            parts.push(hosts_expr(&js.hosts));
        }
        if !js.avoid_hosts.is_empty() {
            parts.push(format!("!{}", hosts_expr(&js.avoid_hosts)));
        }
    }
    parts.join(" && ")
}

struct Ctx<'a> {
    ir: &'a Ir,
    templates: Templates,
    exe: String,
    version: &'static str,
    campaign_comment: String,
}

fn render(ctx: &Ctx, name: &str, vars: minijinja::Value) -> Result<String, Diagnostic> {
    ctx.templates.render(name, vars)
}

/// A variable name an HTCondor `environment` (and a POST script's `export`) can carry.
fn env_name_ok(k: &str) -> bool {
    !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') && !k.as_bytes()[0].is_ascii_digit()
}

/// The campaign's environment of a job (`env { }` and the `pass_env` values captured at
/// compile time, [`JobSettings::env`]), checked for what a submit file can carry.
fn checked_env(env: &[(String, String)]) -> Result<(), Diagnostic> {
    for (k, v) in env {
        if !env_name_ok(k) {
            return Err(invalid(format!("environment variable name {k:?} cannot be passed to an HTCondor job")));
        }
        no_control(v, &format!("env {k}"))?;
    }
    Ok(())
}

/// The environment of the provenance job (the FINAL node): the user's final job runs in it,
/// so it is the final job's environment when there is one, else the provenance job's own.
fn provenance_env(ir: &Ir) -> &[(String, String)] {
    match &ir.final_job {
        Some(f) => &f.settings.env,
        None => ir.jobs.iter().position(|j| j.kind == JobKind::Provenance).map(|j| ir.settings_of(j as u32).env.as_slice()).unwrap_or(&[]),
    }
}

/// The `environment` of a submit file: exactly the campaign's environment of its jobs
/// ([`JobSettings::env`]) and what bpsc itself needs (scratch, software).  Nothing else
/// reaches the job: there is no `getenv`.  (HTCondor adds its own: `_CONDOR_*` such as
/// `_CONDOR_JOB_AD`, where the wrapper reads the job's ClusterId.ProcId, `TMPDIR` and the
/// thread-count variables sized to `request_cpus`.)
fn env_entries(sf: &SubFile, js: Option<&JobSettings>, ir: &Ir) -> Result<String, Diagnostic> {
    let mut entries: Vec<(String, String)> = Vec::new();
    // BPSC_SCRATCH: the site's scratch; without one the wrapper uses SUBMIT/scratch.
    if let Some(site) = sf.site.as_deref().and_then(|s| ir.sites.iter().find(|x| x.name == s)) {
        if let Some(t) = &site.scratch {
            no_control(t, "scratch")?;
            entries.push((
                "BPSC_SCRATCH".into(),
                format!("'{}'", scratch_value(t, &ir.campaign, &site.name).replace('\'', "''").replace('"', "\"\"")),
            ));
        }
    }
    let env: &[(String, String)] = if sf.kind == JobKind::Provenance {
        // The FINAL node: the wrapper gathers the records, then runs the user's final job in
        // this job, so it gets the final job's software setup (sourced by the launcher; a
        // setup that fails must not stop the gathering: optional here) and environment.
        if let Some(f) = &ir.final_job {
            match &f.settings.software {
                Some(Software::Setup(s)) => {
                    no_control(s, "software setup")?;
                    entries.push(("BPSC_SETUP".into(), quoted_word(s)));
                    entries.push(("BPSC_SETUP_OPTIONAL".into(), "'1'".into()));
                    entries.push(("BPSC_SOFTWARE".into(), quoted_word(&format!("setup:{s}"))));
                }
                Some(Software::Container(c)) => {
                    return Err(invalid(format!(
                        "the final job `{}` runs in DAGMan's FINAL node on the access point (local universe), which cannot run \
                         its container {c:?} (the campaign's software); give the campaign `software = setup(...)`, set the \
                         container on its steps instead, or drop the final job",
                        f.spec.name
                    )));
                }
                None => {}
            }
        }
        provenance_env(ir)
    } else {
        match js.and_then(|js| js.software.as_ref()) {
            Some(Software::Setup(s)) => {
                no_control(s, "software setup")?;
                entries.push(("BPSC_SETUP".into(), quoted_word(s)));
                entries.push(("BPSC_SOFTWARE".into(), quoted_word(&format!("setup:{s}"))));
            }
            Some(Software::Container(c)) => {
                entries.push(("BPSC_SOFTWARE".into(), quoted_word(&format!("container:{c}"))));
            }
            None => {}
        }
        js.map(|js| js.env.as_slice()).unwrap_or(&[])
    };
    checked_env(env)?;
    for (k, v) in env {
        entries.retain(|(e, _)| e != k);
        entries.push((k.clone(), quoted_word(v)));
    }
    Ok(entries.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "))
}

/// `export NAME='value'` lines of the provenance job's environment, for the FINAL node's POST
/// script (notify), which runs in DAGMan's environment.
fn notify_env(ir: &Ir) -> Result<Vec<String>, Diagnostic> {
    let env = provenance_env(ir);
    checked_env(env)?;
    Ok(env.iter().map(|(k, v)| format!("{k}='{}'; export {k}", v.replace('\'', "'\\''"))).collect())
}

fn write_submit(ctx: &Ctx, out: &dyn Output, sf: &SubFile, default: &Resources) -> Result<(), Diagnostic> {
    let ir = ctx.ir;
    let js = sf.settings.map(|i| &ir.job_settings[i as usize]);
    let local = sf.kind == JobKind::Provenance;
    let container = match js.and_then(|s| s.software.as_ref()) {
        Some(Software::Container(img)) => {
            no_control(img, "container image")?;
            if img.chars().any(char::is_whitespace) || img.contains(',') {
                return Err(invalid(format!("container image {img:?} contains a space or comma")));
            }
            let img = if img.contains("://") || img.starts_with('/') || img.starts_with("./") {
                img.to_string()
            } else {
                format!("docker://{img}")
            };
            Some(submit_literal(&img))
        }
        _ => None,
    };
    let mut attrs: Vec<(String, String)> = vec![("My.BpscCampaign".into(), classad_str(&ir.campaign))];
    if let Some(site) = &sf.site {
        attrs.push(("My.BpscSite".into(), classad_str(site)));
    }
    let mut accounting_group = None;
    if let Some(acct) = js.and_then(|s| s.account.as_deref()) {
        no_control(acct, "account")?;
        if acct.chars().any(char::is_whitespace) {
            return Err(invalid(format!("account {acct:?} contains white space, which accounting_group cannot hold")));
        }
        accounting_group = Some(submit_literal(acct));
        attrs.push(("My.ProjectName".into(), classad_str(acct)));
    }
    let (exe_arg, exe_transfer) = if sf.transfer {
        let base = Path::new(&ctx.exe).file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "bpsc".into());
        (quoted_word(&format!("./{base}")), submit_literal(&ctx.exe))
    } else {
        (quoted_word(&ctx.exe), String::new())
    };
    let growth = if !local && default.grows() { Some(growth_text(default.memory_growth)) } else { None };
    // Memory growth stops at the job's memory cap: the smaller of the step's and the site's
    // max_memory (MiB, rounded down: never more than allowed).
    let memory_cap_mb = js.and_then(|s| s.memory_cap).map(|m| (m >> 20).max(mib(default.memory)));
    // Files an attempt leaves besides its outputs come back with the records (unexpected = keep).
    let unexpected = sf.transfer && sf.jobs.iter().any(|&j| ir.settings_of(j).unexpected == Unexpected::Keep);
    let reqs = if local { String::new() } else { requirements(sf, js) };
    let text = render(
        ctx,
        "submit",
        minijinja::context! {
            version => ctx.version,
            campaign_comment => ctx.campaign_comment,
            name => sf.name,
            kind => sf.kind.as_str(),
            site => sf.site,
            njobs => sf.jobs.len(),
            sharded => sf.sharded,
            universe => if local { "local" } else { "vanilla" },
            container => container,
            exe_arg => exe_arg,
            memory_cap_mb => memory_cap_mb,
            exe_transfer => exe_transfer,
            transfer => sf.transfer,
            cpus => default.cpus.max(1),
            memory_mb => mib(default.memory),
            growth => growth,
            growth_on => default.memory_growth_on.as_str(),
            retries => default.retries.max(0),
            unexpected => unexpected,
            disk_kb => kib(default.disk),
            walltime => default.walltime.max(1),
            requirements => reqs,
            accounting_group => accounting_group,
            attrs => attrs,
            environment => env_entries(sf, js, ir)?,
        },
    )?;
    out.write(&format!("htcondor/{}.sub", sf.name), text.as_bytes())?;
    Ok(())
}

/// The notify command, `{campaign}` and `{event}` substituted with the quoting their place
/// in the shell text needs (`{step}`, `{job}` and `{data_id}` are empty at the DAG's level),
/// as one single-quoted shell word.
fn notify_command(ir: &Ir) -> Option<String> {
    use crate::ir::quote::{notify_shell, Fill};
    let cmd = ir.notify.command.as_deref()?;
    let out = notify_shell(cmd, |name| {
        Some(match name {
            "campaign" => Fill::Text(&ir.campaign),
            "event" => Fill::Var("BPSC_EVENT"),
            "step" | "job" | "data_id" => Fill::Text(""),
            _ => return None,
        })
    });
    Some(format!("'{}'", out.replace('\'', "'\\''")))
}

// ------------------------------------------------------------------ the DAG

/// The RETRY arguments of a node with resources `r` (empty: no retries): the count, and the
/// exit status that is not retried (a POST script maps several codes, and `abort`, to one).
fn retry_spec(r: &Resources) -> String {
    if r.retries <= 0 {
        return String::new();
    }
    let post = r.on_failure == OnFailure::Abort || r.retry_unless_exit.len() > 1;
    match (post, r.retry_unless_exit.as_slice()) {
        (true, _) => format!("{} UNLESS-EXIT {POST_NO_RETRY}", r.retries),
        (false, [code]) => format!("{} UNLESS-EXIT {code}", r.retries),
        _ => r.retries.to_string(),
    }
}

/// Per-node VARS for values that differ from the submit file's defaults.
fn resource_vars(r: &Resources, d: &Resources, out: &mut String) {
    if mib(r.memory) != mib(d.memory) {
        out.push_str(&format!(" bpsc_m={}", vars_value(&mib(r.memory).to_string())));
    }
    if r.cpus.max(1) != d.cpus.max(1) {
        out.push_str(&format!(" bpsc_c={}", vars_value(&r.cpus.max(1).to_string())));
    }
    if kib(r.disk) != kib(d.disk) {
        out.push_str(&format!(" bpsc_d={}", vars_value(&kib(r.disk).to_string())));
    }
    if r.walltime.max(1) != d.walltime.max(1) {
        out.push_str(&format!(" bpsc_w={}", vars_value(&r.walltime.max(1).to_string())));
    }
}

fn write_dag(ctx: &Ctx, out: &dyn Output, p: &Plan, names: &[String], defaults: &[Resources]) -> Result<(), Diagnostic> {
    let ir = ctx.ir;
    let mut w = out.create_buffered(DAG_FILE, 1 << 20)?;
    let n = ir.jobs.len();
    writeln!(w, "# HTCondor DAGMan workflow written by bpsc {} for campaign {}", ctx.version, ctx.campaign_comment)?;
    writeln!(
        w,
        "# {} nodes ({} NOOP joins, 1 FINAL), {} edges; submit with: condor_submit_dag {DAG_FILE}",
        n,
        ir.jobs.iter().filter(|j| j.kind == JobKind::Join).count(),
        ir.edges.len()
    )?;
    writeln!(w, "CONFIG htcondor/dagman.config")?;
    writeln!(w, "NODE_STATUS_FILE {DAG_FILE}.status {}", if n > 50_000 { 600 } else { 60 })?;
    writeln!(w, "JOBSTATE_LOG {DAG_FILE}.jobstate.log")?;
    // Throttles (max_running): one category per step or cluster whose jobs carry a limit
    // (JobSettings::max_jobs: the smallest of the cluster's and its steps'), shared by the
    // submit files of all its sites, so the limit holds across them.
    let mut limit: BTreeMap<u32, i64> = BTreeMap::new();
    for sf in p.subs.iter().filter(|sf| sf.kind == JobKind::Compute) {
        for &j in &sf.jobs {
            if let Some(m) = ir.settings_of(j).max_jobs {
                let e = limit.entry(sf.base).or_insert(m);
                *e = (*e).min(m);
            }
        }
    }
    let category: Vec<Option<&str>> =
        p.subs.iter().map(|sf| limit.contains_key(&sf.base).then(|| p.base_names[sf.base as usize].as_str())).collect();
    for (b, m) in &limit {
        writeln!(w, "MAXJOBS {} {}", p.base_names[*b as usize], m.max(&1))?;
    }
    writeln!(w)?;
    // RETRY: the most common value of the node jobs is an ALL_NODES default, written after
    // every JOB line; only nodes that differ get a line of their own (DAGMan: "the last
    // relevant command overrides earlier commands").  PRIORITY stays per node: DAGMan warns
    // for every node whose priority overrides an earlier one (a fatal warning under
    // DAGMAN_USE_STRICT = 2), so a default would cost a log line per differing node.
    let retry_of: Vec<String> = ir.job_settings.iter().map(|js| retry_spec(&js.resources)).collect();
    let mut retry_count: BTreeMap<&str, usize> = BTreeMap::new();
    for job in ir.jobs.iter().filter(|j| !matches!(j.kind, JobKind::Join | JobKind::Provenance)) {
        *retry_count.entry(retry_of[job.settings as usize].as_str()).or_default() += 1;
    }
    let default_retry =
        retry_count.iter().max_by_key(|(k, n)| (**n, std::cmp::Reverse(**k))).map(|(k, _)| k.to_string()).unwrap_or_default();
    let default_prio = 0;
    let mut line = String::with_capacity(256);
    let mut final_node: Option<usize> = None;
    // Pass 1: the nodes.
    for (j, (job, node)) in ir.jobs.iter().zip(names).enumerate() {
        line.clear();
        match job.kind {
            JobKind::Join => {
                line.push_str("JOB ");
                line.push_str(node);
                line.push_str(" htcondor/noop.sub NOOP\n");
            }
            JobKind::Provenance => final_node = Some(j),
            _ => {
                line.push_str("JOB ");
                line.push_str(node);
                line.push_str(" htcondor/");
                line.push_str(&p.subs[p.sub_of[j] as usize].name);
                line.push_str(".sub\n");
            }
        }
        w.write_all(line.as_bytes())?;
    }
    writeln!(w)?;
    writeln!(w, "# Every node's defaults; the lines after them override them for the nodes that differ.")?;
    if !default_retry.is_empty() {
        writeln!(w, "RETRY ALL_NODES {default_retry}")?;
    }
    writeln!(w)?;
    // Pass 2: what differs per node.
    let mut vars = String::new();
    for (j, (job, node)) in ir.jobs.iter().zip(names).enumerate() {
        if matches!(job.kind, JobKind::Join | JobKind::Provenance) {
            continue;
        }
        line.clear();
        let s = p.sub_of[j] as usize;
        let sf = &p.subs[s];
        let r = &ir.settings_of(j as u32).resources;
        vars.clear();
        if sf.transfer {
            // Jobs that carry their task table with them are addressed by index.
            vars.push_str(" bpsc_i=");
            vars.push_str(&vars_value(&p.groups.index_in_group[j].to_string()));
            if sf.sharded {
                vars.push_str(" bpsc_g=");
                vars.push_str(&vars_value(&p.groups.names[p.groups.group_of[j] as usize]));
            }
        }
        resource_vars(r, &defaults[s], &mut vars);
        if !vars.is_empty() {
            line.push_str("VARS ");
            line.push_str(node);
            line.push_str(&vars);
            line.push('\n');
        }
        let abort = r.on_failure == OnFailure::Abort;
        let post = abort || r.retry_unless_exit.len() > 1;
        let retry = &retry_of[job.settings as usize];
        if *retry != default_retry {
            line.push_str("RETRY ");
            line.push_str(node);
            line.push(' ');
            line.push_str(if retry.is_empty() { "0" } else { retry });
            line.push('\n');
        }
        if post {
            let codes = if r.retry_unless_exit.is_empty() {
                "-".to_string()
            } else {
                r.retry_unless_exit.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",")
            };
            line.push_str(&format!("SCRIPT POST {node} htcondor/bpsc-post.sh node $RETURN $RETRY $MAX_RETRIES {} {codes}\n", abort as u8));
        }
        if sf.transfer {
            line.push_str(&format!("SCRIPT PRE {node} htcondor/bpsc-pre.sh {node} {}\n", ir.job_id(j as u32)));
        }
        if job.priority != default_prio {
            line.push_str("PRIORITY ");
            line.push_str(node);
            line.push(' ');
            line.push_str(itoa::Buffer::new().format(job.priority));
            line.push('\n');
        }
        if let Some(c) = category[s] {
            line.push_str("CATEGORY ");
            line.push_str(node);
            line.push(' ');
            line.push_str(c);
            line.push('\n');
        }
        w.write_all(line.as_bytes())?;
    }
    writeln!(w)?;
    // Dependencies: one line per parent (children chunked), in job order.
    let (off, to) = ir.children();
    for pj in 0..n {
        let kids = &to[off[pj] as usize..off[pj + 1] as usize];
        for chunk in kids.chunks(CHILDREN_PER_LINE) {
            line.clear();
            line.push_str("PARENT ");
            line.push_str(&names[pj]);
            line.push_str(" CHILD");
            for &c in chunk {
                line.push(' ');
                line.push_str(&names[c as usize]);
            }
            line.push('\n');
            w.write_all(line.as_bytes())?;
        }
    }
    if let Some(j) = final_node {
        let node = &names[j];
        let s = p.sub_of[j] as usize;
        writeln!(w)?;
        writeln!(w, "# Provenance: runs at the end whatever happened; its POST script makes the DAG fail when any node failed.")?;
        writeln!(w, "FINAL {node} htcondor/{}.sub", p.subs[s].name)?;
        writeln!(w, "VARS {node} bpsc_i={}", vars_value(&p.groups.index_in_group[j].to_string()))?;
        writeln!(w, "SCRIPT POST {node} htcondor/bpsc-post.sh final $RETURN $DAG_STATUS $FAILED_COUNT")?;
    }
    w.flush()?;
    Ok(())
}

// ------------------------------------------------------------------ entry point

/// Write the HTCondor submit directory.
pub fn write(ir: &Ir, out: &dyn Output) -> Result<Emitted, Diagnostic> {
    let exe = crate::backend::bpsc_exe()?;
    no_control(&exe, "bpsc executable path")?;
    let ctx = Ctx {
        ir,
        templates: Templates::new(&TEMPLATES)?,
        exe,
        version: env!("CARGO_PKG_VERSION"),
        campaign_comment: format!("`{}`", crate::backend::comment_text(&ir.campaign)),
    };
    let p = plan(ir);
    let names = node_names(ir)?;
    let opts = crate::submitdir::tasks::TableOptions {
        by_id: true,
        parents: false,
        lines: p
            .subs
            .iter()
            .filter(|sf| sf.transfer)
            .flat_map(|sf| sf.jobs.iter().map(|&j| p.groups.names[p.groups.group_of[j as usize] as usize].clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
    };
    crate::backend::alongside_common(ir, out, &p.groups, &opts, || {
        let defaults: Vec<Resources> = p
            .subs
            .iter()
            .map(|sf| sf.jobs.first().map(|&j| ir.settings_of(j).resources.clone()).unwrap_or_else(Resources::inserted))
            .collect();
        for (sf, d) in p.subs.iter().zip(&defaults) {
            write_submit(&ctx, out, sf, d)?;
        }
        if ir.jobs.iter().any(|j| j.kind == JobKind::Join) {
            let t = render(&ctx, "noop", minijinja::context! { version => ctx.version, campaign_comment => ctx.campaign_comment })?;
            out.write("htcondor/noop.sub", t.as_bytes())?;
        }
        let t = render(
            &ctx,
            "config",
            minijinja::context! {
                version => ctx.version,
                max_idle => MAX_JOBS_IDLE,
                max_submitted => MAX_JOBS_SUBMITTED,
                scan_interval => SCAN_INTERVAL,
                submits_per_interval => SUBMITS_PER_INTERVAL,
            },
        )?;
        out.write("htcondor/dagman.config", t.as_bytes())?;
        let t = render(&ctx, "job", minijinja::context! { version => ctx.version, campaign_comment => ctx.campaign_comment })?;
        out.write_exec("htcondor/bpsc-job.sh", t.as_bytes())?;
        let t = render(
            &ctx,
            "post",
            minijinja::context! {
                version => ctx.version,
                campaign_comment => ctx.campaign_comment,
                notify_command => notify_command(ir),
                notify_on => ir.notify.on.iter().filter(|e| *e == "done" || *e == "failure").cloned().collect::<Vec<_>>().join(" "),
                notify_env => notify_env(ir)?,
                dag => DAG_FILE,
                // Long enough for DAGMan to see the halt file (it looks once per scan).
                halt_wait => 2 * SCAN_INTERVAL + 1,
            },
        )?;
        out.write_exec("htcondor/bpsc-post.sh", t.as_bytes())?;
        if p.subs.iter().any(|sf| sf.transfer) {
            let t = render(&ctx, "pre", minijinja::context! { version => ctx.version, campaign_comment => ctx.campaign_comment })?;
            out.write_exec("htcondor/bpsc-pre.sh", t.as_bytes())?;
            out.mkdir(ATTEMPT_DIR)?;
        }
        write_dag(&ctx, out, &p, &names, &defaults)?;
        Ok(Emitted {
            groups: p.groups.counts(),
            submit_command: format!("condor_submit_dag {DAG_FILE}"),
            engine_jobs: crate::backend::kind_counts(ir, |_| true),
            engine_edges: ir.edges.len() as u64,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_helpers() {
        assert_eq!(submit_literal("a$(rm -rf ~)"), "a$(DOLLAR)(rm -rf ~)");
        assert_eq!(classad_str("a\"b\\c$d\n"), "\"a\\\"b\\\\c$(DOLLAR)d\\012\"");
        assert_eq!(quoted_word("it's \"x\" $y"), "'it''s \"\"x\"\" $(DOLLAR)y'");
        assert_eq!(vars_value("a\"b\\"), "\"a\\\"b\\\\\"");
        assert!(node_name_ok("isr_30404_3"));
        assert!(node_name_ok("x-2e-2e"));
        for bad in ["parent", "Child", "ALL_NODES", "a.b", "a+b", "a b", ""] {
            assert!(!node_name_ok(bad), "{bad}");
        }
    }

    #[test]
    fn scratch_templates() {
        assert_eq!(scratch_value("/s/{user}/{campaign}/{site}", "c$1", "in2p3"), "/s/$ENV(USER)/c$(DOLLAR)1/in2p3");
        assert_eq!(scratch_value("/a/{{x}}", "c", "s"), "/a/{x}");
    }
}
