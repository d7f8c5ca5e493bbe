//! Evaluating coverage expressions and step universes over the model's tables.

use std::collections::BTreeMap;

use crate::check::model::{Domain, Literal, Model, RelSource};
use crate::check::tables::Tables;
use crate::coverage::{self, CmpOp, Dictionaries, Pred, Relation, Value};
use crate::diag::Diagnostic;
use crate::source::{FileId, SourceMap};
use crate::syntax::ast::{self, Expr, ExprKind, Operand, PredKind, SetOp};

/// Relations of a program, evaluated lazily and cached by name.
pub struct Env<'a> {
    pub model: &'a Model,
    pub map: &'a SourceMap,
    pub tables: &'a Tables,
    pub dicts: Dictionaries,
    dims: BTreeMap<String, Relation>,
    rels: BTreeMap<String, Relation>,
    covs: BTreeMap<String, Relation>,
}

fn internal(msg: String) -> Diagnostic {
    Diagnostic::new("E701", msg)
}

impl<'a> Env<'a> {
    pub fn new(model: &'a Model, map: &'a SourceMap, tables: &'a Tables) -> Env<'a> {
        Env { model, map, tables, dicts: Dictionaries::new(), dims: BTreeMap::new(), rels: BTreeMap::new(), covs: BTreeMap::new() }
    }

    fn table_text(&self, path: &std::path::Path) -> Result<(FileId, std::sync::Arc<str>), Diagnostic> {
        let t = self.tables.get(path).ok_or_else(|| internal(format!("table {} was not loaded", path.display())))?;
        Ok((t.file, self.map.get(t.file).text.clone()))
    }

    /// The first problem of a table as a diagnostic (the checker reads tables with the same
    /// reader and reports them all, so this is reached only if the two disagree).
    fn csv_error(
        &self,
        file: FileId,
        text: &str,
        errors: &[coverage::CsvError],
        needs: &[(String, crate::source::Loc, crate::source::Loc)],
    ) -> Diagnostic {
        match errors.first() {
            Some(e) => crate::check::tables::csv_diagnostic(&self.map.get(file).name, file, text, e, &[], needs),
            None => internal(format!("table {} could not be read", self.map.get(file).name)),
        }
    }

    /// The values of a dimension's domain.
    pub fn domain(&mut self, name: &str) -> Result<Option<Relation>, Diagnostic> {
        if let Some(r) = self.dims.get(name) {
            return Ok(Some(r.clone()));
        }
        let Some(d) = self.model.dim(name) else {
            return Ok(None);
        };
        let rel = match &d.domain {
            None => return Ok(None),
            Some(Domain::Range { lo, hi, inclusive }) => Relation::from_range(&mut self.dicts, name, *lo, *hi, *inclusive),
            Some(Domain::List(v)) => Relation::from_values(
                &mut self.dicts,
                name,
                v.iter().map(|l| match l {
                    Literal::Int(i) => Value::Int(*i),
                    Literal::Str(s) => Value::Str(s.as_str().into()),
                }),
            ),
            Some(Domain::Table { path, column, loc, column_loc }) => {
                let tables = self.tables;
                let pre = tables.get(path).and_then(|t| t.pre.as_ref());
                let r = match pre.and_then(|p| p.import(&[column.as_str()], &mut self.dicts)) {
                    Some(r) => r,
                    None => {
                        let (file, text) = self.table_text(path)?;
                        let needs = [(column.clone(), *loc, *column_loc)];
                        coverage::table_from_csv(&text, &mut self.dicts, Some(&[column.as_str()]))
                            .map_err(|e| self.csv_error(file, &text, &e, &needs))?
                    }
                };
                if column != name {
                    coverage::rename(&r, &[(column.as_str(), name)], &mut self.dicts).map_err(|e| internal(e.to_string()))?
                } else {
                    r
                }
            }
        };
        self.dims.insert(name.to_string(), rel.clone());
        Ok(Some(rel))
    }

    pub fn relation(&mut self, name: &str) -> Result<Option<Relation>, Diagnostic> {
        if let Some(r) = self.rels.get(name) {
            return Ok(Some(r.clone()));
        }
        let Some(r) = self.model.relation(name) else {
            return Ok(None);
        };
        let dims: Vec<String> = r.dims.iter().map(|d| d.name.clone()).collect();
        let rel = match &r.source {
            RelSource::Table { path, loc } => {
                let cols: Vec<&str> = dims.iter().map(|s| s.as_str()).collect();
                // The checker's reading of the table, when it kept one (a compile).
                let tables = self.tables;
                let pre = tables.get(path).and_then(|t| t.pre.as_ref());
                match pre.and_then(|p| p.import(&cols, &mut self.dicts)) {
                    Some(rel) => rel,
                    None => {
                        let (file, text) = self.table_text(path)?;
                        let needs: Vec<(String, crate::source::Loc, crate::source::Loc)> =
                            r.dims.iter().map(|d| (d.name.clone(), *loc, d.loc)).collect();
                        coverage::table_from_csv(&text, &mut self.dicts, Some(&cols))
                            .map_err(|e| self.csv_error(file, &text, &e, &needs))?
                    }
                }
            }
            RelSource::Expr { expr, .. } => {
                let e = expr.clone();
                let v = self.eval(&e, 0)?;
                let cols: Vec<&str> = dims.iter().map(|s| s.as_str()).collect();
                coverage::project(&v, &cols, &self.dicts).map_err(|e| internal(e.to_string()))?
            }
        };
        self.rels.insert(name.to_string(), rel.clone());
        Ok(Some(rel))
    }

    /// Evaluate a coverage expression.
    pub fn eval(&mut self, e: &Expr, depth: u32) -> Result<Relation, Diagnostic> {
        if depth > 64 {
            return Err(internal("coverage definitions nest too deeply".into()));
        }
        match &e.kind {
            ExprKind::Ident(i) => {
                if let Some(r) = self.domain(&i.name)? {
                    return Ok(r);
                }
                if let Some(r) = self.relation(&i.name)? {
                    return Ok(r);
                }
                if let Some(c) = self.covs.get(&i.name) {
                    return Ok(c.clone());
                }
                if let Some(nc) = self.model.coverage(&i.name) {
                    let expr = nc.expr.clone();
                    let r = self.eval(&expr, depth + 1)?;
                    self.covs.insert(i.name.clone(), r.clone());
                    return Ok(r);
                }
                Err(internal(format!("`{}` has no values", i.name)))
            }
            ExprKind::Product(items) => {
                let mut acc = Relation::unit();
                for it in items {
                    let r = self.eval(it, depth + 1)?;
                    acc = coverage::join(&acc, &r, &self.dicts);
                }
                Ok(acc)
            }
            ExprKind::SetChain { first, rest } => {
                let mut acc = self.eval(first, depth + 1)?;
                for (op, it) in rest {
                    let r = self.eval(it, depth + 1)?;
                    acc = match op {
                        SetOp::Union => coverage::union(&acc, &r, &self.dicts),
                        SetOp::Difference => coverage::difference(&acc, &r, &self.dicts),
                    }
                    .map_err(|e| internal(e.to_string()))?;
                }
                Ok(acc)
            }
            ExprKind::Where { base, pred } => {
                let r = self.eval(base, depth + 1)?;
                let p = to_pred(pred);
                coverage::select(&r, &p, &self.dicts).map_err(|e| internal(e.to_string()))
            }
            ExprKind::List(items) if items.is_empty() => Ok(Relation::empty(Vec::new())),
            _ => Err(internal("not a coverage expression".into())),
        }
    }

    /// Extend `base` with the dimensions `target` it lacks: first relations that have a
    /// missing dimension and share one with what we have (joined), then relations that have a
    /// missing dimension and share nothing (crossed in), then dimension domains (crossed in).
    /// Relations are tried in declaration order, so the result is deterministic.
    pub fn extend(&mut self, base: &Relation, target: &[&str]) -> Result<Relation, Diagnostic> {
        let mut acc = base.clone();
        let have = |acc: &Relation, dicts: &Dictionaries, d: &str| dicts.dim_id(d).is_some_and(|id| acc.position(id).is_some());
        let mut used: Vec<usize> = Vec::new();
        loop {
            let missing: Vec<&str> = target.iter().copied().filter(|d| !have(&acc, &self.dicts, d)).collect();
            if missing.is_empty() {
                return Ok(acc);
            }
            // `equal A = B` (language 1.1): a missing dimension equal to one we have is that
            // one's values again (an identity relation, no table).
            if let Some((d, e)) = missing.iter().find_map(|&d| {
                self.model.equal_dims.class_of(d).into_iter().find(|e| *e != d && have(&acc, &self.dicts, e)).map(|e| (d, e.to_string()))
            }) {
                let values =
                    coverage::project(&acc, &[e.as_str()], &self.dicts).map_err(|x| internal(x.to_string()))?.to_values(&self.dicts);
                let rows = values.into_iter().map(|v| vec![v[0].clone(), v[0].clone()]);
                let ident = Relation::from_rows(&mut self.dicts, &[e.as_str(), d], rows).map_err(|x| internal(x.to_string()))?;
                acc = coverage::join(&acc, &ident, &self.dicts);
                continue;
            }
            let rels = &self.model.relations;
            let linked = rels.iter().enumerate().find(|(i, r)| {
                !used.contains(i)
                    && r.dims.iter().any(|d| missing.contains(&d.name.as_str()))
                    && r.dims.iter().any(|d| have(&acc, &self.dicts, &d.name))
            });
            let any = rels.iter().enumerate().find(|(i, r)| !used.contains(i) && r.dims.iter().any(|d| missing.contains(&d.name.as_str())));
            if let Some((i, r)) = linked.or(any) {
                let name = r.name.clone();
                used.push(i);
                let rel = self.relation(&name)?.ok_or_else(|| internal(format!("relation {name} has no rows")))?;
                acc = coverage::join(&acc, &rel, &self.dicts);
                continue;
            }
            let d = missing[0];
            match self.domain(d)? {
                Some(dom) => acc = coverage::join(&acc, &dom, &self.dicts),
                None => return Err(internal(format!("dimension `{d}` is not determined by the coverage"))),
            }
        }
    }
}

fn lit(o: &Operand) -> Option<Value> {
    match o {
        Operand::Int(v, _) => Some(Value::Int(*v)),
        Operand::Str(s) => Some(Value::Str(s.value.as_str().into())),
        Operand::Float(..) | Operand::Ident(_) => None,
    }
}

fn flip(op: ast::CmpOp) -> ast::CmpOp {
    use ast::CmpOp::*;
    match op {
        Lt => Gt,
        Le => Ge,
        Gt => Lt,
        Ge => Le,
        o => o,
    }
}

fn cop(op: ast::CmpOp) -> CmpOp {
    match op {
        ast::CmpOp::Eq => CmpOp::Eq,
        ast::CmpOp::Ne => CmpOp::Ne,
        ast::CmpOp::Lt => CmpOp::Lt,
        ast::CmpOp::Le => CmpOp::Le,
        ast::CmpOp::Gt => CmpOp::Gt,
        ast::CmpOp::Ge => CmpOp::Ge,
    }
}

/// Translate a checked predicate.  The checker has verified names and kinds.
pub fn to_pred(p: &ast::Pred) -> Pred {
    match &p.kind {
        PredKind::Or(v) => Pred::Or(v.iter().map(to_pred).collect()),
        PredKind::And(v) => Pred::And(v.iter().map(to_pred).collect()),
        PredKind::Not(x) => Pred::Not(Box::new(to_pred(x))),
        PredKind::Cmp { lhs, op, rhs } => match (lhs, rhs) {
            (Operand::Ident(a), Operand::Ident(b)) => Pred::CmpDims(a.name.clone(), cop(*op), b.name.clone()),
            (Operand::Ident(a), v) => lit(v).map(|v| Pred::Cmp(a.name.clone(), cop(*op), v)).unwrap_or(Pred::Or(vec![])),
            (v, Operand::Ident(a)) => lit(v).map(|v| Pred::Cmp(a.name.clone(), cop(flip(*op)), v)).unwrap_or(Pred::Or(vec![])),
            _ => Pred::Or(vec![]),
        },
        PredKind::In { lhs: Operand::Ident(d), negated, set } => {
            let p = match &set.kind {
                ExprKind::Range { lo, hi, inclusive } => Pred::InRange { dim: d.name.clone(), start: *lo, end: *hi, inclusive: *inclusive },
                ExprKind::List(items) => {
                    let vals: Vec<Value> = items
                        .iter()
                        .filter_map(|it| match &it.kind {
                            ExprKind::Int(v) => Some(Value::Int(*v)),
                            ExprKind::Str(s) => Some(Value::Str(s.value.as_str().into())),
                            _ => None,
                        })
                        .collect();
                    if *negated {
                        return Pred::NotIn(d.name.clone(), vals);
                    }
                    Pred::In(d.name.clone(), vals)
                }
                _ => Pred::Or(vec![]),
            };
            if *negated && !matches!(p, Pred::NotIn(..)) {
                Pred::Not(Box::new(p))
            } else {
                p
            }
        }
        PredKind::In { .. } | PredKind::Error => Pred::Or(vec![]),
    }
}
