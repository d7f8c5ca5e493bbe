//! The checked semantic model: every definition of a program, typed, with locations.

use crate::source::FileId;
use crate::source::Loc;
use crate::syntax::ast::Expr;

#[derive(Clone, Debug, PartialEq)]
pub enum Software {
    Container(String),
    Setup(String),
}

/// A typed setting value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Size(u64),
    Duration(u64),
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    Word(String),
    IntList(Vec<i64>),
    StrList(Vec<String>),
    Names(Vec<String>),
    Software(Software),
}

impl Value {
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Size(v) | Value::Duration(v) => Some(*v),
            Value::Int(v) => u64::try_from(*v).ok(),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Word(s) => Some(s),
            _ => None,
        }
    }
}

pub fn fmt_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 5] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("B", 1)];
    for (u, m) in UNITS {
        if bytes >= m && bytes % m == 0 {
            return format!("{}{u}", bytes / m);
        }
    }
    if bytes == 0 {
        return "0B".into();
    }
    // Not a whole multiple: the largest unit with a decimal.
    for (u, m) in UNITS {
        if bytes >= m {
            return format!("{:.2}{u}", bytes as f64 / m as f64);
        }
    }
    format!("{bytes}B")
}

pub fn fmt_duration(secs: u64) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = secs;
    for (u, m) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
        if rest >= m {
            out.push_str(&format!("{}{u}", rest / m));
            rest %= m;
        }
    }
    out
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Size(b) => write!(f, "{}", fmt_size(*b)),
            Value::Duration(s) => write!(f, "{}", fmt_duration(*s)),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => {
                if x.fract() == 0.0 && x.abs() < 1e15 {
                    write!(f, "{x:.1}")
                } else {
                    write!(f, "{x}")
                }
            }
            Value::Str(s) => write!(f, "{}", quote(s)),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Word(w) => write!(f, "{w}"),
            Value::IntList(v) => write!(f, "[{}]", v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")),
            Value::StrList(v) => write!(f, "[{}]", v.iter().map(|x| quote(x)).collect::<Vec<_>>().join(", ")),
            Value::Names(v) => write!(f, "[{}]", v.join(", ")),
            Value::Software(Software::Container(s)) => write!(f, "container({})", quote(s)),
            Value::Software(Software::Setup(s)) => write!(f, "setup({})", quote(s)),
        }
    }
}

impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Size(b) | Value::Duration(b) => s.serialize_u64(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(x) => s.serialize_f64(*x),
            Value::Str(v) | Value::Word(v) => s.serialize_str(v),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::IntList(v) => v.serialize(s),
            Value::StrList(v) | Value::Names(v) => v.serialize(s),
            Value::Software(Software::Container(v)) => s.serialize_str(&format!("container:{v}")),
            Value::Software(Software::Setup(v)) => s.serialize_str(&format!("setup:{v}")),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Setting {
    pub key: &'static str,
    pub value: Value,
    /// Location of the whole `key = value`.
    pub loc: Loc,
    /// For name values (`site`, `sites`, `avoid_sites`): where each name is written, in order.
    pub name_locs: Vec<Loc>,
}

/// The settings one scope writes, in source order (later entries of the same key win,
/// after a duplicate-key diagnostic).
#[derive(Clone, Debug, Default)]
pub struct Layer {
    pub settings: Vec<Setting>,
    pub env: Vec<(String, String, Loc)>,
}

impl Layer {
    pub fn get(&self, key: &str) -> Option<&Setting> {
        self.settings.iter().rev().find(|s| s.key == key)
    }
}

/// A piece of a template string.
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    Lit(String),
    /// `{name}` / `{config.key}`; `loc` covers the braces.
    Ph {
        name: String,
        loc: Loc,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    pub text: String,
    pub parts: Vec<Part>,
    pub loc: Loc,
}

impl Template {
    pub fn placeholders(&self) -> impl Iterator<Item = (&str, Loc)> {
        self.parts.iter().filter_map(|p| match p {
            Part::Ph { name, loc } => Some((name.as_str(), *loc)),
            Part::Lit(_) => None,
        })
    }
}

/// What a placeholder's name refers to (the checker has verified it for its template).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placeholder<'a> {
    /// `{config.KEY}`: a parameter of the pipeline's chosen config.
    Config(&'a str),
    /// `{inputs.NAME}` (language 1.1): the paths of input dataset NAME of the quantum (all of
    /// them, each quoted, for a gather).
    Input(&'a str),
    /// `{outputs.NAME}` (language 1.1): the paths of output dataset NAME of the quantum.
    Output(&'a str),
    /// Anything else: a dimension of the step, or a fixed name (`{campaign}`, `{inputs}` ...).
    Name(&'a str),
}

impl<'a> Placeholder<'a> {
    pub fn of(name: &'a str) -> Placeholder<'a> {
        if let Some(k) = name.strip_prefix("config.") {
            Placeholder::Config(k)
        } else if let Some(d) = name.strip_prefix("inputs.") {
            Placeholder::Input(d)
        } else if let Some(d) = name.strip_prefix("outputs.") {
            Placeholder::Output(d)
        } else {
            Placeholder::Name(name)
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Named {
    pub name: String,
    pub loc: Loc,
}

#[derive(Clone, Debug)]
pub enum Literal {
    Int(i64),
    Str(String),
}

#[derive(Clone, Debug)]
pub enum Domain {
    Range {
        lo: i64,
        hi: i64,
        inclusive: bool,
    },
    List(Vec<Literal>),
    /// `table(path).column`; `path` is resolved against the declaring file.
    Table {
        path: std::path::PathBuf,
        column: String,
        loc: Loc,
        column_loc: Loc,
    },
}

#[derive(Clone, Debug)]
pub struct Dim {
    pub name: String,
    pub loc: Loc,
    pub domain: Option<Domain>,
    pub domain_loc: Option<Loc>,
}

#[derive(Clone, Debug)]
pub enum RelSource {
    Table { path: std::path::PathBuf, loc: Loc },
    Expr { expr: Expr, file: FileId },
}

#[derive(Clone, Debug)]
pub struct Relation {
    pub name: String,
    pub loc: Loc,
    pub dims: Vec<Named>,
    pub source: RelSource,
}

#[derive(Clone, Debug)]
pub struct NamedCoverage {
    pub name: String,
    pub loc: Loc,
    pub expr: Expr,
    pub file: FileId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    PreJob,
    InJob,
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Persist {
    Archive,
    Scratch,
    Discard,
}

#[derive(Clone, Debug)]
pub struct Dataset {
    pub name: String,
    pub loc: Loc,
    pub dims: Vec<Named>,
    pub source: Option<Template>,
    pub stage: Option<(Stage, Loc)>,
    pub persist: Option<(Persist, Loc)>,
    pub archive: Option<Template>,
    pub verify: Option<bool>,
}

#[derive(Clone, Debug)]
pub struct Site {
    pub name: String,
    pub loc: Loc,
    pub layer: Layer,
    pub backend: Option<(String, Loc)>,
    pub shared_fs: Option<bool>,
    pub scratch: Option<Template>,
    pub max_memory: Option<(u64, Loc)>,
    pub max_cpus: Option<(i64, Loc)>,
    pub max_walltime: Option<(u64, Loc)>,
    pub max_array_size: Option<(i64, Loc)>,
    /// Language 1.1: the most jobs the campaign may have queued at the site at once.
    pub max_submit: Option<(i64, Loc)>,
    /// Language 1.1: the batch controller the site's jobs go to (default: the site itself).
    pub controller: Option<(String, Loc)>,
}

#[derive(Clone, Debug)]
pub enum ConfigValue {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    /// Sizes, durations, lists and names, kept as written.
    Other(String),
}

impl std::fmt::Display for ConfigValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigValue::Int(i) => write!(f, "{i}"),
            ConfigValue::Float(x) => write!(f, "{x}"),
            ConfigValue::Str(s) | ConfigValue::Other(s) => write!(f, "{s}"),
            ConfigValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub name: String,
    pub loc: Loc,
    pub extends: Option<Named>,
    pub params: Vec<(String, ConfigValue, Loc)>,
}

#[derive(Clone, Debug)]
pub struct DepRef {
    pub step: Named,
    pub all: bool,
}

#[derive(Clone, Debug)]
pub struct InputRef {
    pub dataset: Named,
    pub optional: bool,
}

#[derive(Clone, Debug)]
pub struct Step {
    pub name: String,
    pub loc: Loc,
    pub over: Vec<Named>,
    pub over_loc: Option<Loc>,
    pub after: Vec<DepRef>,
    pub run: Option<Template>,
    pub inputs: Vec<InputRef>,
    pub outputs: Vec<Named>,
    pub layer: Layer,
}

#[derive(Clone, Debug)]
pub enum Order {
    Before { first: Named, second: Named, loc: Loc },
    Serial { step: Named, dim: Named, loc: Loc },
}

/// `subset NAME = [steps]` (language 1.1): a name that `--steps` expands to these steps of
/// the pipeline (see [`super::subsets::expand_steps`]).  Every step exists and is listed once.
#[derive(Clone, Debug)]
pub struct Subset {
    pub name: String,
    pub loc: Loc,
    pub steps: Vec<Named>,
}

#[derive(Clone, Debug)]
pub struct Pipeline {
    pub name: String,
    pub loc: Loc,
    pub layer: Layer,
    pub configs: Vec<Config>,
    pub steps: Vec<Step>,
    pub orders: Vec<Order>,
    /// Named step subsets (language 1.1), in source order.
    pub subsets: Vec<Subset>,
}

impl Pipeline {
    pub fn subset(&self, name: &str) -> Option<&Subset> {
        self.subsets.iter().find(|s| s.name == name)
    }
}

#[derive(Clone, Debug)]
pub struct Use {
    pub pipeline: Named,
    pub config: Option<Named>,
    pub loc: Loc,
}

#[derive(Clone, Debug)]
pub struct Override {
    pub pipeline: Option<Named>,
    pub step: Named,
    pub loc: Loc,
    pub layer: Layer,
}

#[derive(Clone, Debug)]
pub struct Cluster {
    pub name: String,
    pub loc: Loc,
    pub steps: Vec<Named>,
    pub by: Vec<Named>,
    pub size: Option<(u32, Loc)>,
    /// `split_by` (language 1.1; only with `by` and `max_quanta`): each `by` group is ordered
    /// by these dimensions' values and cut into consecutive jobs of at most `max_quanta`
    /// quanta, never splitting one `split_by` value across two jobs.  Each is a dimension of
    /// every step of the cluster (or equal to one: [`EqualDims::find_in`]) and not in `by`.
    pub split_by: Vec<Named>,
    /// `max_quanta` (language 1.1; only with `split_by`), at least 1.
    pub max_quanta: Option<(u32, Loc)>,
    /// `max_running` (language 1.1): at most this many jobs of the cluster run at once.
    pub max_running: Option<(u32, Loc)>,
}

#[derive(Clone, Debug)]
pub struct Notify {
    pub loc: Loc,
    pub on: Vec<Named>,
    pub slow_after: Option<u64>,
    pub command: Option<Template>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderMode {
    BreadthFirst,
    DepthFirst,
}

/// When a campaign's `final` job runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinalWhen {
    /// Whatever happened (also after a cancel, where the engine allows it): the default.
    Always,
    /// Only when every other job succeeded.
    Success,
    /// Only when some job failed for good.
    Failure,
}

/// `final NAME { run = "...", when = ... }` (language 1.1): one job after every other job,
/// on the engine's final-node mechanism, after the provenance job.  Its `run` has the
/// placeholders of a step over `()` (checked); its settings are
/// [`super::resolve::resolve_final`]'s.
#[derive(Clone, Debug)]
pub struct FinalJob {
    pub name: String,
    pub loc: Loc,
    /// `None` only after an error was reported.
    pub run: Option<Template>,
    pub when: FinalWhen,
    /// Where `when` is written (`None`: the default, `always`).
    pub when_loc: Option<Loc>,
}

#[derive(Clone, Debug)]
pub struct Campaign {
    pub name: String,
    pub loc: Loc,
    pub uses: Vec<Use>,
    pub coverage: Option<(Expr, FileId, Loc)>,
    pub layer: Layer,
    pub overrides: Vec<Override>,
    pub clusters: Vec<Cluster>,
    pub notify: Option<Notify>,
    pub orders: Vec<Order>,
    pub order_mode: OrderMode,
    /// Where `order = ...` is written.
    pub order_loc: Option<Loc>,
    /// The user's final job (language 1.1; at most one per campaign).
    pub final_job: Option<FinalJob>,
}

#[derive(Clone, Debug, Default)]
pub struct Model {
    pub dims: Vec<Dim>,
    pub relations: Vec<Relation>,
    pub coverages: Vec<NamedCoverage>,
    pub datasets: Vec<Dataset>,
    pub sites: Vec<Site>,
    pub defaults: Layer,
    pub pipelines: Vec<Pipeline>,
    pub campaigns: Vec<Campaign>,
    /// Top-level order constraints.
    pub orders: Vec<Order>,
    /// `equal A = B` declarations (language 1.1), in source order.
    pub equals: Vec<Equality>,
    /// The classes of dimensions that `equals` makes one (computed by [`crate::check::check`]
    /// before verification, from every equality between two different names).
    pub equal_dims: EqualDims,
}

/// `equal A = B` (language 1.1): dimensions `A` and `B` always hold the same value for a data
/// ID.  Lowering joins them as one: an identity relation, no table.
#[derive(Clone, Debug)]
pub struct Equality {
    pub left: Named,
    pub right: Named,
    /// The whole statement.
    pub loc: Loc,
}

/// Dimensions made one by `equal` declarations: the classes of the equivalence they
/// generate (symmetric and transitive).  A dimension in no equality is its own class.
#[derive(Clone, Debug, Default)]
pub struct EqualDims {
    /// Classes of two or more names; each in order of first mention.
    classes: Vec<Vec<String>>,
}

impl EqualDims {
    pub fn new(equals: &[Equality]) -> EqualDims {
        let mut classes: Vec<Vec<String>> = Vec::new();
        for e in equals {
            let (a, b) = (&e.left.name, &e.right.name);
            if a == b {
                continue;
            }
            let ia = classes.iter().position(|c| c.contains(a));
            let ib = classes.iter().position(|c| c.contains(b));
            match (ia, ib) {
                (Some(i), Some(j)) if i == j => {}
                (Some(i), Some(j)) => {
                    let (lo, hi) = (i.min(j), i.max(j));
                    let moved = classes.remove(hi);
                    classes[lo].extend(moved);
                }
                (Some(i), None) => classes[i].push(b.clone()),
                (None, Some(j)) => classes[j].push(a.clone()),
                (None, None) => classes.push(vec![a.clone(), b.clone()]),
            }
        }
        EqualDims { classes }
    }

    /// The classes of two or more dimensions.
    pub fn classes(&self) -> &[Vec<String>] {
        &self.classes
    }

    /// Do `a` and `b` always hold the same value (the same dimension, or declared equal)?
    pub fn same(&self, a: &str, b: &str) -> bool {
        a == b || self.classes.iter().any(|c| c.iter().any(|x| x == a) && c.iter().any(|x| x == b))
    }

    /// The dimensions equal to `a`, itself included.
    pub fn class_of<'a>(&'a self, a: &'a str) -> Vec<&'a str> {
        match self.classes.iter().find(|c| c.iter().any(|x| x == a)) {
            Some(c) => c.iter().map(|s| s.as_str()).collect(),
            None => vec![a],
        }
    }

    /// One name for `a`'s class: its first-mentioned member.
    pub fn canonical<'a>(&'a self, a: &'a str) -> &'a str {
        self.classes.iter().find(|c| c.iter().any(|x| x == a)).and_then(|c| c.first()).map(|s| s.as_str()).unwrap_or(a)
    }

    /// The dimension of `dims` (a step's `over`) that is `d` or equal to it: `d` itself first.
    pub fn find_in<'a>(&self, dims: &'a [Named], d: &str) -> Option<&'a Named> {
        dims.iter().find(|x| x.name == d).or_else(|| dims.iter().find(|x| self.same(&x.name, d)))
    }
}

impl Model {
    pub fn dim(&self, name: &str) -> Option<&Dim> {
        self.dims.iter().find(|d| d.name == name)
    }
    pub fn relation(&self, name: &str) -> Option<&Relation> {
        self.relations.iter().find(|d| d.name == name)
    }
    pub fn coverage(&self, name: &str) -> Option<&NamedCoverage> {
        self.coverages.iter().find(|d| d.name == name)
    }
    pub fn dataset(&self, name: &str) -> Option<&Dataset> {
        self.datasets.iter().find(|d| d.name == name)
    }
    pub fn site(&self, name: &str) -> Option<&Site> {
        self.sites.iter().find(|d| d.name == name)
    }
    pub fn pipeline(&self, name: &str) -> Option<&Pipeline> {
        self.pipelines.iter().find(|d| d.name == name)
    }
}
