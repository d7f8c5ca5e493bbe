//! Every definition of and reference to a named thing, from the syntax trees of a program
//! (the root file and everything it includes).  Built from the trees rather than the model
//! so that what a broken file still parses is indexed too.

use crate::source::{FileId, Span};
use crate::syntax::ast::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Site,
    Dimension,
    Relation,
    Coverage,
    Dataset,
    Pipeline,
    Config,
    Step,
    Campaign,
    Cluster,
    /// `subset NAME = [...]` in a pipeline (language 1.1).
    Subset,
    /// `final NAME { }` in a campaign (language 1.1).
    Final,
    /// A name in a coverage expression: a dimension, a relation or a named coverage.
    CoverageName,
    /// `order A before B` at the top level or in a campaign: a step or a pipeline.
    StepOrPipeline,
}

impl Kind {
    pub fn word(self) -> &'static str {
        match self {
            Kind::Site => "site",
            Kind::Dimension => "dimension",
            Kind::Relation => "relation",
            Kind::Coverage => "coverage",
            Kind::Dataset => "dataset",
            Kind::Pipeline => "pipeline",
            Kind::Config => "config",
            Kind::Step => "step",
            Kind::Campaign => "campaign",
            Kind::Cluster => "cluster",
            Kind::Subset => "subset",
            Kind::Final => "final job",
            Kind::CoverageName => "dimension, relation or coverage",
            Kind::StepOrPipeline => "step or pipeline",
        }
    }

    /// Can a reference of kind `self` name a definition of kind `def`?
    pub fn accepts(self, def: Kind) -> bool {
        match self {
            Kind::CoverageName => matches!(def, Kind::Dimension | Kind::Relation | Kind::Coverage),
            Kind::StepOrPipeline => matches!(def, Kind::Step | Kind::Pipeline),
            k => k == def,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sym {
    pub kind: Kind,
    pub name: String,
    /// The pipeline of a step or config (for references: when it is known).
    pub scope: Option<String>,
    pub file: FileId,
    pub span: Span,
    pub def: bool,
}

impl Sym {
    /// Does this reference (or definition) name the definition `d`?
    pub fn names(&self, d: &Sym) -> bool {
        d.def
            && self.name == d.name
            && self.kind.accepts(d.kind)
            && match (&self.scope, &d.scope) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

#[derive(Debug, Default)]
pub struct Index {
    pub syms: Vec<Sym>,
}

impl Index {
    pub fn build(modules: &[Module]) -> Index {
        let mut b = Builder { out: Vec::new(), file: FileId(0) };
        for m in modules {
            b.file = m.file;
            for s in &m.stmts {
                b.top(s);
            }
        }
        Index { syms: b.out }
    }

    /// The symbol under byte offset `off` of `file` (the innermost, when several touch it).
    pub fn at(&self, file: FileId, off: u32) -> Option<&Sym> {
        self.syms.iter().filter(|s| s.file == file && s.span.lo <= off && off <= s.span.hi).min_by_key(|s| s.span.len())
    }

    /// The definitions a symbol stands for (itself, for a definition).
    pub fn defs_of<'a>(&'a self, s: &'a Sym) -> Vec<&'a Sym> {
        if s.def {
            return vec![s];
        }
        let defs: Vec<&Sym> = self.syms.iter().filter(|d| s.names(d)).collect();
        // A name that is both a pipeline and a step, or a dimension and a relation: prefer
        // the exact kind of a definition the reference is most likely about.
        defs
    }

    pub fn defs(&self) -> impl Iterator<Item = &Sym> {
        self.syms.iter().filter(|s| s.def)
    }

    pub fn def_names(&self, kind: Kind) -> Vec<&str> {
        let mut v: Vec<&str> = self.defs().filter(|d| d.kind == kind).map(|d| d.name.as_str()).collect();
        v.sort();
        v.dedup();
        v
    }
}

struct Builder {
    out: Vec<Sym>,
    file: FileId,
}

/// Where a statement is, for the names it uses.
#[derive(Clone, Copy)]
enum Ctx<'a> {
    Top,
    Pipeline(&'a str),
    Campaign,
    Other,
}

impl Builder {
    fn def(&mut self, kind: Kind, i: &Ident, scope: Option<&str>) {
        self.out.push(Sym { kind, name: i.name.clone(), scope: scope.map(str::to_string), file: self.file, span: i.span, def: true });
    }

    fn r(&mut self, kind: Kind, i: &Ident, scope: Option<&str>) {
        self.out.push(Sym { kind, name: i.name.clone(), scope: scope.map(str::to_string), file: self.file, span: i.span, def: false });
    }

    fn top(&mut self, s: &Stmt) {
        match &s.kind {
            StmtKind::Site { name, body } => {
                self.def(Kind::Site, name, None);
                self.body(body, Ctx::Other);
            }
            StmtKind::Defaults { body } => self.body(body, Ctx::Other),
            StmtKind::Dimension { name, .. } => self.def(Kind::Dimension, name, None),
            StmtKind::Relation { name, dims, value } => {
                self.def(Kind::Relation, name, None);
                dims.iter().for_each(|d| self.r(Kind::Dimension, d, None));
                self.coverage(value);
            }
            StmtKind::Coverage { name, expr } => {
                self.def(Kind::Coverage, name, None);
                self.coverage(expr);
            }
            StmtKind::Dataset { name, dims, body } => {
                self.def(Kind::Dataset, name, None);
                dims.iter().for_each(|d| self.r(Kind::Dimension, d, None));
                if let Some(b) = body {
                    self.body(b, Ctx::Other);
                }
            }
            StmtKind::Pipeline { name, body } => {
                self.def(Kind::Pipeline, name, None);
                self.body(body, Ctx::Pipeline(&name.name));
            }
            StmtKind::Campaign { name, body, .. } => {
                self.def(Kind::Campaign, name, None);
                self.body(body, Ctx::Campaign);
            }
            _ => self.stmt(s, Ctx::Top),
        }
    }

    fn body(&mut self, b: &Body, ctx: Ctx<'_>) {
        for s in &b.stmts {
            self.stmt(s, ctx);
        }
    }

    fn stmt(&mut self, s: &Stmt, ctx: Ctx<'_>) {
        let pipe = match ctx {
            Ctx::Pipeline(p) => Some(p),
            _ => None,
        };
        match &s.kind {
            StmtKind::Attr { key, value } => self.attr(key.name(), value, ctx),
            StmtKind::Config { name, extends, body } => {
                self.def(Kind::Config, name, pipe);
                if let Some(e) = extends {
                    self.r(Kind::Config, e, pipe);
                }
                let _ = body;
            }
            StmtKind::Step { name, over, after, body } => {
                match ctx {
                    Ctx::Campaign => {
                        if let Some(p) = &name.pipeline {
                            self.r(Kind::Pipeline, p, None);
                        }
                        self.r(Kind::Step, &name.name, name.pipeline.as_ref().map(|p| p.name.as_str()));
                    }
                    _ => self.def(Kind::Step, &name.name, pipe),
                }
                if let Some((dims, _)) = over {
                    dims.iter().for_each(|d| self.r(Kind::Dimension, d, None));
                }
                for d in after {
                    self.r(Kind::Step, &d.name, pipe);
                }
                if let Some(b) = body {
                    self.body(b, if matches!(ctx, Ctx::Campaign) { Ctx::Other } else { ctx });
                }
            }
            StmtKind::Use { pipeline, config } => {
                self.r(Kind::Pipeline, pipeline, None);
                if let Some(c) = config {
                    self.r(Kind::Config, c, Some(&pipeline.name));
                }
            }
            StmtKind::Cluster { name, body } => {
                self.def(Kind::Cluster, name, None);
                self.body(body, Ctx::Other);
            }
            StmtKind::OrderBefore { first, second } => {
                let k = if pipe.is_some() { Kind::Step } else { Kind::StepOrPipeline };
                self.r(k, first, pipe);
                self.r(k, second, pipe);
            }
            StmtKind::OrderSerial { step, dim } => {
                self.r(Kind::Step, step, pipe);
                self.r(Kind::Dimension, dim, None);
            }
            StmtKind::Equal { left, right } => {
                self.r(Kind::Dimension, left, None);
                self.r(Kind::Dimension, right, None);
            }
            StmtKind::Subset { name, value } => {
                self.def(Kind::Subset, name, pipe);
                self.names_in(value, Kind::Step, pipe);
            }
            StmtKind::Final { name, body } => {
                self.def(Kind::Final, name, None);
                self.body(body, Ctx::Other);
            }
            StmtKind::Env { .. } | StmtKind::Notify { .. } => {}
            StmtKind::Defaults { .. }
            | StmtKind::Site { .. }
            | StmtKind::Dimension { .. }
            | StmtKind::Relation { .. }
            | StmtKind::Coverage { .. }
            | StmtKind::Dataset { .. }
            | StmtKind::Pipeline { .. }
            | StmtKind::Campaign { .. } => self.top(s),
            StmtKind::Include { .. } | StmtKind::Error => {}
        }
    }

    fn names_in(&mut self, e: &Expr, kind: Kind, scope: Option<&str>) {
        match &e.kind {
            ExprKind::Ident(i) => self.r(kind, i, scope),
            ExprKind::List(items) => items.iter().for_each(|it| self.names_in(it, kind, scope)),
            ExprKind::Call { func, args } if func.name == "optional" => args.iter().for_each(|it| self.names_in(it, kind, scope)),
            _ => {}
        }
    }

    fn attr(&mut self, key: &str, value: &Expr, ctx: Ctx<'_>) {
        let pipe = match ctx {
            Ctx::Pipeline(p) => Some(p),
            _ => None,
        };
        match key {
            "inputs" | "outputs" => self.names_in(value, Kind::Dataset, None),
            "site" | "sites" | "avoid_sites" => self.names_in(value, Kind::Site, None),
            "steps" => self.names_in(value, Kind::Step, pipe),
            "by" | "split_by" => self.names_in(value, Kind::Dimension, None),
            "coverage" => self.coverage(value),
            "run" | "source" | "archive" => self.placeholders(value),
            _ => {}
        }
    }

    /// `{dim}` placeholders of a template string: references to dimensions; `{inputs.NAME}`
    /// and `{outputs.NAME}` (language 1.1): references to datasets.
    fn placeholders(&mut self, e: &Expr) {
        let ExprKind::Str(s) = &e.kind else { return };
        if s.had_escapes {
            return;
        }
        // The raw text is the value with quotes (no escapes, so offsets match).
        let raw = &s.value;
        let base = s.span.lo + 1;
        let b = raw.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'{' {
                if b.get(i + 1) == Some(&b'{') {
                    i += 2;
                    continue;
                }
                if let Some(end) = raw[i + 1..].find('}') {
                    let name = &raw[i + 1..i + 1 + end];
                    let word = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
                    let lo = base + i as u32 + 1;
                    if word(name) {
                        let id = Ident { name: name.to_string(), span: Span { lo, hi: lo + name.len() as u32 } };
                        self.r(Kind::Dimension, &id, None);
                    } else if let Some((dir, ds)) = name.split_once('.').filter(|(d, s)| matches!(*d, "inputs" | "outputs") && word(s)) {
                        let lo = lo + dir.len() as u32 + 1;
                        let id = Ident { name: ds.to_string(), span: Span { lo, hi: lo + ds.len() as u32 } };
                        self.r(Kind::Dataset, &id, None);
                    }
                    i += end + 2;
                    continue;
                }
            }
            i += 1;
        }
    }

    fn coverage(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Ident(i) => self.r(Kind::CoverageName, i, None),
            ExprKind::List(items) | ExprKind::Product(items) => items.iter().for_each(|it| self.coverage(it)),
            ExprKind::Member { base, .. } => self.coverage(base),
            ExprKind::SetChain { first, rest } => {
                self.coverage(first);
                rest.iter().for_each(|(_, it)| self.coverage(it));
            }
            ExprKind::Where { base, pred } => {
                self.coverage(base);
                self.pred(pred);
            }
            _ => {}
        }
    }

    fn pred(&mut self, p: &Pred) {
        match &p.kind {
            PredKind::Or(v) | PredKind::And(v) => v.iter().for_each(|x| self.pred(x)),
            PredKind::Not(x) => self.pred(x),
            PredKind::Cmp { lhs, rhs, .. } => {
                for o in [lhs, rhs] {
                    if let Operand::Ident(i) = o {
                        self.r(Kind::Dimension, i, None);
                    }
                }
            }
            PredKind::In { lhs, set, .. } => {
                if let Operand::Ident(i) = lhs {
                    self.r(Kind::Dimension, i, None);
                }
                self.coverage(set);
            }
            PredKind::Error => {}
        }
    }
}
