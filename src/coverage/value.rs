//! Dimension values and their kinds.

use std::fmt;

/// One dimension value: an integer or a string.
///
/// The derived order is the *value order* used for canonical row order: every integer sorts
/// before every string, integers compare numerically and strings compare lexicographically by
/// their UTF-8 bytes (which is the same as comparing by code points).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Value {
    Int(i64),
    Str(Box<str>),
}

impl Value {
    pub fn kind(&self) -> ValueKind {
        match self {
            Value::Int(_) => ValueKind::Int,
            Value::Str(_) => ValueKind::Str,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Str(_) => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Int(_) => None,
            Value::Str(s) => Some(s),
        }
    }

    /// The rule used for CSV fields: text that parses as an `i64` (Rust's `str::parse`, so an
    /// optional leading `+`/`-` and decimal digits) is an integer, anything else a string.
    /// The caller trims whitespace first.
    pub fn parse_field(s: &str) -> Value {
        match s.parse::<i64>() {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Str(s.into()),
        }
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<i32> for Value {
    fn from(i: i32) -> Self {
        Value::Int(i64::from(i))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.into())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s.into_boxed_str())
    }
}

/// Integers print in decimal, strings print raw (no quotes): the form used in placeholders.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => f.write_str(s),
        }
    }
}

/// The kind of one value.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum ValueKind {
    Int,
    Str,
}

impl fmt::Display for ValueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueKind::Int => "integer",
            ValueKind::Str => "string",
        })
    }
}

/// The kind of a dimension, i.e. of all values its dictionary holds.
///
/// `Mixed` is representable (nothing stops a caller from interning `1` and `"a"` into the same
/// dimension, e.g. from an inline list `[1, "a"]`); such a dimension supports `==`, `!=`,
/// `in`, joins and set operations under the value order (ints before strings), but ordering
/// comparisons (`<` etc.) on it are rejected as a type mismatch.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum DimKind {
    /// No values interned yet.
    Empty,
    Int,
    Str,
    Mixed,
}

impl DimKind {
    /// Whether an ordering comparison between this dimension and a value of `kind` is
    /// well-typed.
    pub fn orders_with(self, kind: ValueKind) -> bool {
        matches!((self, kind), (DimKind::Empty, _) | (DimKind::Int, ValueKind::Int) | (DimKind::Str, ValueKind::Str))
    }
}

impl fmt::Display for DimKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DimKind::Empty => "empty",
            DimKind::Int => "integer",
            DimKind::Str => "string",
            DimKind::Mixed => "mixed integer/string",
        })
    }
}
