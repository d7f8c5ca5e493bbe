//! Building the job graph: quanta to jobs, edges, join nodes, inserted jobs, priorities.

use std::collections::BTreeMap;

use super::eval::Env;
use super::JOIN_MIN;
use crate::coverage::hash::FastMap;
use crate::coverage::{self, Dictionaries, Relation, Value};
use crate::diag::Diagnostic;
use crate::ir::adjacency::csr_children;
use crate::ir::naming::sanitize;
use crate::ir::{
    CampaignSettings, Cluster as IrCluster, Gather, GatherFrom, Ir, Job, JobKind, Notify, Persist, QRef, Site as IrSite, Stage, StageSet,
    Staged, Step as IrStep, Template,
};

/// Kahn's algorithm; `None` on a cycle.  Ties broken by index, so the order is stable.
pub fn topo_order(n: usize, edges: impl Iterator<Item = (usize, usize)>) -> Option<Vec<usize>> {
    let mut indeg = vec![0usize; n];
    let mut adj: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (a, b) in edges {
        adj[a].push(b);
        indeg[b] += 1;
    }
    let mut ready: std::collections::BTreeSet<usize> = (0..n).filter(|&i| indeg[i] == 0).collect();
    let mut out = Vec::with_capacity(n);
    while let Some(&v) = ready.iter().next() {
        ready.remove(&v);
        out.push(v);
        for &w in &adj[v] {
            indeg[w] -= 1;
            if indeg[w] == 0 {
                ready.insert(w);
            }
        }
    }
    (out.len() == n).then_some(out)
}

/// Longest-path level of each node (roots are 0).
pub fn levels(n: usize, edges: impl Iterator<Item = (usize, usize)>) -> Vec<u32> {
    let edges: Vec<(usize, usize)> = edges.collect();
    let order = topo_order(n, edges.iter().copied()).unwrap_or_else(|| (0..n).collect());
    let mut lv = vec![0u32; n];
    let mut adj: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(a, b) in &edges {
        adj[a].push(b);
    }
    for v in order {
        for &w in &adj[v] {
            lv[w] = lv[w].max(lv[v] + 1);
        }
    }
    lv
}

/// Maps a quantum's codes (over some dimensions) to its row in a step's quanta.
enum QIndex {
    Packed { shifts: Vec<u32>, map: FastMap<u64, u32> },
    Wide { map: FastMap<Box<[u32]>, u32> },
}

fn bits_for(n: usize) -> u32 {
    (usize::BITS - n.max(1).leading_zeros()).max(1)
}

impl QIndex {
    fn build(rel: &Relation, dicts: &Dictionaries) -> QIndex {
        let widths: Vec<u32> = rel.schema().iter().map(|&d| bits_for(dicts.dict(d).len())).collect();
        let total: u32 = widths.iter().sum();
        let n = rel.len();
        if total <= 64 {
            let mut shifts = Vec::with_capacity(widths.len());
            let mut acc = 0;
            for w in &widths {
                shifts.push(acc);
                acc += w;
            }
            let mut map = FastMap::with_capacity_and_hasher(n, Default::default());
            let cols: Vec<&[u32]> = (0..rel.arity()).map(|i| rel.column(i)).collect();
            for r in 0..n {
                let mut k = 0u64;
                for (c, s) in cols.iter().zip(&shifts) {
                    k |= (c[r] as u64) << s;
                }
                map.insert(k, r as u32);
            }
            QIndex::Packed { shifts, map }
        } else {
            let mut map = FastMap::with_capacity_and_hasher(n, Default::default());
            for r in 0..n {
                map.insert(rel.row_codes(r).collect::<Vec<u32>>().into_boxed_slice(), r as u32);
            }
            QIndex::Wide { map }
        }
    }

    /// Row of the quantum whose codes are `cols[i][row]` (columns in the step's dim order).
    #[inline]
    fn get(&self, cols: &[&[u32]], row: usize) -> Option<u32> {
        match self {
            QIndex::Packed { shifts, map } => {
                let mut k = 0u64;
                for (c, s) in cols.iter().zip(shifts) {
                    k |= (c[row] as u64) << s;
                }
                map.get(&k).copied()
            }
            QIndex::Wide { map } => {
                let key: Vec<u32> = cols.iter().map(|c| c[row]).collect();
                map.get(key.as_slice()).copied()
            }
        }
    }
}

/// The left side of [`Builder::pairs`]: a step's quanta, or rows of some relation.
#[derive(Clone, Copy)]
enum Side<'r> {
    Step(usize),
    Rows(&'r Relation),
}

pub struct Builder<'a> {
    pub env: Env<'a>,
    pub cov: Relation,
    pub steps: Vec<IrStep>,
    pub clusters: Vec<IrCluster>,
    pub jobs: Vec<Job>,
    pub members: Vec<QRef>,
    /// Job-level edges collected so far (may hold duplicates and self-loops until finished).
    edges: Vec<(u32, u32)>,
    /// (producer job, consumer job) pairs through discarded datasets, for cleanup.
    discard_consumers: Vec<(u32, u32)>,
    indexes: Vec<Option<QIndex>>,
    stage_sets: Vec<StageSet>,
    staged: Vec<Staged>,
    joins: u32,
    /// Warnings found while building (W506).
    pub warnings: Vec<Diagnostic>,
}

impl<'a> Builder<'a> {
    pub fn new(env: Env<'a>, cov: Relation, steps: Vec<IrStep>) -> Builder<'a> {
        let n = steps.len();
        Builder {
            env,
            cov,
            steps,
            clusters: Vec::new(),
            jobs: Vec::new(),
            members: Vec::new(),
            edges: Vec::new(),
            discard_consumers: Vec::new(),
            indexes: (0..n).map(|_| None).collect(),
            stage_sets: Vec::new(),
            staged: Vec::new(),
            joins: 0,
            warnings: Vec::new(),
        }
    }

    pub fn add_cluster(&mut self, c: IrCluster) {
        let ci = self.clusters.len() as u32;
        for &s in &c.steps {
            self.steps[s as usize].cluster = Some(ci);
        }
        self.clusters.push(c);
    }

    /// Quanta to jobs: one job per quantum, per `by` group, or per `size` chunk.  Jobs are
    /// created step by step in definition order; a cluster's jobs when its first step comes.
    pub fn assign_jobs(&mut self) -> Result<(), Diagnostic> {
        for si in 0..self.steps.len() {
            let n = self.steps[si].quanta.len();
            self.steps[si].job_of = vec![u32::MAX; n];
        }
        let mut done_cluster = vec![false; self.clusters.len()];
        for si in 0..self.steps.len() {
            match self.steps[si].cluster {
                None => {
                    let n = self.steps[si].quanta.len();
                    let base = self.jobs.len() as u32;
                    self.jobs.reserve(n);
                    self.members.reserve(n);
                    for q in 0..n {
                        let m = self.members.len() as u32;
                        self.members.push(QRef { step: si as u32, q: q as u32 });
                        self.jobs.push(Job { kind: JobKind::Compute, owner: u32::MAX, lo: m, hi: m + 1, priority: 0, settings: 0 });
                    }
                    self.steps[si].job_of = (base..base + n as u32).collect();
                }
                Some(ci) if !done_cluster[ci as usize] => {
                    done_cluster[ci as usize] = true;
                    self.cluster_jobs(ci)?;
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    fn cluster_jobs(&mut self, ci: u32) -> Result<(), Diagnostic> {
        let c = self.clusters[ci as usize].clone();
        if let Some(size) = c.size {
            for &s in &c.steps {
                let n = self.steps[s as usize].quanta.len();
                let mut q = 0;
                while q < n {
                    let hi = (q + size as usize).min(n);
                    let j = self.jobs.len() as u32;
                    let lo_m = self.members.len() as u32;
                    for x in q..hi {
                        self.members.push(QRef { step: s, q: x as u32 });
                        self.steps[s as usize].job_of[x] = j;
                    }
                    self.jobs.push(Job {
                        kind: JobKind::Compute,
                        owner: ci,
                        lo: lo_m,
                        hi: self.members.len() as u32,
                        priority: 0,
                        settings: 0,
                    });
                    q = hi;
                }
            }
            return Ok(());
        }
        // Group by the `by` values: key = codes of the by dimensions, in `by` order.  Groups
        // are ordered by value (ranks), so job order does not depend on dictionary codes.
        // Group by the `by` values (in value order, so job order does not depend on
        // dictionary codes); a step may hold an `equal` dimension in place of a `by` one.
        let nby = c.by.len();
        let mut groups: BTreeMap<Vec<Value>, Vec<(Vec<Value>, QRef)>> = BTreeMap::new();
        for &s in &c.steps {
            let st = &self.steps[s as usize];
            let cols = c.key_cols_of(s);
            if cols.len() != nby + c.split_by.len() {
                return Err(Diagnostic::new(
                    "E506",
                    format!("cluster `{}` groups by ({}), which step `{}` does not have", c.name, c.by.join(", "), st.name),
                ));
            }
            for q in 0..st.quanta.len() {
                let row = st.quanta.row(q, &self.env.dicts);
                let by: Vec<Value> = cols[..nby].iter().map(|&p| row[p].clone()).collect();
                let split: Vec<Value> = cols[nby..].iter().map(|&p| row[p].clone()).collect();
                groups.entry(by).or_default().push((split, QRef { step: s, q: q as u32 }));
            }
        }
        // Split values with more quanta than max_quanta: (how many, the largest, an example).
        let mut oversized: (usize, usize, String) = (0, 0, String::new());
        for (by, mut ms) in groups {
            // A partitioned cluster cuts the group between `split_by` values into jobs of at
            // most `max_quanta` quanta; one value with more quanta is one job (W506).
            let chunks: Vec<Vec<QRef>> = match c.max_quanta {
                Some(max) if !c.split_by.is_empty() => {
                    ms.sort_by(|a, b| (&a.0, a.1.step, a.1.q).cmp(&(&b.0, b.1.step, b.1.q)));
                    let mut chunks: Vec<Vec<QRef>> = Vec::new();
                    let mut cur: Vec<QRef> = Vec::new();
                    let mut i = 0;
                    while i < ms.len() {
                        let mut k = i;
                        while k < ms.len() && ms[k].0 == ms[i].0 {
                            k += 1;
                        }
                        let run = k - i;
                        if !cur.is_empty() && cur.len() + run > max as usize {
                            chunks.push(std::mem::take(&mut cur));
                        }
                        if run > max as usize {
                            oversized.0 += 1;
                            if run > oversized.1 {
                                let fmt = |v: &[Value]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ");
                                oversized.1 = run;
                                oversized.2 = format!(
                                    "({}) = ({}) within ({}) = ({})",
                                    c.split_by.join(", "),
                                    fmt(&ms[i].0),
                                    c.by.join(", "),
                                    fmt(&by)
                                );
                            }
                        }
                        cur.extend(ms[i..k].iter().map(|x| x.1));
                        i = k;
                    }
                    if !cur.is_empty() {
                        chunks.push(cur);
                    }
                    chunks
                }
                _ => vec![ms.into_iter().map(|x| x.1).collect()],
            };
            for mut chunk in chunks {
                // Members in dependency order: steps in cluster order follow definition order,
                // which is topological for steps of one pipeline.
                chunk.sort_by_key(|m| (self.steps[m.step as usize].level, m.step, m.q));
                let j = self.jobs.len() as u32;
                let lo = self.members.len() as u32;
                for m in &chunk {
                    self.steps[m.step as usize].job_of[m.q as usize] = j;
                }
                self.members.extend(chunk);
                self.jobs.push(Job { kind: JobKind::Compute, owner: ci, lo, hi: self.members.len() as u32, priority: 0, settings: 0 });
            }
        }
        if oversized.0 > 0 {
            let (n, largest, example) = oversized;
            let max = c.max_quanta.unwrap_or(0);
            let mut d = Diagnostic::new(
                "W506",
                format!(
                    "cluster `{}`: {n} split_by value{} ha{} more quanta than max_quanta = {max}; each stays one job (the largest, {example}, has {largest})",
                    c.name,
                    if n == 1 { "" } else { "s" },
                    if n == 1 { "s" } else { "ve" }
                ),
            )
            .help("a split_by value is never cut; raise max_quanta, or split by a finer dimension");
            if let Some(l) = c.loc {
                d = d.at_loc(l, "this cluster");
            }
            self.warnings.push(d);
        }
        Ok(())
    }

    fn index(&mut self, s: usize) {
        if self.indexes[s].is_none() {
            self.indexes[s] = Some(QIndex::build(&self.steps[s].quanta, &self.env.dicts));
        }
    }

    /// Pairs (row of `a`, row of step `b`'s quanta) that co-occur in the universe over both
    /// dimension sets.  `a` is a step's quanta or any relation over `a_dims`.
    fn pairs(&mut self, a_dims: &[String], a: Side<'_>, b_dims: &[String], b: usize) -> Result<Vec<(u32, u32)>, Diagnostic> {
        let mut joint: Vec<String> = a_dims.to_vec();
        for d in b_dims {
            if !joint.contains(d) {
                joint.push(d.clone());
            }
        }
        let jref: Vec<&str> = joint.iter().map(|s| s.as_str()).collect();
        let uni = self.env.extend(&self.cov, &jref)?;
        let rel = coverage::project(&uni, &jref, &self.env.dicts).map_err(|e| Diagnostic::new("E701", e.to_string()))?;
        self.index(b);
        let own = match a {
            Side::Step(i) => {
                self.index(i);
                None
            }
            Side::Rows(r) => Some(QIndex::build(r, &self.env.dicts)),
        };
        let ia = match a {
            Side::Step(i) => self.indexes[i].as_ref(),
            Side::Rows(_) => own.as_ref(),
        };
        let col = |d: &String| rel.column(joint.iter().position(|x| x == d).unwrap_or(0));
        let ac: Vec<&[u32]> = a_dims.iter().map(col).collect();
        let bc: Vec<&[u32]> = b_dims.iter().map(col).collect();
        let (Some(ia), Some(ib)) = (ia, &self.indexes[b]) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(rel.len());
        for r in 0..rel.len() {
            if let (Some(x), Some(y)) = (ia.get(&ac, r), ib.get(&bc, r)) {
                out.push((x, y));
            }
        }
        Ok(out)
    }

    /// Quantum edges from step `p` to step `s` by the universe rule; when `s` gathers
    /// `dataset` from `p`, the same pairs say which instances each quantum reads.
    pub fn quantum_edges(&mut self, p: usize, s: usize, dataset: Option<&String>) -> Result<(), Diagnostic> {
        let (pd, sd) = (self.steps[p].dims.clone(), self.steps[s].dims.clone());
        let pairs = self.pairs(&pd, Side::Step(p), &sd, s)?;
        if let Some(ds) = dataset {
            let gathered = self.steps[s].inputs.iter().position(|i| &i.dataset == ds && !i.dims.iter().all(|d| sd.contains(d)));
            if let Some(input) = gathered {
                let g = gather_of(input as u32, GatherFrom::Step(p as u32), self.steps[s].quanta.len(), &pairs);
                self.steps[s].gathers.push(g);
            }
        }
        let discards: bool = self.steps[p]
            .outputs
            .iter()
            .any(|o| o.persist == Persist::Discard && self.steps[s].inputs.iter().any(|i| i.dataset == o.dataset));
        self.edges.reserve(pairs.len());
        for (x, y) in pairs {
            let (pj, sj) = (self.steps[p].job_of[x as usize], self.steps[s].job_of[y as usize]);
            self.edges.push((pj, sj));
            if discards {
                self.discard_consumers.push((pj, sj));
            }
        }
        Ok(())
    }

    /// Gathers of inputs no step of this IR produces (external datasets, or datasets made
    /// by steps outside `--steps`): their instances are the universe's projection onto the
    /// input's dimensions.
    pub fn external_gathers(&mut self) -> Result<(), Diagnostic> {
        for s in 0..self.steps.len() {
            let sd = self.steps[s].dims.clone();
            let todo: Vec<(u32, Vec<String>)> = self.steps[s]
                .inputs
                .iter()
                .enumerate()
                .filter(|(_, i)| !i.produced && !i.dims.iter().all(|d| sd.contains(d)))
                .map(|(k, i)| (k as u32, i.dims.clone()))
                .collect();
            for (input, dims) in todo {
                let dref: Vec<&str> = dims.iter().map(|s| s.as_str()).collect();
                let uni = self.env.extend(&self.cov, &dref)?;
                let inst = coverage::project(&uni, &dref, &self.env.dicts).map_err(|e| Diagnostic::new("E701", e.to_string()))?;
                let pairs = self.pairs(&dims, Side::Rows(&inst), &sd, s)?;
                let g = gather_of(input, GatherFrom::Instances(inst), self.steps[s].quanta.len(), &pairs);
                self.steps[s].gathers.push(g);
            }
            self.steps[s].gathers.sort_by_key(|g| g.input);
        }
        Ok(())
    }

    fn new_join(&mut self) -> u32 {
        let j = self.jobs.len() as u32;
        self.jobs.push(Job { kind: JobKind::Join, owner: self.joins, lo: 0, hi: 0, priority: 0, settings: 0 });
        self.joins += 1;
        j
    }

    fn step_jobs(&self, s: usize) -> Vec<u32> {
        let mut v = self.steps[s].job_of.clone();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Every job of `p` before every job of `s`, through one join node.
    pub fn barrier(&mut self, p: usize, s: usize) {
        let (pj, sj) = (self.step_jobs(p), self.step_jobs(s));
        if pj.is_empty() || sj.is_empty() {
            return;
        }
        let j = self.new_join();
        self.edges.extend(pj.iter().map(|&x| (x, j)));
        self.edges.extend(sj.iter().map(|&y| (j, y)));
    }

    /// `order S serial by DIM`: the jobs holding each value of DIM run after all jobs of the
    /// previous value, through a join node per step of the chain.
    pub fn serial(&mut self, s: usize, dim: &str) {
        let Some(d) = self.env.dicts.dim_id(dim) else {
            return;
        };
        let Some(pos) = self.steps[s].quanta.position(d) else {
            return;
        };
        let col = self.steps[s].quanta.column(pos).to_vec();
        let mut by_val: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for (q, &code) in col.iter().enumerate() {
            by_val.entry(self.env.dicts.dict(d).rank(code)).or_default().push(self.steps[s].job_of[q]);
        }
        let groups: Vec<Vec<u32>> = by_val
            .into_values()
            .map(|mut v| {
                v.sort_unstable();
                v.dedup();
                v
            })
            .collect();
        for w in groups.windows(2) {
            let j = self.new_join();
            self.edges.extend(w[0].iter().map(|&x| (x, j)));
            self.edges.extend(w[1].iter().map(|&y| (j, y)));
        }
    }

    /// Sort and dedupe edges, drop intra-job ones, route large shared fan-ins through join
    /// nodes, and check that clustering left the graph acyclic (E504).
    pub fn finish_edges(&mut self) -> Result<(), Diagnostic> {
        let mut e = std::mem::take(&mut self.edges);
        e.retain(|&(a, b)| a != b);
        e.sort_unstable_by_key(|&(a, b)| (b, a));
        e.dedup();
        // Group parents by child (sorted by child, then parent).
        let mut out: Vec<(u32, u32)> = Vec::with_capacity(e.len());
        let mut shared: FastMap<Box<[u32]>, (u32, Option<u32>)> = FastMap::default();
        let mut i = 0;
        let mut pending: Vec<(u32, Box<[u32]>)> = Vec::new();
        while i < e.len() {
            let child = e[i].1;
            let mut k = i;
            while k < e.len() && e[k].1 == child {
                k += 1;
            }
            if k - i >= JOIN_MIN {
                let parents: Box<[u32]> = e[i..k].iter().map(|x| x.0).collect();
                shared.entry(parents.clone()).or_insert((0, None)).0 += 1;
                pending.push((child, parents));
            } else {
                out.extend_from_slice(&e[i..k]);
            }
            i = k;
        }
        for (child, parents) in pending {
            let count = shared.get(&parents).map(|x| x.0).unwrap_or(1);
            if count < 2 {
                out.extend(parents.iter().map(|&p| (p, child)));
                continue;
            }
            let j = match shared.get(&parents).and_then(|x| x.1) {
                Some(j) => j,
                None => {
                    let j = self.new_join();
                    out.extend(parents.iter().map(|&p| (p, j)));
                    if let Some(x) = shared.get_mut(&parents) {
                        x.1 = Some(j);
                    }
                    j
                }
            };
            out.push((j, child));
        }
        out.sort_unstable();
        out.dedup();
        self.edges = out;
        if let Some(cycle) = job_cycle(self.jobs.len(), &self.edges) {
            return Err(self.cycle_diag(&cycle));
        }
        Ok(())
    }

    fn describe_job(&self, j: u32) -> String {
        let job = &self.jobs[j as usize];
        match job.kind {
            JobKind::Compute if job.owner != u32::MAX => {
                let steps: std::collections::BTreeSet<&str> =
                    self.members[job.lo as usize..job.hi as usize].iter().map(|m| self.steps[m.step as usize].name.as_str()).collect();
                format!("cluster `{}` job ({})", self.clusters[job.owner as usize].name, steps.into_iter().collect::<Vec<_>>().join(", "))
            }
            JobKind::Compute => format!("step `{}`", self.steps[self.members[job.lo as usize].step as usize].name),
            JobKind::Join => "a barrier".to_string(),
            k => k.as_str().to_string(),
        }
    }

    fn cycle_diag(&self, cycle: &[u32]) -> Diagnostic {
        let names: Vec<String> = cycle.iter().map(|&j| self.describe_job(j)).collect();
        let mut d = Diagnostic::new("E504", format!("clustering creates a cycle: {}", names.join(" -> ")));
        d = d.note(format!("cycle: {} -> {}", names.join(" -> "), names.first().cloned().unwrap_or_default()));
        let cl: Vec<&str> = cycle
            .iter()
            .filter_map(|&j| {
                let job = &self.jobs[j as usize];
                (job.kind == JobKind::Compute && job.owner != u32::MAX).then(|| self.clusters[job.owner as usize].name.as_str())
            })
            .collect();
        d.help(format!(
            "a job of cluster `{}` would wait for itself; split the cluster or group it by other dimensions",
            cl.first().copied().unwrap_or("?")
        ))
    }

    /// Stage-in, stage-out and cleanup jobs.
    pub fn insert_data_jobs(&mut self) -> Result<(), Diagnostic> {
        let mut extra: Vec<(u32, u32)> = Vec::new();
        // Stage-in: instances of `pre_job` external inputs, staged once each, by one stage-in
        // job per consumer job (bundling the instances that job is the first to need).
        let mut by_dataset: BTreeMap<String, (Template, Vec<String>, Vec<usize>)> = BTreeMap::new();
        for s in 0..self.steps.len() {
            for inp in self.steps[s].inputs.iter().filter(|i| !i.produced && i.stage == Stage::PreJob) {
                let Some(src) = &inp.source else { continue };
                by_dataset.entry(inp.dataset.clone()).or_insert((src.clone(), inp.dims.clone(), Vec::new())).2.push(s);
            }
        }
        let mut stage_job_of_consumer: FastMap<u32, u32> = FastMap::default();
        let mut stage_items: Vec<Vec<Staged>> = Vec::new();
        for (dataset, (source, dims, consumers)) in by_dataset {
            let dref: Vec<&str> = dims.iter().map(|s| s.as_str()).collect();
            let uni = self.env.extend(&self.cov, &dref)?;
            let inst = coverage::project(&uni, &dref, &self.env.dicts).map_err(|e| Diagnostic::new("E701", e.to_string()))?;
            let ds_index = self.stage_sets.len() as u32;
            // (consumer job, instance row), in job order: the first job to need an instance
            // stages it.
            let mut need: Vec<(u32, u32)> = Vec::new();
            for s in consumers {
                let s_dims = self.steps[s].dims.clone();
                for (inst_row, q) in self.pairs(&dims, Side::Rows(&inst), &s_dims, s)? {
                    need.push((self.steps[s].job_of[q as usize], inst_row));
                }
            }
            need.sort_unstable();
            need.dedup();
            let mut owner: Vec<u32> = vec![u32::MAX; inst.len()];
            for &(job, row) in &need {
                let ord = match owner[row as usize] {
                    u32::MAX => {
                        let ord = *stage_job_of_consumer.entry(job).or_insert_with(|| {
                            stage_items.push(Vec::new());
                            stage_items.len() as u32 - 1
                        });
                        owner[row as usize] = ord;
                        stage_items[ord as usize].push(Staged { dataset: ds_index, row });
                        ord
                    }
                    o => o,
                };
                extra.push((ord, job)); // stage ordinal -> consumer job, fixed up below
            }
            let dims: Vec<String> = inst.dim_names(&self.env.dicts).iter().map(|s| s.to_string()).collect();
            self.stage_sets.push(StageSet { dataset, source, dims, instances: inst });
        }
        let mut stage_job_ids: Vec<u32> = vec![u32::MAX; stage_items.len()];
        // Create stage-in jobs in ordinal order.
        for (ord, items) in stage_items.into_iter().enumerate() {
            let j = self.jobs.len() as u32;
            let lo = self.staged.len() as u32;
            self.staged.extend(items);
            self.jobs.push(Job { kind: JobKind::StageIn, owner: ord as u32, lo, hi: self.staged.len() as u32, priority: 0, settings: 0 });
            stage_job_ids[ord] = j;
        }
        let mut new_edges: Vec<(u32, u32)> = extra.into_iter().map(|(ord, job)| (stage_job_ids[ord as usize], job)).collect();
        // Stage-out and cleanup, per compute job.
        let ncompute = self.jobs.len();
        let mut cleanup_of: FastMap<u32, u32> = FastMap::default();
        for j in 0..ncompute as u32 {
            let job = self.jobs[j as usize];
            if job.kind != JobKind::Compute {
                continue;
            }
            let steps_in: Vec<u32> = {
                let mut v: Vec<u32> = self.members[job.lo as usize..job.hi as usize].iter().map(|m| m.step).collect();
                v.dedup();
                v
            };
            let archive = steps_in.iter().any(|&s| self.steps[s as usize].outputs.iter().any(|o| o.persist == Persist::Archive));
            if archive {
                let so = self.jobs.len() as u32;
                self.jobs.push(Job { kind: JobKind::StageOut, owner: j, lo: 0, hi: 0, priority: 0, settings: 0 });
                new_edges.push((j, so));
            }
            let discard = steps_in.iter().any(|&s| self.steps[s as usize].outputs.iter().any(|o| o.persist == Persist::Discard));
            if discard {
                let cj = self.jobs.len() as u32;
                self.jobs.push(Job { kind: JobKind::Cleanup, owner: j, lo: 0, hi: 0, priority: 0, settings: 0 });
                new_edges.push((j, cj));
                cleanup_of.insert(j, cj);
            }
        }
        for &(p, c) in &self.discard_consumers {
            if let Some(&cj) = cleanup_of.get(&p) {
                if c != p {
                    new_edges.push((c, cj));
                }
            }
        }
        self.edges.extend(new_edges);
        self.edges.sort_unstable();
        self.edges.dedup();
        // The final provenance job: no edges (engine-native final node).
        self.jobs.push(Job { kind: JobKind::Provenance, owner: 0, lo: 0, hi: 0, priority: 0, settings: 0 });
        Ok(())
    }

    /// Priorities: campaign priority + step `priority` + an order term from the step level
    /// (breadth-first: earlier steps higher; depth-first: later steps higher).  Inserted jobs
    /// take the priority of the compute job they serve.
    fn priorities(&mut self, order: crate::ir::OrderMode, base: i64) {
        let max_level = self.steps.iter().map(|s| s.level).max().unwrap_or(0) as i64;
        let step_prio: Vec<i64> = self
            .steps
            .iter()
            .map(|s| {
                let own = s.settings.priority;
                let term = if order == crate::ir::OrderMode::DepthFirst { s.level as i64 } else { max_level - s.level as i64 };
                base + own + term
            })
            .collect();
        for j in 0..self.jobs.len() {
            let job = self.jobs[j];
            let p = match job.kind {
                JobKind::Compute => {
                    self.members[job.lo as usize..job.hi as usize].iter().map(|m| step_prio[m.step as usize]).max().unwrap_or(base)
                }
                JobKind::StageOut | JobKind::Cleanup => self.jobs[job.owner as usize].priority as i64,
                _ => base,
            };
            self.jobs[j].priority = p.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
        }
        // Stage-in jobs: the highest priority among their consumers, plus one.
        let (coff, cto) = csr_children(self.jobs.len(), &self.edges);
        for j in 0..self.jobs.len() {
            if self.jobs[j].kind == JobKind::StageIn {
                let m = cto[coff[j] as usize..coff[j + 1] as usize]
                    .iter()
                    .map(|&c| self.jobs[c as usize].priority)
                    .max()
                    .unwrap_or(base as i32);
                self.jobs[j].priority = m.saturating_add(1);
            }
        }
    }

    pub fn into_ir(mut self, campaign: String, settings: CampaignSettings, sites: Vec<IrSite>, notify: Notify) -> Ir {
        self.priorities(settings.order, settings.priority);
        Ir {
            campaign,
            coverage_size: self.cov.len(),
            dicts: self.env.dicts,
            steps: self.steps,
            clusters: self.clusters,
            sites,
            jobs: self.jobs,
            members: self.members,
            stage_sets: self.stage_sets,
            staged: self.staged,
            edges: self.edges,
            settings,
            notify,
            step_edges: Vec::new(),
            job_settings: Vec::new(),
            final_job: None,
        }
    }
}

/// A cycle among jobs, as job indices in order, or `None`.  Iterative.
/// A gather's CSR from (instance row, quantum) pairs: each quantum's rows sorted, once each.
fn gather_of(input: u32, from: GatherFrom, quanta: usize, pairs: &[(u32, u32)]) -> Gather {
    let mut offsets = vec![0u64; quanta + 1];
    for &(_, q) in pairs {
        offsets[q as usize + 1] += 1;
    }
    for i in 0..quanta {
        offsets[i + 1] += offsets[i];
    }
    let mut fill: Vec<u64> = offsets[..quanta].to_vec();
    let mut rows = vec![0u32; pairs.len()];
    for &(x, q) in pairs {
        rows[fill[q as usize] as usize] = x;
        fill[q as usize] += 1;
    }
    // Sort and deduplicate each quantum's rows, compacting in place.
    let mut out = 0usize;
    let mut new_offsets = Vec::with_capacity(quanta + 1);
    new_offsets.push(0u64);
    for q in 0..quanta {
        let (a, b) = (offsets[q] as usize, offsets[q + 1] as usize);
        rows[a..b].sort_unstable();
        let mut last = None;
        for i in a..b {
            let x = rows[i];
            if last != Some(x) {
                rows[out] = x;
                out += 1;
                last = Some(x);
            }
        }
        new_offsets.push(out as u64);
    }
    rows.truncate(out);
    Gather { input, from, offsets: new_offsets, rows }
}

pub fn job_cycle(n: usize, edges: &[(u32, u32)]) -> Option<Vec<u32>> {
    // Kahn first (cheap); only on failure search the remaining nodes for a cycle.
    let (off, adj) = csr_children(n, edges);
    let mut indeg = vec![0u32; n];
    for &(_, c) in edges {
        indeg[c as usize] += 1;
    }
    let mut stack: Vec<u32> = (0..n as u32).filter(|&i| indeg[i as usize] == 0).collect();
    let mut seen = 0usize;
    while let Some(v) = stack.pop() {
        seen += 1;
        for &w in &adj[off[v as usize] as usize..off[v as usize + 1] as usize] {
            indeg[w as usize] -= 1;
            if indeg[w as usize] == 0 {
                stack.push(w);
            }
        }
    }
    if seen == n {
        return None;
    }
    // Walk backwards... simpler: DFS from any node still with indegree > 0.
    let start = (0..n).find(|&i| indeg[i] > 0)? as u32;
    let mut state = vec![0u8; n];
    let mut path: Vec<(u32, u32)> = vec![(start, off[start as usize])];
    state[start as usize] = 1;
    while let Some(&mut (v, ref mut k)) = path.last_mut() {
        if *k < off[v as usize + 1] {
            let w = adj[*k as usize];
            *k += 1;
            if indeg[w as usize] == 0 {
                continue;
            }
            match state[w as usize] {
                0 => {
                    state[w as usize] = 1;
                    path.push((w, off[w as usize]));
                }
                1 => {
                    let at = path.iter().position(|&(x, _)| x == w).unwrap_or(0);
                    return Some(path[at..].iter().map(|&(x, _)| x).collect());
                }
                _ => {}
            }
        } else {
            state[v as usize] = 2;
            path.pop();
        }
    }
    None
}

/// E802: generated names that collide after sanitising.  Step and cluster names are job id
/// prefixes and must be distinct from each other and from the inserted jobs' prefixes.
pub fn check_names(ir: &Ir) -> Result<(), Diagnostic> {
    let reserved = ["stagein", "stageout", "cleanup", "join", "provenance"];
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let names = ir
        .steps
        .iter()
        .map(|s| (sanitize(&s.name), format!("step `{}`", s.name)))
        .chain(ir.clusters.iter().map(|c| (sanitize(&c.name), format!("cluster `{}`", c.name))));
    for (n, what) in names {
        if reserved.contains(&n.as_str()) {
            return Err(Diagnostic::new("E802", format!("{what} is named like bpsc's inserted `{n}` jobs"))
                .help("rename it; job ids of inserted jobs start with stagein, stageout, cleanup, join and provenance"));
        }
        if let Some(other) = seen.insert(n.clone(), what.clone()) {
            if other != what {
                return Err(
                    Diagnostic::new("E802", format!("{what} and {other} give the same job name prefix `{n}`")).help("rename one of them")
                );
            }
        }
    }
    Ok(())
}
