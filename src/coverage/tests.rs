//! Hand-computed cases, CSV diagnostics, a property test against a naive reference, and an
//! ignored performance demo.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::ops::{difference_with, join_with, KeyPath};
use super::relation::{canonicalize_with, SortPath};
use super::*;

fn i(x: i64) -> Value {
    Value::Int(x)
}

fn s(x: &str) -> Value {
    Value::from(x)
}

fn rel(d: &mut Dictionaries, dims: &[&str], rows: Vec<Vec<Value>>) -> Relation {
    Relation::from_rows(d, dims, rows).unwrap()
}

fn names(r: &Relation, d: &Dictionaries) -> Vec<String> {
    r.dim_names(d).into_iter().map(str::to_string).collect()
}

// ---------------------------------------------------------------- constructors

#[test]
fn range_constructors() {
    let mut d = Dictionaries::new();
    let r = Relation::from_range(&mut d, "x", 2, 5, false);
    assert_eq!(r.to_values(&d), vec![vec![i(2)], vec![i(3)], vec![i(4)]]);
    let r = Relation::from_range(&mut d, "x", -1, 1, true);
    assert_eq!(r.to_values(&d), vec![vec![i(-1)], vec![i(0)], vec![i(1)]]);
    assert!(Relation::from_range(&mut d, "x", 3, 3, false).is_empty());
    assert!(Relation::from_range(&mut d, "x", 4, 3, true).is_empty());
    assert_eq!(Relation::from_range(&mut d, "x", 3, 3, true).len(), 1);
    assert_eq!(names(&r, &d), vec!["x"]);
}

#[test]
fn values_are_sorted_by_value_not_code() {
    let mut d = Dictionaries::new();
    let r = Relation::from_values(&mut d, "b", [s("r"), s("g"), s("i"), s("g"), s("Z")]);
    assert_eq!(r.to_values(&d), vec![vec![s("Z")], vec![s("g")], vec![s("i")], vec![s("r")]]);
    // Codes are insertion order; the column is in value order.
    let dim = d.dim_id("b").unwrap();
    assert_eq!(r.column(0), &[3, 1, 2, 0]);
    assert_eq!(d.code(dim, &s("g")), Some(1));
    assert_eq!(d.decode(dim, 0), &s("r"));
    assert_eq!(d.dict(dim).rank(0), 3);
    // Integers numerically (not as text), all integers before all strings (mixed dimension).
    let r = Relation::from_values(&mut d, "m", [i(10), s("9"), i(9), i(-2), s("10")]);
    assert_eq!(r.to_values(&d), vec![vec![i(-2)], vec![i(9)], vec![i(10)], vec![s("10")], vec![s("9")]]);
    assert_eq!(d.dict(d.dim_id("m").unwrap()).kind(), DimKind::Mixed);
}

#[test]
fn from_rows_errors() {
    let mut d = Dictionaries::new();
    assert_eq!(
        Relation::from_rows(&mut d, &["a", "b"], vec![vec![i(1), i(2)], vec![i(1)]]),
        Err(CoverageError::RowArity { row: 1, expected: 2, found: 1 })
    );
    assert_eq!(Relation::from_rows(&mut d, &["a", "a"], Vec::<Vec<Value>>::new()), Err(CoverageError::DuplicateDim { dim: "a".into() }));
}

#[test]
fn ranks_follow_growth() {
    let mut d = Dictionaries::new();
    let x = d.dim("x");
    let a = Relation::from_values(&mut d, "x", [i(5), i(1)]);
    assert_eq!(d.dict(x).rank(0), 1);
    // Growing the dictionary invalidates the rank cache; existing relations stay canonical.
    let b = Relation::from_values(&mut d, "x", [i(3), i(0)]);
    assert_eq!(d.dict(x).rank(0), 3);
    let u = union(&a, &b, &d).unwrap();
    assert_eq!(u.to_values(&d), vec![vec![i(0)], vec![i(1)], vec![i(3)], vec![i(5)]]);
}

// ---------------------------------------------------------------- join

#[test]
fn cross_product() {
    let mut d = Dictionaries::new();
    let a = Relation::from_values(&mut d, "x", [i(2), i(1)]);
    let b = Relation::from_values(&mut d, "y", [s("b"), s("a"), s("c")]);
    let j = join(&a, &b, &d);
    assert_eq!(names(&j, &d), vec!["x", "y"]);
    assert_eq!(
        j.to_values(&d),
        vec![vec![i(1), s("a")], vec![i(1), s("b")], vec![i(1), s("c")], vec![i(2), s("a")], vec![i(2), s("b")], vec![i(2), s("c")],]
    );
    let j = join(&b, &a, &d);
    assert_eq!(names(&j, &d), vec!["y", "x"]);
    assert_eq!(j.to_values(&d)[..2], [vec![s("a"), i(1)], vec![s("a"), i(2)]]);
}

#[test]
fn join_one_shared_dim() {
    let mut d = Dictionaries::new();
    let exposure =
        rel(&mut d, &["visit", "band"], vec![vec![i(10), s("r")], vec![i(11), s("g")], vec![i(12), s("r")], vec![i(13), s("z")]]);
    let filters = rel(&mut d, &["band", "filter"], vec![vec![s("r"), s("HSC-R")], vec![s("r"), s("HSC-R2")], vec![s("g"), s("HSC-G")]]);
    let expect = vec![
        vec![i(10), s("r"), s("HSC-R")],
        vec![i(10), s("r"), s("HSC-R2")],
        vec![i(11), s("g"), s("HSC-G")],
        vec![i(12), s("r"), s("HSC-R")],
        vec![i(12), s("r"), s("HSC-R2")],
    ];
    let j = join(&exposure, &filters, &d);
    assert_eq!(names(&j, &d), vec!["visit", "band", "filter"]);
    assert_eq!(j.to_values(&d), expect);
    // Left side smaller than right: built on the left, output re-sorted by left row.
    let small = rel(&mut d, &["band"], vec![vec![s("r")]]);
    let j = join(&small, &filters, &d);
    assert_eq!(j.to_values(&d), vec![vec![s("r"), s("HSC-R")], vec![s("r"), s("HSC-R2")]]);
    let j = join(&filters, &exposure, &d);
    assert_eq!(names(&j, &d), vec!["band", "filter", "visit"]);
    assert_eq!(
        j.to_values(&d),
        vec![
            vec![s("g"), s("HSC-G"), i(11)],
            vec![s("r"), s("HSC-R"), i(10)],
            vec![s("r"), s("HSC-R"), i(12)],
            vec![s("r"), s("HSC-R2"), i(10)],
            vec![s("r"), s("HSC-R2"), i(12)],
        ]
    );
}

#[test]
fn join_two_shared_dims() {
    let mut d = Dictionaries::new();
    let a = rel(
        &mut d,
        &["visit", "detector", "x"],
        vec![vec![i(1), i(1), s("p")], vec![i(1), i(2), s("q")], vec![i(2), i(1), s("r")], vec![i(2), i(2), s("s")]],
    );
    // Shared dims in the other order on the right.
    let b = rel(
        &mut d,
        &["detector", "patch", "visit"],
        vec![vec![i(2), i(7), i(1)], vec![i(2), i(5), i(1)], vec![i(1), i(9), i(2)], vec![i(3), i(9), i(2)]],
    );
    let expect = vec![vec![i(1), i(2), s("q"), i(5)], vec![i(1), i(2), s("q"), i(7)], vec![i(2), i(1), s("r"), i(9)]];
    let j = join(&a, &b, &d);
    assert_eq!(names(&j, &d), vec!["visit", "detector", "x", "patch"]);
    assert_eq!(j.to_values(&d), expect);
    for path in [KeyPath::Hashed, KeyPath::Wide] {
        assert_eq!(join_with(&a, &b, &d, path), j);
    }
}

#[test]
fn join_identity_and_empty() {
    let mut d = Dictionaries::new();
    let a = rel(&mut d, &["x", "y"], vec![vec![i(1), i(2)], vec![i(0), i(5)]]);
    assert_eq!(join(&Relation::unit(), &a, &d), a);
    assert_eq!(join(&a, &Relation::unit(), &d), a);
    let e = Relation::empty(vec![d.dim("y"), d.dim("z")]);
    let j = join(&a, &e, &d);
    assert!(j.is_empty());
    assert_eq!(names(&j, &d), vec!["x", "y", "z"]);
    // All of b's dims shared: a semijoin.
    let b = rel(&mut d, &["y"], vec![vec![i(5)], vec![i(6)]]);
    assert_eq!(join(&a, &b, &d).to_values(&d), vec![vec![i(0), i(5)]]);
}

// ---------------------------------------------------------------- union, difference

#[test]
fn union_aligns_columns() {
    let mut d = Dictionaries::new();
    let a = rel(&mut d, &["x", "b"], vec![vec![i(2), s("r")], vec![i(1), s("g")]]);
    let b = rel(&mut d, &["b", "x"], vec![vec![s("g"), i(1)], vec![s("a"), i(3)], vec![s("i"), i(0)]]);
    let u = union(&a, &b, &d).unwrap();
    assert_eq!(names(&u, &d), vec!["x", "b"]);
    assert_eq!(u.to_values(&d), vec![vec![i(0), s("i")], vec![i(1), s("g")], vec![i(2), s("r")], vec![i(3), s("a")]]);
    let u2 = union(&b, &a, &d).unwrap();
    assert_eq!(names(&u2, &d), vec!["b", "x"]);
    assert_eq!(u2.len(), 4);
    assert_eq!(u2.to_values(&d)[0], vec![s("a"), i(3)]);
    let c = rel(&mut d, &["x"], vec![vec![i(1)]]);
    assert_eq!(
        union(&a, &c, &d),
        Err(CoverageError::SchemaMismatch { op: SetOp::Union, left: vec!["x".into(), "b".into()], right: vec!["x".into()] })
    );
    let e = Relation::empty(vec![d.dim("b"), d.dim("x")]);
    assert_eq!(union(&a, &e, &d).unwrap(), a);
    assert_eq!(union(&e, &a, &d).unwrap().to_values(&d), vec![vec![s("g"), i(1)], vec![s("r"), i(2)]]);
    assert_eq!(union(&Relation::unit(), &Relation::empty(vec![]), &d).unwrap(), Relation::unit());
}

#[test]
fn difference_basic() {
    let mut d = Dictionaries::new();
    let a = rel(&mut d, &["x", "b"], vec![vec![i(1), s("g")], vec![i(2), s("r")], vec![i(3), s("i")]]);
    let b = rel(&mut d, &["b", "x"], vec![vec![s("r"), i(2)], vec![s("z"), i(9)], vec![s("g"), i(3)]]);
    let r = difference(&a, &b, &d).unwrap();
    assert_eq!(names(&r, &d), vec!["x", "b"]);
    assert_eq!(r.to_values(&d), vec![vec![i(1), s("g")], vec![i(3), s("i")]]);
    assert_eq!(difference_with(&a, &b, &d, KeyPath::Hashed).unwrap(), r);
    assert_eq!(difference_with(&a, &b, &d, KeyPath::Wide).unwrap(), r);
    assert!(difference(&a, &a, &d).unwrap().is_empty());
    assert!(matches!(difference(&a, &Relation::unit(), &d), Err(CoverageError::SchemaMismatch { op: SetOp::Difference, .. })));
    assert!(difference(&Relation::unit(), &Relation::unit(), &d).unwrap().is_empty());
}

// ---------------------------------------------------------------- select

fn sel(r: &Relation, p: Pred, d: &Dictionaries) -> Vec<Vec<Value>> {
    select(r, &p, d).unwrap().to_values(d)
}

#[test]
fn select_every_form() {
    let mut d = Dictionaries::new();
    let r = rel(
        &mut d,
        &["v", "b"],
        vec![vec![i(9), s("r")], vec![i(10), s("g")], vec![i(11), s("r")], vec![i(100), s("i")], vec![i(-5), s("z")]],
    );
    let v = |xs: &[i64]| xs.to_vec();
    let col_v = |rows: Vec<Vec<Value>>| rows.iter().map(|r| r[0].as_int().unwrap()).collect::<Vec<_>>();
    assert_eq!(col_v(sel(&r, Pred::cmp("v", CmpOp::Eq, 10), &d)), v(&[10]));
    assert_eq!(col_v(sel(&r, Pred::cmp("v", CmpOp::Ne, 10), &d)), v(&[-5, 9, 11, 100]));
    assert_eq!(col_v(sel(&r, Pred::cmp("v", CmpOp::Lt, 10), &d)).len(), 2);
    assert_eq!(col_v(sel(&r, Pred::cmp("v", CmpOp::Le, 10), &d)).len(), 3);
    assert_eq!(col_v(sel(&r, Pred::cmp("v", CmpOp::Gt, 10), &d)), v(&[11, 100]));
    assert_eq!(col_v(sel(&r, Pred::cmp("v", CmpOp::Ge, 10), &d)), v(&[10, 11, 100]));
    // Absent literal.
    assert!(sel(&r, Pred::cmp("v", CmpOp::Eq, 12), &d).is_empty());
    assert_eq!(sel(&r, Pred::cmp("v", CmpOp::Ne, 12), &d).len(), 5);
    assert_eq!(col_v(sel(&r, Pred::cmp("v", CmpOp::Lt, 12), &d)).len(), 4);
    // Strings compare lexicographically.
    let bs = |rows: Vec<Vec<Value>>| rows.into_iter().map(|r| r[1].to_string()).collect::<Vec<_>>();
    assert_eq!(bs(sel(&r, Pred::cmp("b", CmpOp::Gt, "h"), &d)), vec!["z", "r", "r", "i"]);
    assert_eq!(bs(sel(&r, Pred::cmp("b", CmpOp::Le, "i"), &d)), vec!["g", "i"]);
    // in / not in / in range.
    let p = Pred::In("b".into(), vec![s("g"), s("r"), s("nope"), i(3)]);
    assert_eq!(bs(sel(&r, p, &d)), vec!["r", "g", "r"]);
    let p = Pred::NotIn("b".into(), vec![s("g"), s("r")]);
    assert_eq!(bs(sel(&r, p, &d)), vec!["z", "i"]);
    assert_eq!(sel(&r, Pred::In("b".into(), vec![]), &d).len(), 0);
    assert_eq!(sel(&r, Pred::NotIn("b".into(), vec![]), &d).len(), 5);
    let p = Pred::InRange { dim: "v".into(), start: 9, end: 11, inclusive: false };
    assert_eq!(col_v(sel(&r, p, &d)), v(&[9, 10]));
    let p = Pred::InRange { dim: "v".into(), start: 9, end: 11, inclusive: true };
    assert_eq!(col_v(sel(&r, p, &d)), v(&[9, 10, 11]));
    assert!(sel(&r, Pred::InRange { dim: "b".into(), start: 0, end: 9, inclusive: true }, &d).is_empty());
    // and / or / not, n-ary, empty.
    let p = Pred::and(Pred::cmp("b", CmpOp::Eq, "r"), Pred::cmp("v", CmpOp::Gt, 9));
    assert_eq!(col_v(sel(&r, p, &d)), v(&[11]));
    let p = Pred::or(Pred::cmp("b", CmpOp::Eq, "z"), Pred::cmp("v", CmpOp::Eq, 100));
    assert_eq!(bs(sel(&r, p, &d)), vec!["z", "i"]);
    let p = Pred::not(Pred::cmp("b", CmpOp::Eq, "r"));
    assert_eq!(bs(sel(&r, p, &d)), vec!["z", "g", "i"]);
    assert_eq!(sel(&r, Pred::And(vec![]), &d).len(), 5);
    assert_eq!(sel(&r, Pred::Or(vec![]), &d).len(), 0);
    // The brief's example: band in [...] and visit != 10.
    let p = Pred::and(Pred::In("b".into(), vec![s("g"), s("r"), s("i")]), Pred::cmp("v", CmpOp::Ne, 10));
    assert_eq!(col_v(sel(&r, p, &d)), v(&[9, 11, 100]));
}

#[test]
fn select_dim_vs_dim() {
    let mut d = Dictionaries::new();
    let r = rel(&mut d, &["a", "b", "c"], vec![vec![i(1), i(1), s("1")], vec![i(1), i(2), s("x")], vec![i(3), i(2), s("y")]]);
    let p = Pred::CmpDims("a".into(), CmpOp::Eq, "b".into());
    assert_eq!(sel(&r, p, &d), vec![vec![i(1), i(1), s("1")]]);
    let p = Pred::CmpDims("a".into(), CmpOp::Gt, "b".into());
    assert_eq!(sel(&r, p, &d), vec![vec![i(3), i(2), s("y")]]);
    let p = Pred::CmpDims("a".into(), CmpOp::Le, "a".into());
    assert_eq!(sel(&r, p, &d).len(), 3);
    // int vs string: never equal, always unequal, ordering is an error.
    assert!(sel(&r, Pred::CmpDims("a".into(), CmpOp::Eq, "c".into()), &d).is_empty());
    assert_eq!(sel(&r, Pred::CmpDims("a".into(), CmpOp::Ne, "c".into()), &d).len(), 3);
    assert_eq!(
        select(&r, &Pred::CmpDims("a".into(), CmpOp::Lt, "c".into()), &d),
        Err(CoverageError::DimTypeMismatch {
            left: "a".into(),
            left_kind: DimKind::Int,
            op: CmpOp::Lt,
            right: "c".into(),
            right_kind: DimKind::Str
        })
    );
}

#[test]
fn select_typing() {
    let mut d = Dictionaries::new();
    let r = rel(&mut d, &["v", "b"], vec![vec![i(1), s("r")], vec![i(2), s("g")]]);
    // Equality across kinds: never equal.
    assert!(sel(&r, Pred::cmp("v", CmpOp::Eq, "1"), &d).is_empty());
    assert_eq!(sel(&r, Pred::cmp("v", CmpOp::Ne, "1"), &d).len(), 2);
    assert!(sel(&r, Pred::cmp("b", CmpOp::Eq, 1), &d).is_empty());
    // Ordering across kinds: an error, even if no row would be looked at.
    let err = select(&r, &Pred::and(Pred::cmp("v", CmpOp::Eq, 99), Pred::cmp("v", CmpOp::Lt, "x")), &d);
    assert_eq!(err, Err(CoverageError::TypeMismatch { dim: "v".into(), dim_kind: DimKind::Int, op: CmpOp::Lt, literal: s("x") }));
    assert!(matches!(select(&r, &Pred::cmp("b", CmpOp::Ge, 3), &d), Err(CoverageError::TypeMismatch { dim_kind: DimKind::Str, .. })));
    assert_eq!(
        select(&r, &Pred::not(Pred::In("w".into(), vec![])), &d),
        Err(CoverageError::UnknownDim { dim: "w".into(), schema: vec!["v".into(), "b".into()] })
    );
    // Mixed dimensions: ordering rejected, equality fine.
    let m = Relation::from_values(&mut d, "m", [i(1), s("a")]);
    assert!(matches!(select(&m, &Pred::cmp("m", CmpOp::Lt, 5), &d), Err(CoverageError::TypeMismatch { dim_kind: DimKind::Mixed, .. })));
    assert_eq!(sel(&m, Pred::cmp("m", CmpOp::Eq, "a"), &d), vec![vec![s("a")]]);
    // The error message is usable as-is.
    let msg = select(&r, &Pred::cmp("v", CmpOp::Lt, "x"), &d).unwrap_err().to_string();
    assert_eq!(msg, "cannot compare integer dimension `v` with string \"x\" using `<`");
}

// ---------------------------------------------------------------- project, rename

#[test]
fn projection() {
    let mut d = Dictionaries::new();
    let r = rel(
        &mut d,
        &["x", "y", "z"],
        vec![vec![i(1), s("b"), i(0)], vec![i(1), s("a"), i(1)], vec![i(2), s("a"), i(1)], vec![i(1), s("b"), i(5)]],
    );
    // Prefix: sorted already, dedupe adjacent.
    let p = project(&r, &["x", "y"], &d).unwrap();
    assert_eq!(p.to_values(&d), vec![vec![i(1), s("a")], vec![i(1), s("b")], vec![i(2), s("a")]]);
    // Non-prefix: re-sorted.
    let p = project(&r, &["y"], &d).unwrap();
    assert_eq!(p.to_values(&d), vec![vec![s("a")], vec![s("b")]]);
    let p = project(&r, &["z", "x"], &d).unwrap();
    assert_eq!(names(&p, &d), vec!["z", "x"]);
    assert_eq!(p.to_values(&d), vec![vec![i(0), i(1)], vec![i(1), i(1)], vec![i(1), i(2)], vec![i(5), i(1)]]);
    assert_eq!(project(&r, &["x", "y", "z"], &d).unwrap(), r);
    // Onto no dimensions: one empty data ID (a step without `over`), or none.
    assert_eq!(project(&r, &[], &d).unwrap(), Relation::unit());
    assert!(project(&Relation::empty(r.schema().to_vec()), &[], &d).unwrap().is_empty());
    assert!(matches!(project(&r, &["q"], &d), Err(CoverageError::UnknownDim { .. })));
    assert_eq!(project(&r, &["x", "x"], &d), Err(CoverageError::DuplicateDim { dim: "x".into() }));
}

#[test]
fn renaming() {
    let mut d = Dictionaries::new();
    let r = rel(&mut d, &["a", "b"], vec![vec![i(2), s("q")], vec![i(1), s("p")]]);
    let x = rename(&r, &[("a", "visit")], &mut d).unwrap();
    assert_eq!(names(&x, &d), vec!["visit", "b"]);
    assert_eq!(x.to_values(&d), r.to_values(&d));
    let y = rename(&r, &[("a", "b"), ("b", "a")], &mut d).unwrap();
    assert_eq!(names(&y, &d), vec!["b", "a"]);
    assert_eq!(y.to_values(&d), r.to_values(&d));
    assert_eq!(rename(&r, &[("a", "b")], &mut d), Err(CoverageError::DuplicateDim { dim: "b".into() }));
}

// ---------------------------------------------------------------- CSV

fn csv(text: &str, cols: Option<&[&str]>) -> (Result<Relation, Vec<CsvError>>, Dictionaries) {
    let mut d = Dictionaries::new();
    let r = table_from_csv(text, &mut d, cols);
    (r, d)
}

#[test]
fn csv_basic() {
    let text = "visit, band ,n\n 12 ,r,x\n11,g , y\n12,r,x\n\n   \n-3,\"i\",z\n";
    let (r, d) = csv(text, None);
    let r = r.unwrap();
    assert_eq!(names(&r, &d), vec!["visit", "band", "n"]);
    assert_eq!(r.to_values(&d), vec![vec![i(-3), s("i"), s("z")], vec![i(11), s("g"), s("y")], vec![i(12), s("r"), s("x")]]);
    let (r, d) = csv(text, Some(&["band", "visit"]));
    let r = r.unwrap();
    assert_eq!(names(&r, &d), vec!["band", "visit"]);
    assert_eq!(r.len(), 3);
    let (r, d) = csv(text, Some(&["band"]));
    assert_eq!(r.unwrap().to_values(&d), vec![vec![s("g")], vec![s("i")], vec![s("r")]]);
    // CRLF, BOM, no trailing newline, header only.
    let (r, d) = csv("\u{feff}a,b\r\n1,2\r\n3,4", None);
    assert_eq!(r.unwrap().to_values(&d), vec![vec![i(1), i(2)], vec![i(3), i(4)]]);
    let (r, d) = csv("a,b\n", None);
    let r = r.unwrap();
    assert!(r.is_empty());
    assert_eq!(names(&r, &d), vec!["a", "b"]);
}

#[test]
fn csv_quoted_fields() {
    // A quote opens a quoted field only as its first byte (RFC 4180, as the `csv` crate
    // reads it); whitespace after the closing quote is ignored.
    let text = "name,n\n\"a,b\",1\n\"say \"\"hi\"\"\",2\n\"multi\nline\"  ,3\n\" 7\",\"4\"\n";
    let (r, d) = csv(text, None);
    let r = r.unwrap();
    assert_eq!(
        r.to_values(&d),
        vec![
            // " 7" keeps its space (so it is a string); "4" quoted is still an integer.
            vec![s(" 7"), i(4)],
            vec![s("a,b"), i(1)],
            vec![s("multi\nline"), i(3)],
            vec![s("say \"hi\""), i(2)],
        ]
    );
    // A quoted header name.
    let (r, d) = csv("\"x,y\"\n1\n", None);
    assert_eq!(names(&r.unwrap(), &d), vec!["x,y"]);
}

fn err(kind: CsvErrorKind, row: usize, column: Option<usize>, span: std::ops::Range<usize>) -> CsvError {
    CsvError { kind, row, column, span }
}

#[test]
fn csv_row_errors() {
    //          0123456 789012 34567 8901 234567
    let text = "a,b,c\n1,x,2\n3,,4\n5,y\n6,7,8\n";
    let (r, d) = csv(text, None);
    assert_eq!(
        r.unwrap_err(),
        vec![
            err(CsvErrorKind::EmptyField { column: "b".into() }, 3, Some(2), 14..14),
            err(CsvErrorKind::FieldCount { expected: 3, found: 2 }, 4, None, 17..20),
            err(
                CsvErrorKind::MixedKinds { column: "b".into(), expected: ValueKind::Str, found: ValueKind::Int, first_row: 2 },
                5,
                Some(2),
                23..24
            ),
        ]
    );
    // Nothing was interned.
    assert!(d.is_empty());
    // Existing dictionaries are restored exactly, then usable as before.
    let mut d = Dictionaries::new();
    let before = Relation::from_values(&mut d, "b", [s("y"), s("q")]);
    let b = d.dim_id("b").unwrap();
    let _ = d.dict(b).rank(0);
    assert!(table_from_csv(text, &mut d, None).is_err());
    assert_eq!((d.len(), d.dict(b).len()), (1, 2));
    assert_eq!((d.code(b, &s("x")), d.code(b, &i(7))), (None, None));
    assert_eq!(d.dict(b).kind(), DimKind::Str);
    let ok = table_from_csv(
        "b
x
y
", &mut d, None,
    )
    .unwrap();
    assert_eq!(d.code(b, &s("x")), Some(2));
    assert_eq!(union(&before, &ok, &d).unwrap().to_values(&d), vec![vec![s("q")], vec![s("x")], vec![s("y")]]);
    // Only requested columns are checked for emptiness and kinds.
    let (r, _) = csv(text, Some(&["a"]));
    assert_eq!(r.unwrap_err(), vec![err(CsvErrorKind::FieldCount { expected: 3, found: 2 }, 4, None, 17..20)]);
    assert_eq!(
        CsvError { kind: CsvErrorKind::EmptyField { column: "b".into() }, row: 3, column: Some(2), span: 14..14 }.to_string(),
        "row 3, column 2: empty value in column `b`"
    );
}

#[test]
fn csv_error_positions_after_multiline_and_blank_lines() {
    // A blank line, the header (row 1, CRLF), a quoted field spanning two lines (row 2), a
    // line of spaces, then an error in row 3: rows count records, not lines.
    let text = "\r\n a , b \r\n\"p\nq\",1\r\n  \r\nx,  \r\n";
    let (r, _) = csv(text, None);
    let at = text.find("x,").unwrap() + 2;
    assert_eq!(r.unwrap_err(), vec![err(CsvErrorKind::EmptyField { column: "b".into() }, 3, Some(2), at..at)]);
    // Wrong field count: the span is the record without its CR LF.
    let text = "a,b\r\n1,2,3\r\n";
    let (r, _) = csv(text, None);
    assert_eq!(r.unwrap_err(), vec![err(CsvErrorKind::FieldCount { expected: 2, found: 3 }, 2, None, 5..10)]);
    // Quoted empty field: the span covers the quotes.
    let (r, _) = csv("a\n\"\"\n", None);
    assert_eq!(r.unwrap_err(), vec![err(CsvErrorKind::EmptyField { column: "a".into() }, 2, Some(1), 2..4)]);
}

#[test]
fn csv_line_endings_cr_lf_and_crlf_read_alike() {
    for text in ["visit,band\r1,g\r2,r\r", "visit,band\n1,g\n2,r\n", "visit,band\r\n1,g\r\n2,r", "\u{feff}visit,band\r1,g\n2,r\r\n"] {
        let (r, d) = csv(text, Some(&["visit", "band"]));
        let r = r.unwrap_or_else(|e| panic!("{text:?}: {e:?}"));
        assert_eq!(r.to_values(&d), vec![vec![i(1), s("g")], vec![i(2), s("r")]], "{text:?}");
    }
    // Spans stay byte offsets in the text, whatever ends the lines.
    let (r, _) = csv("a,b\r1,\r", None);
    assert_eq!(r.unwrap_err(), vec![err(CsvErrorKind::EmptyField { column: "b".into() }, 2, Some(2), 6..6)]);
    // A quoted header after a byte-order mark is still quoted.
    let (r, d) = csv("\u{feff}\"x,y\"\r1\r", None);
    assert_eq!(names(&r.unwrap(), &d), vec!["x,y"]);
}

#[test]
fn csv_header_errors() {
    let (r, _) = csv("a,b\n1,2\n", Some(&["c", "a", "d"]));
    assert_eq!(
        r.unwrap_err(),
        vec![
            err(CsvErrorKind::MissingColumn { name: "c".into() }, 1, None, 0..3),
            err(CsvErrorKind::MissingColumn { name: "d".into() }, 1, None, 0..3),
        ]
    );
    let (r, _) = csv("a,b, a\n1,2,3\n", None);
    assert_eq!(r.unwrap_err(), vec![err(CsvErrorKind::DuplicateColumn { name: "a".into() }, 1, Some(3), 5..6)]);
    // Unused duplicates are fine when columns are named.
    let (r, _) = csv("a,b,a\n1,2,3\n", Some(&["b"]));
    assert_eq!(r.unwrap().len(), 1);
    let (r, _) = csv("a,,b\n1,2,3\n", None);
    assert_eq!(r.unwrap_err(), vec![err(CsvErrorKind::EmptyColumnName, 1, Some(2), 2..2)]);
    let (r, _) = csv("  \n\n", None);
    assert_eq!(r.unwrap_err(), vec![err(CsvErrorKind::NoHeader, 1, None, 0..4)]);
}

#[test]
fn csv_quote_errors() {
    let (r, _) = csv("a\n\"abc\n", None);
    assert_eq!(r.unwrap_err(), vec![err(CsvErrorKind::UnterminatedQuote, 2, Some(1), 2..7)]);
    let text = "a,b\n\"x\"y ,1\n\"ok\",2\n";
    let (r, _) = csv(text, None);
    assert_eq!(r.unwrap_err(), vec![err(CsvErrorKind::TextAfterQuote, 2, Some(1), 7..8)]);
    // Errors before a fatal one are kept.
    let (r, _) = csv("a,b\n1\n\"2,3\n", None);
    assert_eq!(
        r.unwrap_err(),
        vec![
            err(CsvErrorKind::FieldCount { expected: 2, found: 1 }, 2, None, 4..5),
            err(CsvErrorKind::UnterminatedQuote, 3, Some(1), 6..11),
        ]
    );
}

#[test]
fn csv_error_cap_and_mixed_once_per_column() {
    let mut text = String::from("a,b\n");
    for k in 0..50 {
        text.push_str(&format!("{k},\n"));
    }
    let (r, _) = csv(&text, None);
    let e = r.unwrap_err();
    assert_eq!(e.len(), MAX_CSV_ERRORS);
    assert_eq!(e[19].row, 21);
    let (r, _) = csv("a\n1\nx\ny\n2\n", None);
    assert_eq!(
        r.unwrap_err(),
        vec![err(
            CsvErrorKind::MixedKinds { column: "a".into(), expected: ValueKind::Int, found: ValueKind::Str, first_row: 2 },
            3,
            Some(1),
            4..5
        )]
    );
}

// ---------------------------------------------------------------- property test

/// The test universe: two integer and two string dimensions.
const DIMS: [&str; 4] = ["i", "j", "s", "t"];

fn is_int_dim(d: &str) -> bool {
    d == "i" || d == "j"
}

fn value_for(dim: &str) -> BoxedStrategy<Value> {
    if is_int_dim(dim) {
        (-3i64..4).prop_map(Value::Int).boxed()
    } else {
        prop::sample::select(vec!["a", "b", "B", "aa", "10", "9", "é"]).prop_map(Value::from).boxed()
    }
}

#[derive(Clone, Debug)]
struct Rows {
    dims: Vec<&'static str>,
    rows: Vec<Vec<Value>>,
}

fn rows_over(dims: Vec<&'static str>) -> impl Strategy<Value = Rows> {
    let row: Vec<BoxedStrategy<Value>> = dims.iter().map(|d| value_for(d)).collect();
    prop::collection::vec(row, 0..14).prop_map(move |rows| Rows { dims: dims.clone(), rows })
}

fn any_dims() -> impl Strategy<Value = Vec<&'static str>> {
    prop::sample::subsequence(DIMS.to_vec(), 0..=4).prop_shuffle()
}

fn any_rows() -> impl Strategy<Value = Rows> {
    any_dims().prop_flat_map(rows_over)
}

/// Two relations over the same dimensions, in independently shuffled orders.
fn same_dims_pair() -> impl Strategy<Value = (Rows, Rows)> {
    any_dims().prop_flat_map(|dims| {
        let other = Just(dims.clone()).prop_shuffle().prop_flat_map(rows_over);
        (rows_over(dims), other)
    })
}

fn literal() -> BoxedStrategy<Value> {
    prop_oneof![(-4i64..5).prop_map(Value::Int), prop::sample::select(vec!["a", "aa", "9", "c"]).prop_map(Value::from)].boxed()
}

fn op() -> impl Strategy<Value = CmpOp> {
    prop::sample::select(vec![CmpOp::Eq, CmpOp::Ne, CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge])
}

fn pred_over(dims: Vec<&'static str>) -> BoxedStrategy<Pred> {
    if dims.is_empty() {
        return prop_oneof![Just(Pred::And(vec![])), Just(Pred::Or(vec![]))].boxed();
    }
    let dim = prop::sample::select(dims.clone()).prop_map(str::to_string);
    let leaf = prop_oneof![
        (dim.clone(), op(), literal()).prop_map(|(d, o, v)| Pred::Cmp(d, o, v)),
        (dim.clone(), op(), dim.clone()).prop_map(|(l, o, r)| Pred::CmpDims(l, o, r)),
        (dim.clone(), prop::collection::vec(literal(), 0..4)).prop_map(|(d, v)| Pred::In(d, v)),
        (dim.clone(), prop::collection::vec(literal(), 0..4)).prop_map(|(d, v)| Pred::NotIn(d, v)),
        (dim, -4i64..4, -4i64..4, any::<bool>()).prop_map(|(dim, start, end, inclusive)| { Pred::InRange { dim, start, end, inclusive } }),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Pred::And),
            prop::collection::vec(inner.clone(), 0..3).prop_map(Pred::Or),
            inner.prop_map(Pred::not),
        ]
    })
    .boxed()
}

// --- the naive reference: BTreeSet<Vec<Value>> with dimension names.

#[derive(Clone, Debug, PartialEq)]
struct Model {
    dims: Vec<String>,
    rows: BTreeSet<Vec<Value>>,
}

impl Model {
    fn of(r: &Rows) -> Model {
        Model { dims: r.dims.iter().map(|d| d.to_string()).collect(), rows: r.rows.iter().cloned().collect() }
    }

    fn pos(&self, d: &str) -> Option<usize> {
        self.dims.iter().position(|x| x == d)
    }

    fn realign(&self, dims: &[String]) -> BTreeSet<Vec<Value>> {
        let p: Vec<usize> = dims.iter().map(|d| self.pos(d).unwrap()).collect();
        self.rows.iter().map(|r| p.iter().map(|&k| r[k].clone()).collect()).collect()
    }
}

fn model_join(a: &Model, b: &Model) -> Model {
    let shared: Vec<(usize, usize)> = b.dims.iter().enumerate().filter_map(|(jb, d)| a.pos(d).map(|ia| (ia, jb))).collect();
    let extra: Vec<usize> = (0..b.dims.len()).filter(|j| !shared.iter().any(|s| s.1 == *j)).collect();
    let mut dims = a.dims.clone();
    dims.extend(extra.iter().map(|&j| b.dims[j].clone()));
    let mut rows = BTreeSet::new();
    for ra in &a.rows {
        for rb in &b.rows {
            if shared.iter().all(|&(x, y)| ra[x] == rb[y]) {
                let mut r = ra.clone();
                r.extend(extra.iter().map(|&j| rb[j].clone()));
                rows.insert(r);
            }
        }
    }
    Model { dims, rows }
}

fn int_kind(dim: &str) -> bool {
    is_int_dim(dim)
}

/// `Err(())` for a type error.
fn model_check(p: &Pred) -> Result<(), ()> {
    let lit_ok = |d: &str, v: &Value| int_kind(d) == matches!(v, Value::Int(_));
    match p {
        Pred::Cmp(d, o, v) => {
            if o.is_ordering() && !lit_ok(d, v) {
                Err(())
            } else {
                Ok(())
            }
        }
        Pred::CmpDims(l, o, r) => {
            if o.is_ordering() && int_kind(l) != int_kind(r) {
                Err(())
            } else {
                Ok(())
            }
        }
        Pred::In(..) | Pred::NotIn(..) | Pred::InRange { .. } => Ok(()),
        Pred::And(ps) | Pred::Or(ps) => ps.iter().try_for_each(model_check),
        Pred::Not(p) => model_check(p),
    }
}

fn model_eval(m: &Model, row: &[Value], p: &Pred) -> bool {
    let get = |d: &str| &row[m.pos(d).unwrap()];
    match p {
        Pred::Cmp(d, o, v) => o.holds(get(d).cmp(v)),
        Pred::CmpDims(l, o, r) => o.holds(get(l).cmp(get(r))),
        Pred::In(d, vs) => vs.contains(get(d)),
        Pred::NotIn(d, vs) => !vs.contains(get(d)),
        Pred::InRange { dim, start, end, inclusive } => match get(dim) {
            Value::Int(x) => x >= start && if *inclusive { x <= end } else { x < end },
            Value::Str(_) => false,
        },
        Pred::And(ps) => ps.iter().all(|p| model_eval(m, row, p)),
        Pred::Or(ps) => ps.iter().any(|p| model_eval(m, row, p)),
        Pred::Not(p) => !model_eval(m, row, p),
    }
}

/// Dictionaries with every test dimension's kind fixed (so typing is predictable), values
/// pre-interned in a given order (so codes differ between runs).
fn dicts(reverse: bool) -> Dictionaries {
    let mut d = Dictionaries::new();
    let mut dims = DIMS.to_vec();
    if reverse {
        dims.reverse();
    }
    for dim in dims {
        let id = d.dim(dim);
        let mut vals: Vec<Value> = if is_int_dim(dim) {
            (-3..4).map(Value::Int).collect()
        } else {
            ["a", "b", "B", "aa", "10", "9", "é"].into_iter().map(Value::from).collect()
        };
        if reverse {
            vals.reverse();
        } else {
            vals.rotate_left(2);
        }
        for v in vals {
            d.encode(id, v);
        }
    }
    d
}

fn build(d: &mut Dictionaries, r: &Rows) -> Relation {
    Relation::from_rows(d, &r.dims, &r.rows).unwrap()
}

fn as_model(r: &Relation, d: &Dictionaries) -> (Vec<String>, Vec<Vec<Value>>) {
    (names(r, d), r.to_values(d))
}

fn expect(m: &Model) -> (Vec<String>, Vec<Vec<Value>>) {
    (m.dims.clone(), m.rows.iter().cloned().collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn prop_join(a in any_rows(), b in any_rows(), reverse in any::<bool>()) {
        let mut d = dicts(reverse);
        let (ra, rb) = (build(&mut d, &a), build(&mut d, &b));
        let j = join(&ra, &rb, &d);
        prop_assert_eq!(as_model(&j, &d), expect(&model_join(&Model::of(&a), &Model::of(&b))));
        prop_assert_eq!(&join(&ra, &rb, &d), &j);
        prop_assert_eq!(&join_with(&ra, &rb, &d, KeyPath::Hashed), &j);
        prop_assert_eq!(&join_with(&ra, &rb, &d, KeyPath::Wide), &j);
        // Same result, value for value, under different code assignments.
        let mut d2 = dicts(!reverse);
        let j2 = join(&build(&mut d2, &a), &build(&mut d2, &b), &d2);
        prop_assert_eq!(as_model(&j2, &d2), as_model(&j, &d));
    }

    #[test]
    fn prop_union_difference((a, b) in same_dims_pair(), reverse in any::<bool>()) {
        let mut d = dicts(reverse);
        let (ra, rb) = (build(&mut d, &a), build(&mut d, &b));
        let (ma, mb) = (Model::of(&a), Model::of(&b));
        let mb_aligned = mb.realign(&ma.dims);
        let u = union(&ra, &rb, &d).unwrap();
        let mu = Model { dims: ma.dims.clone(), rows: ma.rows.union(&mb_aligned).cloned().collect() };
        prop_assert_eq!(as_model(&u, &d), expect(&mu));
        let x = difference(&ra, &rb, &d).unwrap();
        let mx = Model { dims: ma.dims.clone(), rows: ma.rows.difference(&mb_aligned).cloned().collect() };
        prop_assert_eq!(as_model(&x, &d), expect(&mx));
        prop_assert_eq!(&difference_with(&ra, &rb, &d, KeyPath::Hashed).unwrap(), &x);
        prop_assert_eq!(&difference_with(&ra, &rb, &d, KeyPath::Wide).unwrap(), &x);
        prop_assert_eq!(&union(&ra, &rb, &d).unwrap(), &u);
        prop_assert_eq!(&difference(&ra, &rb, &d).unwrap(), &x);
        // The general (comparison) sort agrees with the packed-key sort.
        let cols: Vec<Vec<u32>> = (0..ra.arity())
            .map(|k| {
                let mut c = ra.column(k).to_vec();
                c.extend_from_slice(rb.column_of(ra.schema()[k]).unwrap());
                c
            })
            .collect();
        let n = ra.len() + rb.len();
        let g = canonicalize_with(ra.schema().to_vec(), cols.clone(), n, &d, SortPath::General);
        prop_assert_eq!(&g, &u);
        let w = canonicalize_with(ra.schema().to_vec(), cols, n, &d, SortPath::Packed128);
        prop_assert_eq!(&w, &u);
        let mut d2 = dicts(!reverse);
        let (sa, sb) = (build(&mut d2, &a), build(&mut d2, &b));
        prop_assert_eq!(as_model(&union(&sa, &sb, &d2).unwrap(), &d2), as_model(&u, &d));
        prop_assert_eq!(as_model(&difference(&sa, &sb, &d2).unwrap(), &d2), as_model(&x, &d));
    }

    #[test]
    fn prop_select((a, p) in any_rows().prop_flat_map(|r| { let p = pred_over(r.dims.clone()); (Just(r), p) })) {
        let mut d = dicts(false);
        let ra = build(&mut d, &a);
        let m = Model::of(&a);
        match model_check(&p) {
            Err(()) => prop_assert!(select(&ra, &p, &d).is_err()),
            Ok(()) => {
                let got = select(&ra, &p, &d).unwrap();
                let rows = m.rows.iter().filter(|r| model_eval(&m, r, &p)).cloned().collect();
                prop_assert_eq!(as_model(&got, &d), expect(&Model { dims: m.dims.clone(), rows }));
                prop_assert_eq!(&select(&ra, &p, &d).unwrap(), &got);
            }
        }
    }

    #[test]
    fn prop_project((a, onto) in any_rows().prop_flat_map(|r| {
        let onto = prop::sample::subsequence(r.dims.clone(), 0..=r.dims.len()).prop_shuffle();
        (Just(r), onto)
    }), reverse in any::<bool>()) {
        let mut d = dicts(reverse);
        let ra = build(&mut d, &a);
        let m = Model::of(&a);
        let onto_s: Vec<String> = onto.iter().map(|s| s.to_string()).collect();
        let mp = Model { dims: onto_s.clone(), rows: m.realign(&onto_s) };
        let got = project(&ra, &onto, &d).unwrap();
        prop_assert_eq!(as_model(&got, &d), expect(&mp));
        prop_assert_eq!(&project(&ra, &onto, &d).unwrap(), &got);
    }

    #[test]
    fn prop_csv_roundtrip(a in prop::sample::subsequence(DIMS.to_vec(), 1..=4).prop_shuffle().prop_flat_map(rows_over)) {
        // Write the rows as CSV (quoting every string, so "10" stays... an integer: quoting
        // does not change kinds) and read them back.
        let mut text = a.dims.join(",");
        text.push('\n');
        for r in &a.rows {
            let fields: Vec<String> = r.iter().map(|v| match v {
                Value::Int(x) => format!(" {x} "),
                Value::Str(s) => format!("\"{}\"", s.replace('"', "\"\"")),
            }).collect();
            text.push_str(&fields.join(","));
            text.push('\n');
        }
        let mut d = Dictionaries::new();
        let expected = {
            // Strings that look like integers ("10", "9") load as integers; a column then
            // mixes kinds unless all its values agree.
            let conv: Vec<Vec<Value>> = a.rows.iter().map(|r| r.iter().map(|v| Value::parse_field(&v.to_string())).collect()).collect();
            let mixed = (0..a.dims.len()).any(|k| conv.iter().any(|r| r[k].kind() != conv[0][k].kind()));
            if mixed { None } else { Some(conv.into_iter().collect::<BTreeSet<_>>().into_iter().collect::<Vec<_>>()) }
        };
        match (table_from_csv(&text, &mut d, None), expected) {
            (Ok(r), Some(rows)) => prop_assert_eq!(r.to_values(&d), rows),
            (Err(e), None) => {
                let all_mixed = e.iter().all(|e| matches!(e.kind, CsvErrorKind::MixedKinds { .. }));
                prop_assert!(all_mixed);
            }
            (got, want) => prop_assert!(false, "got {:?}, want {:?}", got.map(|r| r.len()), want),
        }
    }
}

// ---------------------------------------------------------------- performance demo

/// Run with
/// `cargo test --release --lib coverage::tests::perf_million_rows -- --ignored --nocapture`.
#[test]
#[ignore]
fn perf_million_rows() {
    use std::time::Instant;
    let bands = ["g", "r", "i", "z", "y"];
    // 10_000 visits x 100 detectors = 1M rows, plus a per-row unique string (worst case for the
    // dictionaries).
    let mut text = String::from("visit,detector,band,dataset\n");
    for v in 0..10_000i64 {
        for det in 0..100i64 {
            let b = bands[(v % 5) as usize];
            text.push_str(&format!("{},{},{},\"calexp_{}_{:03}_{}\"\n", 100_000 + v, det, b, v, det, b));
        }
    }
    println!("CSV: {} rows, {:.1} MB", 1_000_000, text.len() as f64 / 1e6);

    let mut d = Dictionaries::new();
    let t = Instant::now();
    let all = table_from_csv(&text, &mut d, None).unwrap();
    println!("load 4 columns (1M distinct strings):   {:>8.1?}", t.elapsed());
    let mut d2 = Dictionaries::new();
    let t = Instant::now();
    let r = table_from_csv(&text, &mut d2, Some(&["visit", "detector", "band"])).unwrap();
    println!("load 3 low-cardinality columns:         {:>8.1?}", t.elapsed());
    assert_eq!((all.len(), r.len()), (1_000_000, 1_000_000));
    let mut d = d2;

    // Small side: each detector belongs to one of 10 rafts, with 2 amplifier sections each.
    let rows: Vec<Vec<Value>> =
        (0..100i64).flat_map(|det| (0..2i64).map(move |s| vec![Value::Int(det), Value::Int(det / 10), Value::Int(s)])).collect();
    let small = Relation::from_rows(&mut d, &["detector", "raft", "section"], rows).unwrap();
    let t = Instant::now();
    let j = join(&r, &small, &d);
    println!("join 1M x 200 on detector -> {} rows:  {:>8.1?}", j.len(), t.elapsed());
    let t = Instant::now();
    let j2 = join(&small, &r, &d);
    println!("join 200 x 1M (build left) -> {} rows: {:>8.1?}", j2.len(), t.elapsed());
    let band_filter = Relation::from_rows(&mut d, &["band", "filter"], vec![vec![s("r"), s("HSC-R")], vec![s("i"), s("HSC-I")]]).unwrap();
    let t = Instant::now();
    let j3 = join(&r, &band_filter, &d);
    println!("join 1M x 2 on band -> {} rows:        {:>8.1?}", j3.len(), t.elapsed());
    let t = Instant::now();
    let p = project(&j, &["raft", "visit"], &d).unwrap();
    println!("project 2M onto (raft, visit) -> {}:   {:>8.1?}", p.len(), t.elapsed());
    let t = Instant::now();
    let pred = Pred::and(Pred::In("band".into(), vec![s("g"), s("r"), s("i")]), Pred::cmp("visit", CmpOp::Ne, 101_230));
    let sel = select(&r, &pred, &d).unwrap();
    println!("select 1M -> {}:                       {:>8.1?}", sel.len(), t.elapsed());
    let t = Instant::now();
    let x = difference(&r, &sel, &d).unwrap();
    println!("difference 1M - 600k -> {}:            {:>8.1?}", x.len(), t.elapsed());
    let t = Instant::now();
    let u = union(&x, &sel, &d).unwrap();
    println!("union 400k + 600k -> {}:              {:>8.1?}", u.len(), t.elapsed());
    assert_eq!(u, r);
    let dets = Relation::from_range(&mut d, "detector", 0, 100, false);
    let visits = project(&r, &["visit"], &d).unwrap();
    let t = Instant::now();
    let cross = join(&visits, &dets, &d);
    println!("cross 10k x 100 -> {}:                {:>8.1?}", cross.len(), t.elapsed());
}
