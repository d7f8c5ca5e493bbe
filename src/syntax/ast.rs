//! The syntax tree.  Every node carries a byte [`Span`] into its file.
//!
//! One statement type serves every body (grammar departure D1): the parser accepts any
//! statement in any block, and the checker decides what each scope allows.  Binary chains
//! are stored flat (`Vec`s, not nested boxes) so that the depth of the tree is bounded by
//! the bracket depth, which the parser limits; no recursion over a tree can overflow.

use crate::source::{FileId, Span};

#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StrLit {
    /// The value with escapes decoded.
    pub value: String,
    /// Span of the whole literal including quotes.
    pub span: Span,
    /// True when decoding changed byte offsets (an escape other than the brace forms), so
    /// placeholder spans inside the string are approximate.
    pub had_escapes: bool,
}

/// A language version: `bps 1` is 1.0, `bps 1.1` is 1.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
}

impl Version {
    pub const V1_0: Version = Version { major: 1, minor: 0 };
    pub const V1_1: Version = Version { major: 1, minor: 1 };
    /// The newest version this bpsc reads.
    pub const LATEST: Version = Version::V1_1;

    /// Is this a version this bpsc reads?
    pub fn supported(self) -> bool {
        self == Version::V1_0 || self == Version::V1_1
    }
}

impl std::fmt::Display for Version {
    /// As written in a header: `1`, `1.1`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.minor == 0 {
            write!(f, "{}", self.major)
        } else {
            write!(f, "{}.{}", self.major, self.minor)
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Module {
    pub file: FileId,
    /// `bps N` / `bps N.M` and its span, when present and well formed (also when the
    /// version is not supported; E105 was reported then).
    pub version: Option<(Version, Span)>,
    pub stmts: Vec<Stmt>,
    /// Comments (`# ...`), in order, for the formatter and the language server.
    pub comments: Vec<Span>,
}

impl Module {
    /// The version whose features this file may use: its header's, or the newest when the
    /// header is missing, malformed or unsupported (E104/E105 said so; gating features on a
    /// guess would only add errors).
    pub fn effective_version(&self) -> Version {
        match self.version {
            Some((v, _)) if v.supported() => v,
            _ => Version::LATEST,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Body {
    pub stmts: Vec<Stmt>,
    /// Span from `{` to `}` inclusive.
    pub span: Span,
    /// False when the closing brace is missing (a diagnostic was reported).
    pub closed: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Key {
    Ident(Ident),
    Str(StrLit),
}

impl Key {
    pub fn name(&self) -> &str {
        match self {
            Key::Ident(i) => &i.name,
            Key::Str(s) => &s.value,
        }
    }
    pub fn span(&self) -> Span {
        match self {
            Key::Ident(i) => i.span,
            Key::Str(s) => s.span,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Dep {
    pub name: Ident,
    /// `after P all`: a full barrier.
    pub all: Option<Span>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StepName {
    /// `PIPELINE.` qualifier (campaign overrides only).
    pub pipeline: Option<Ident>,
    pub name: Ident,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    /// `key = value`
    Attr {
        key: Key,
        value: Expr,
    },
    Include {
        path: StrLit,
    },
    Defaults {
        body: Body,
    },
    Site {
        name: Ident,
        body: Body,
    },
    Dimension {
        name: Ident,
        domain: Option<Expr>,
    },
    Relation {
        name: Ident,
        dims: Vec<Ident>,
        value: Expr,
    },
    Coverage {
        name: Ident,
        expr: Expr,
    },
    Dataset {
        name: Ident,
        dims: Vec<Ident>,
        body: Option<Body>,
    },
    Pipeline {
        name: Ident,
        body: Body,
    },
    Config {
        name: Ident,
        extends: Option<Ident>,
        body: Body,
    },
    Step {
        name: StepName,
        over: Option<(Vec<Ident>, Span)>,
        after: Vec<Dep>,
        body: Option<Body>,
    },
    Campaign {
        name: Ident,
        name_is_string: bool,
        body: Body,
    },
    Use {
        pipeline: Ident,
        config: Option<Ident>,
    },
    Cluster {
        name: Ident,
        body: Body,
    },
    Notify {
        body: Body,
    },
    Env {
        body: Body,
    },
    OrderBefore {
        first: Ident,
        second: Ident,
    },
    OrderSerial {
        step: Ident,
        dim: Ident,
    },
    /// `equal A = B` (language 1.1, top level): two dimensions that always hold the same value.
    Equal {
        left: Ident,
        right: Ident,
    },
    /// `final NAME { run = "...", when = ... }` (language 1.1, in a campaign): the job that
    /// runs after every other job.
    Final {
        name: Ident,
        body: Body,
    },
    /// `subset NAME = [steps]` (language 1.1, in a pipeline): a name for `--steps`.
    Subset {
        name: Ident,
        value: Expr,
    },
    /// A statement that failed to parse; its diagnostic was already reported.
    Error,
}

impl StmtKind {
    /// The word people use for this statement in messages.
    pub fn describe(&self) -> &'static str {
        match self {
            StmtKind::Attr { .. } => "setting",
            StmtKind::Include { .. } => "`include`",
            StmtKind::Defaults { .. } => "`defaults` block",
            StmtKind::Site { .. } => "`site` definition",
            StmtKind::Dimension { .. } => "`dimension` definition",
            StmtKind::Relation { .. } => "`relation` definition",
            StmtKind::Coverage { .. } => "named `coverage`",
            StmtKind::Dataset { .. } => "`dataset` definition",
            StmtKind::Pipeline { .. } => "`pipeline` definition",
            StmtKind::Config { .. } => "`config` definition",
            StmtKind::Step { .. } => "`step`",
            StmtKind::Campaign { .. } => "`campaign` definition",
            StmtKind::Use { .. } => "`use`",
            StmtKind::Cluster { .. } => "`cluster`",
            StmtKind::Notify { .. } => "`notify` block",
            StmtKind::Env { .. } => "`env` block",
            StmtKind::OrderBefore { .. } | StmtKind::OrderSerial { .. } => "`order` constraint",
            StmtKind::Equal { .. } => "`equal` declaration",
            StmtKind::Final { .. } => "`final` job",
            StmtKind::Subset { .. } => "`subset`",
            StmtKind::Error => "statement",
        }
    }

    pub fn body(&self) -> Option<&Body> {
        match self {
            StmtKind::Defaults { body }
            | StmtKind::Site { body, .. }
            | StmtKind::Pipeline { body, .. }
            | StmtKind::Config { body, .. }
            | StmtKind::Campaign { body, .. }
            | StmtKind::Cluster { body, .. }
            | StmtKind::Notify { body }
            | StmtKind::Env { body }
            | StmtKind::Final { body, .. } => Some(body),
            StmtKind::Dataset { body, .. } | StmtKind::Step { body, .. } => body.as_ref(),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeUnit {
    B,
    KiB,
    MiB,
    GiB,
    TiB,
    KB,
    MB,
    GB,
    TB,
}

impl SizeUnit {
    pub fn parse(s: &str) -> Option<SizeUnit> {
        Some(match s {
            "B" => SizeUnit::B,
            "KiB" => SizeUnit::KiB,
            "MiB" => SizeUnit::MiB,
            "GiB" => SizeUnit::GiB,
            "TiB" => SizeUnit::TiB,
            "KB" => SizeUnit::KB,
            "MB" => SizeUnit::MB,
            "GB" => SizeUnit::GB,
            "TB" => SizeUnit::TB,
            _ => return None,
        })
    }
    pub fn bytes(self) -> u64 {
        match self {
            SizeUnit::B => 1,
            SizeUnit::KiB => 1 << 10,
            SizeUnit::MiB => 1 << 20,
            SizeUnit::GiB => 1 << 30,
            SizeUnit::TiB => 1 << 40,
            SizeUnit::KB => 1_000,
            SizeUnit::MB => 1_000_000,
            SizeUnit::GB => 1_000_000_000,
            SizeUnit::TB => 1_000_000_000_000,
        }
    }
    pub const ALL: [&'static str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "KB", "MB", "GB", "TB"];
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SetOp {
    Union,
    Difference,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Int(i64),
    Float(f64),
    /// A size in bytes, with the unit as written.
    Size {
        bytes: u64,
        unit: SizeUnit,
    },
    /// A duration in seconds.
    Duration(u64),
    Str(StrLit),
    Bool(bool),
    Ident(Ident),
    List(Vec<Expr>),
    Range {
        lo: i64,
        hi: i64,
        inclusive: bool,
    },
    Call {
        func: Ident,
        args: Vec<Expr>,
    },
    /// `expr.column` (e.g. `table("x.csv").visit`).
    Member {
        base: Box<Expr>,
        member: Ident,
    },
    /// `a * b * c` (natural join).
    Product(Vec<Expr>),
    /// `a + b - c`: first operand, then (operator, operand) pairs.
    SetChain {
        first: Box<Expr>,
        rest: Vec<(SetOp, Expr)>,
    },
    Where {
        base: Box<Expr>,
        pred: Box<Pred>,
    },
    /// A value that failed to parse; already reported.
    Error,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Pred {
    pub kind: PredKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    Ident(Ident),
    Int(i64, Span),
    Float(f64, Span),
    Str(StrLit),
}

impl Operand {
    pub fn span(&self) -> Span {
        match self {
            Operand::Ident(i) => i.span,
            Operand::Int(_, s) | Operand::Float(_, s) => *s,
            Operand::Str(s) => s.span,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum PredKind {
    Or(Vec<Pred>),
    And(Vec<Pred>),
    Not(Box<Pred>),
    Cmp { lhs: Operand, op: CmpOp, rhs: Operand },
    In { lhs: Operand, negated: bool, set: Expr },
    Error,
}
