//! Selection predicates.

use super::dict::{Dictionaries, DimId};
use super::error::CoverageError;
use super::ops::{filter_rows, positions};
use super::relation::Relation;
use super::value::{DimKind, Value};

pub use super::cmp::CmpOp;

/// A selection predicate over dimension names.
///
/// Typing: `==`/`!=`/`in`/`not in` accept any literal; a literal of the other kind simply
/// never equals (so `==` is false, `!=` true). `< <= > >=` need the dimension and the literal
/// to have the same kind (an empty dimension accepts anything); otherwise `select` fails up
/// front with [`CoverageError::TypeMismatch`]. The same rules apply to `CmpDims` between two
/// dimensions.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Pred {
    /// `dim OP literal`.
    Cmp(String, CmpOp, Value),
    /// `left OP right`, comparing two dimensions of the same row.
    CmpDims(String, CmpOp, String),
    /// `dim in [values]`.
    In(String, Vec<Value>),
    /// `dim not in [values]`.
    NotIn(String, Vec<Value>),
    /// `dim in start..end` (or `start..=end`): the dimension's value is an integer in range.
    InRange {
        dim: String,
        start: i64,
        end: i64,
        inclusive: bool,
    },
    /// All hold (true when empty).
    And(Vec<Pred>),
    /// Any holds (false when empty).
    Or(Vec<Pred>),
    Not(Box<Pred>),
}

impl Pred {
    pub fn cmp(dim: &str, op: CmpOp, v: impl Into<Value>) -> Pred {
        Pred::Cmp(dim.to_string(), op, v.into())
    }

    pub fn and(a: Pred, b: Pred) -> Pred {
        Pred::And(vec![a, b])
    }

    pub fn or(a: Pred, b: Pred) -> Pred {
        Pred::Or(vec![a, b])
    }

    #[allow(clippy::should_implement_trait)]
    pub fn not(p: Pred) -> Pred {
        Pred::Not(Box::new(p))
    }
}

/// The rows of `a` satisfying `pred`, in `a`'s (canonical) order. The predicate is fully
/// checked (dimension names, types) before any row is looked at; the first problem in
/// left-to-right order is reported.
pub fn select(a: &Relation, pred: &Pred, dicts: &Dictionaries) -> Result<Relation, CoverageError> {
    check(a, pred, dicts)?;
    let keep = eval(a, pred, dicts);
    Ok(filter_rows(a, &keep))
}

fn dim_of(a: &Relation, name: &str, dicts: &Dictionaries) -> Result<(usize, DimId), CoverageError> {
    let p = positions(a, &[name], dicts)?[0];
    Ok((p, a.schema[p]))
}

fn check(a: &Relation, pred: &Pred, dicts: &Dictionaries) -> Result<(), CoverageError> {
    match pred {
        Pred::Cmp(dim, op, lit) => {
            let (_, d) = dim_of(a, dim, dicts)?;
            let kind = dicts.dict(d).kind();
            if op.is_ordering() && !kind.orders_with(lit.kind()) {
                return Err(CoverageError::TypeMismatch { dim: dim.clone(), dim_kind: kind, op: *op, literal: lit.clone() });
            }
            Ok(())
        }
        Pred::CmpDims(l, op, r) => {
            let (_, dl) = dim_of(a, l, dicts)?;
            let (_, dr) = dim_of(a, r, dicts)?;
            let (kl, kr) = (dicts.dict(dl).kind(), dicts.dict(dr).kind());
            let ok = match (kl, kr) {
                (DimKind::Empty, _) | (_, DimKind::Empty) => true,
                (DimKind::Mixed, _) | (_, DimKind::Mixed) => false,
                _ => kl == kr,
            };
            if op.is_ordering() && !ok {
                return Err(CoverageError::DimTypeMismatch { left: l.clone(), left_kind: kl, op: *op, right: r.clone(), right_kind: kr });
            }
            Ok(())
        }
        Pred::In(dim, _) | Pred::NotIn(dim, _) | Pred::InRange { dim, .. } => dim_of(a, dim, dicts).map(|_| ()),
        Pred::And(ps) | Pred::Or(ps) => ps.iter().try_for_each(|p| check(a, p, dicts)),
        Pred::Not(p) => check(a, p, dicts),
    }
}

/// Row mask of a leaf given a per-code truth table.
fn by_table(col: &[u32], table: &[bool]) -> Vec<bool> {
    col.iter().map(|&c| table[c as usize]).collect()
}

/// Per-code truth table of "value is one of `values`".
fn member_table(d: DimId, values: &[Value], dicts: &Dictionaries) -> Vec<bool> {
    let dict = dicts.dict(d);
    let mut table = vec![false; dict.len()];
    for v in values {
        if let Some(c) = dict.code(v) {
            table[c as usize] = true;
        }
    }
    table
}

fn eval(a: &Relation, pred: &Pred, dicts: &Dictionaries) -> Vec<bool> {
    // `check` has run, so names resolve.
    let col_of = |name: &str| {
        let (p, d) = dim_of(a, name, dicts).expect("checked");
        (&a.cols[p][..], d)
    };
    match pred {
        Pred::Cmp(dim, op, lit) => {
            let (col, d) = col_of(dim);
            let dict = dicts.dict(d);
            match op {
                CmpOp::Eq | CmpOp::Ne => {
                    let want = *op == CmpOp::Eq;
                    match dict.code(lit) {
                        Some(code) => col.iter().map(|&c| (c == code) == want).collect(),
                        None => vec![!want; a.len],
                    }
                }
                _ => {
                    let table: Vec<bool> = dict.values().iter().map(|v| op.holds(v.cmp(lit))).collect();
                    by_table(col, &table)
                }
            }
        }
        Pred::CmpDims(l, op, r) => {
            let (cl, dl) = col_of(l);
            let (cr, dr) = col_of(r);
            if dl == dr {
                // Same dictionary: compare ranks (equality of codes for == / !=).
                let dict = dicts.dict(dl);
                cl.iter().zip(cr).map(|(&x, &y)| op.holds(dict.rank(x).cmp(&dict.rank(y)))).collect()
            } else {
                let (vl, vr) = (dicts.dict(dl).values(), dicts.dict(dr).values());
                cl.iter().zip(cr).map(|(&x, &y)| op.holds(vl[x as usize].cmp(&vr[y as usize]))).collect()
            }
        }
        Pred::In(dim, values) => {
            let (col, d) = col_of(dim);
            by_table(col, &member_table(d, values, dicts))
        }
        Pred::NotIn(dim, values) => {
            let (col, d) = col_of(dim);
            let mut table = member_table(d, values, dicts);
            table.iter_mut().for_each(|t| *t = !*t);
            by_table(col, &table)
        }
        Pred::InRange { dim, start, end, inclusive } => {
            let (col, d) = col_of(dim);
            let table: Vec<bool> = dicts
                .dict(d)
                .values()
                .iter()
                .map(|v| match v {
                    Value::Int(i) => *i >= *start && if *inclusive { *i <= *end } else { *i < *end },
                    Value::Str(_) => false,
                })
                .collect();
            by_table(col, &table)
        }
        Pred::And(ps) => {
            let mut mask = vec![true; a.len];
            for p in ps {
                let m = eval(a, p, dicts);
                mask.iter_mut().zip(m).for_each(|(x, y)| *x &= y);
            }
            mask
        }
        Pred::Or(ps) => {
            let mut mask = vec![false; a.len];
            for p in ps {
                let m = eval(a, p, dicts);
                mask.iter_mut().zip(m).for_each(|(x, y)| *x |= y);
            }
            mask
        }
        Pred::Not(p) => {
            let mut m = eval(a, p, dicts);
            m.iter_mut().for_each(|x| *x = !*x);
            m
        }
    }
}
