//! Errors of the relational operations (CSV errors live in `csv_load`).

use std::fmt;

use super::cmp::CmpOp;
use super::value::{DimKind, Value};

/// Which set operation reported a schema mismatch.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SetOp {
    Union,
    Difference,
}

impl fmt::Display for SetOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SetOp::Union => "union",
            SetOp::Difference => "difference",
        })
    }
}

/// An error from a relational operation. Dimension names are spelled out so a caller can build
/// a diagnostic without going back to the dictionaries.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum CoverageError {
    /// `A + B` / `A - B` where the two sides have different dimension sets.
    SchemaMismatch { op: SetOp, left: Vec<String>, right: Vec<String> },
    /// A projection or predicate names a dimension the relation does not have.
    UnknownDim { dim: String, schema: Vec<String> },
    /// The same dimension named twice (projection list, explicit schema, rename target).
    DuplicateDim { dim: String },
    /// `from_rows`: row `row` (0-based) has the wrong number of values.
    RowArity { row: usize, expected: usize, found: usize },
    /// An ordering comparison (`< <= > >=`) between a dimension and a literal of another kind
    /// (or on a dimension of mixed kind).
    TypeMismatch { dim: String, dim_kind: DimKind, op: CmpOp, literal: Value },
    /// An ordering comparison between two dimensions of different (or mixed) kinds.
    DimTypeMismatch { left: String, left_kind: DimKind, op: CmpOp, right: String, right_kind: DimKind },
}

impl fmt::Display for CoverageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoverageError::SchemaMismatch { op, left, right } => {
                write!(f, "{op} needs both sides over the same dimensions, got ({}) and ({})", left.join(", "), right.join(", "))
            }
            CoverageError::UnknownDim { dim, schema } => {
                write!(f, "dimension `{dim}` is not one of ({})", schema.join(", "))
            }
            CoverageError::DuplicateDim { dim } => write!(f, "dimension `{dim}` appears twice"),
            CoverageError::RowArity { row, expected, found } => {
                write!(f, "row {row} has {found} values, expected {expected}")
            }
            CoverageError::TypeMismatch { dim, dim_kind, op, literal } => {
                let shown = match literal {
                    super::Value::Int(i) => i.to_string(),
                    super::Value::Str(s) => format!("\"{s}\""),
                };
                write!(f, "cannot compare {dim_kind} dimension `{dim}` with {} {shown} using `{}`", literal.kind(), op.symbol())
            }
            CoverageError::DimTypeMismatch { left, left_kind, op, right, right_kind } => {
                write!(f, "cannot compare {left_kind} dimension `{left}` with {right_kind} dimension `{right}` using `{}`", op.symbol())
            }
        }
    }
}

impl std::error::Error for CoverageError {}
