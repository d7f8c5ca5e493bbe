//! Join, union, difference, projection and renaming.

use super::dict::{Dictionaries, DimId};
use super::error::{CoverageError, SetOp};
use super::hash::{FastMap, FastSet};
use super::relation::{bits_for, canonicalize, Relation};

/// Which key representation a hash-based operation may use; tests force the slower ones to
/// check them against the fast ones.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) enum KeyPath {
    /// Direct-address table when the key space is small, else `u64` hashing, else wide keys.
    Auto,
    /// `u64` hashing when the key fits.
    Hashed,
    /// Always `Box<[u32]>` keys.
    Wide,
}

/// Natural join: rows of `a` and `b` that agree on every shared dimension, combined; the cross
/// product when no dimension is shared. Output schema: `a`'s dimensions, then `b`'s others in
/// `b`'s order. Never fails.
pub fn join(a: &Relation, b: &Relation, dicts: &Dictionaries) -> Relation {
    join_with(a, b, dicts, KeyPath::Auto)
}

pub(crate) fn join_with(a: &Relation, b: &Relation, dicts: &Dictionaries, path: KeyPath) -> Relation {
    let mut shared_a = Vec::new();
    let mut shared_b = Vec::new();
    let mut extra_b = Vec::new();
    for (jb, &d) in b.schema.iter().enumerate() {
        match a.position(d) {
            Some(ia) => {
                shared_a.push(ia);
                shared_b.push(jb);
            }
            None => extra_b.push(jb),
        }
    }
    let mut schema = a.schema.clone();
    schema.extend(extra_b.iter().map(|&j| b.schema[j]));
    if a.len == 0 || b.len == 0 {
        return Relation::empty(schema);
    }

    if shared_a.is_empty() {
        // Cross product: for each row of `a` (in order) every row of `b` (in order). Both are
        // canonical, so the result is too.
        let n = a.len.checked_mul(b.len).expect("cross product too large");
        let mut cols = Vec::with_capacity(schema.len());
        for col in &a.cols {
            let mut out = Vec::with_capacity(n);
            for &c in col {
                out.extend(std::iter::repeat_n(c, b.len));
            }
            cols.push(out);
        }
        for &j in &extra_b {
            let mut out = Vec::with_capacity(n);
            for _ in 0..a.len {
                out.extend_from_slice(&b.cols[j]);
            }
            cols.push(out);
        }
        return Relation { schema, cols, len: n };
    }

    let dims: Vec<DimId> = shared_a.iter().map(|&i| a.schema[i]).collect();
    let (ai, bj) = if b.len <= a.len {
        // Build on b, probe with a in order: each a row's matches come out in b order, which
        // is canonical (a sorted, then b's other columns sorted within equal shared values).
        let index = GroupIndex::build(b, &shared_b, &dims, dicts, path);
        let probe = index.keys_of(a, &shared_a);
        let mut ai = Vec::new();
        let mut bj = Vec::new();
        for i in 0..a.len {
            if let Some(g) = index.lookup(&probe, i) {
                let rows = index.group(g);
                ai.extend(std::iter::repeat_n(i as u32, rows.len()));
                bj.extend_from_slice(rows);
            }
        }
        (ai, bj)
    } else {
        // Build on a, probe with b in order, then a stable counting sort by a's row index
        // restores canonical order (b indices stay ascending within each a row).
        let index = GroupIndex::build(a, &shared_a, &dims, dicts, path);
        let probe = index.keys_of(b, &shared_b);
        let mut pa = Vec::new();
        let mut pb = Vec::new();
        for j in 0..b.len {
            if let Some(g) = index.lookup(&probe, j) {
                let rows = index.group(g);
                pa.extend_from_slice(rows);
                pb.extend(std::iter::repeat_n(j as u32, rows.len()));
            }
        }
        let mut start = vec![0u32; a.len + 1];
        for &i in &pa {
            start[i as usize + 1] += 1;
        }
        for k in 0..a.len {
            start[k + 1] += start[k];
        }
        let mut ai = vec![0u32; pa.len()];
        let mut bj = vec![0u32; pa.len()];
        for (&i, &j) in pa.iter().zip(&pb) {
            let slot = &mut start[i as usize];
            ai[*slot as usize] = i;
            bj[*slot as usize] = j;
            *slot += 1;
        }
        (ai, bj)
    };

    let len = ai.len();
    let mut cols = Vec::with_capacity(schema.len());
    for col in &a.cols {
        cols.push(ai.iter().map(|&i| col[i as usize]).collect());
    }
    for &j in &extra_b {
        let col = &b.cols[j];
        cols.push(bj.iter().map(|&r| col[r as usize]).collect());
    }
    Relation { schema, cols, len }
}

/// Keys of a row restricted to some columns.
enum Keys {
    Packed(Vec<u64>),
    /// Row-major, `stride` codes per row.
    Wide {
        codes: Vec<u32>,
        stride: usize,
    },
}

impl Keys {
    fn of(rel: &Relation, pos: &[usize], bits: &[u32], wide: bool) -> Keys {
        if wide {
            let stride = pos.len();
            let mut codes = vec![0u32; rel.len * stride];
            for (k, &p) in pos.iter().enumerate() {
                for (i, &c) in rel.cols[p].iter().enumerate() {
                    codes[i * stride + k] = c;
                }
            }
            Keys::Wide { codes, stride }
        } else {
            let mut keys = vec![0u64; rel.len];
            for (&p, &b) in pos.iter().zip(bits) {
                if b > 0 {
                    for (k, &c) in keys.iter_mut().zip(&rel.cols[p]) {
                        *k = (*k << b) | u64::from(c);
                    }
                }
            }
            Keys::Packed(keys)
        }
    }
}

enum Lookup {
    /// `table[key]` is group + 1, or 0 for none.
    Direct(Vec<u32>),
    Hashed(FastMap<u64, u32>),
    Wide(FastMap<Box<[u32]>, u32>),
}

/// The build side of a hash join: rows grouped by key, groups in CSR form with row indices
/// ascending inside each group.
struct GroupIndex {
    bits: Vec<u32>,
    wide: bool,
    lookup: Lookup,
    offsets: Vec<u32>,
    rows: Vec<u32>,
}

impl GroupIndex {
    fn build(rel: &Relation, pos: &[usize], dims: &[DimId], dicts: &Dictionaries, path: KeyPath) -> GroupIndex {
        let bits: Vec<u32> = dims.iter().map(|&d| bits_for(dicts.dict(d).len())).collect();
        let total: u32 = bits.iter().sum();
        let wide = total > 64 || path == KeyPath::Wide;
        let keys = Keys::of(rel, pos, &bits, wide);
        let mut group_of = Vec::with_capacity(rel.len);
        let mut ngroups = 0u32;
        let mut new_group = || {
            ngroups += 1;
            ngroups - 1
        };
        let lookup = match keys {
            Keys::Packed(keys) => {
                let direct = path == KeyPath::Auto && total <= 24 && (1usize << total) <= (rel.len * 8).max(4096);
                if direct {
                    let mut table = vec![0u32; 1usize << total];
                    for &k in &keys {
                        let slot = &mut table[k as usize];
                        if *slot == 0 {
                            *slot = new_group() + 1;
                        }
                        group_of.push(*slot - 1);
                    }
                    Lookup::Direct(table)
                } else {
                    let mut map = FastMap::default();
                    for &k in &keys {
                        group_of.push(*map.entry(k).or_insert_with(&mut new_group));
                    }
                    Lookup::Hashed(map)
                }
            }
            Keys::Wide { codes, stride } => {
                let mut map: FastMap<Box<[u32]>, u32> = FastMap::default();
                for i in 0..rel.len {
                    let key = &codes[i * stride..(i + 1) * stride];
                    let g = match map.get(key) {
                        Some(&g) => g,
                        None => {
                            let g = new_group();
                            map.insert(key.into(), g);
                            g
                        }
                    };
                    group_of.push(g);
                }
                Lookup::Wide(map)
            }
        };
        let n = ngroups as usize;
        let mut offsets = vec![0u32; n + 1];
        for &g in &group_of {
            offsets[g as usize + 1] += 1;
        }
        for g in 0..n {
            offsets[g + 1] += offsets[g];
        }
        let mut cursor = offsets.clone();
        let mut rows = vec![0u32; rel.len];
        for (i, &g) in group_of.iter().enumerate() {
            let slot = &mut cursor[g as usize];
            rows[*slot as usize] = i as u32;
            *slot += 1;
        }
        GroupIndex { bits, wide, lookup, offsets, rows }
    }

    fn keys_of(&self, rel: &Relation, pos: &[usize]) -> Keys {
        Keys::of(rel, pos, &self.bits, self.wide)
    }

    #[inline]
    fn lookup(&self, keys: &Keys, i: usize) -> Option<u32> {
        match (&self.lookup, keys) {
            (Lookup::Direct(t), Keys::Packed(k)) => t[k[i] as usize].checked_sub(1),
            (Lookup::Hashed(m), Keys::Packed(k)) => m.get(&k[i]).copied(),
            (Lookup::Wide(m), Keys::Wide { codes, stride }) => m.get(&codes[i * stride..(i + 1) * stride]).copied(),
            _ => unreachable!("probe keys built with the index's own layout"),
        }
    }

    fn group(&self, g: u32) -> &[u32] {
        &self.rows[self.offsets[g as usize] as usize..self.offsets[g as usize + 1] as usize]
    }
}

/// For set operations: `perm[i]` is the position in `b` of `a.schema[i]`.
fn align(a: &Relation, b: &Relation, op: SetOp, dicts: &Dictionaries) -> Result<Vec<usize>, CoverageError> {
    let perm: Option<Vec<usize>> = if a.arity() == b.arity() { a.schema.iter().map(|&d| b.position(d)).collect() } else { None };
    perm.ok_or_else(|| CoverageError::SchemaMismatch { op, left: dicts.names_of(&a.schema), right: dicts.names_of(&b.schema) })
}

/// `b` with its columns in `a`'s order (still canonical only if `perm` is the identity).
fn reorder(b: &Relation, perm: &[usize]) -> Vec<Vec<u32>> {
    perm.iter().map(|&p| b.cols[p].clone()).collect()
}

fn is_identity(perm: &[usize]) -> bool {
    perm.iter().enumerate().all(|(i, &p)| i == p)
}

/// Set union of two relations over the same dimensions (in any order); the result uses `a`'s
/// dimension order.
pub fn union(a: &Relation, b: &Relation, dicts: &Dictionaries) -> Result<Relation, CoverageError> {
    let perm = align(a, b, SetOp::Union, dicts)?;
    if b.is_empty() {
        return Ok(a.clone());
    }
    if a.is_empty() && is_identity(&perm) {
        return Ok(b.clone());
    }
    let mut cols = a.cols.clone();
    for (col, &p) in cols.iter_mut().zip(&perm) {
        col.extend_from_slice(&b.cols[p]);
    }
    if a.arity() == 0 {
        return Ok(Relation { schema: a.schema.clone(), cols, len: 1 });
    }
    let len = a.len + b.len;
    Ok(canonicalize(a.schema.clone(), cols, len, dicts))
}

/// Rows of `a` not in `b`; both over the same dimensions (in any order). Keeps `a`'s order.
pub fn difference(a: &Relation, b: &Relation, dicts: &Dictionaries) -> Result<Relation, CoverageError> {
    difference_with(a, b, dicts, KeyPath::Auto)
}

pub(crate) fn difference_with(a: &Relation, b: &Relation, dicts: &Dictionaries, path: KeyPath) -> Result<Relation, CoverageError> {
    let perm = align(a, b, SetOp::Difference, dicts)?;
    if a.is_empty() || b.is_empty() {
        return Ok(a.clone());
    }
    if a.arity() == 0 {
        // Both are the unit relation.
        return Ok(Relation::empty(Vec::new()));
    }
    let bits: Vec<u32> = a.schema.iter().map(|&d| bits_for(dicts.dict(d).len())).collect();
    let total: u32 = bits.iter().sum();
    let all_a: Vec<usize> = (0..a.arity()).collect();
    let b_in_a_order = Relation { schema: a.schema.clone(), cols: reorder(b, &perm), len: b.len };
    let wide = total > 64 || path == KeyPath::Wide;
    let keep: Vec<bool> = match (Keys::of(a, &all_a, &bits, wide), Keys::of(&b_in_a_order, &all_a, &bits, wide)) {
        (Keys::Packed(ka), Keys::Packed(kb)) => {
            if path == KeyPath::Auto && total <= 26 && (1usize << total) <= ((a.len + b.len) * 64).max(1 << 16) {
                let mut bitset = vec![0u64; (1usize << total).div_ceil(64)];
                for &k in &kb {
                    bitset[(k >> 6) as usize] |= 1 << (k & 63);
                }
                ka.iter().map(|&k| bitset[(k >> 6) as usize] & (1 << (k & 63)) == 0).collect()
            } else {
                let set: FastSet<u64> = kb.into_iter().collect();
                ka.iter().map(|k| !set.contains(k)).collect()
            }
        }
        (Keys::Wide { codes: ca, stride }, Keys::Wide { codes: cb, .. }) => {
            let set: FastSet<&[u32]> = cb.chunks_exact(stride).collect();
            ca.chunks_exact(stride).map(|k| !set.contains(k)).collect()
        }
        _ => unreachable!(),
    };
    Ok(filter_rows(a, &keep))
}

/// The rows of `rel` whose `keep` flag is set, in order.
pub(crate) fn filter_rows(rel: &Relation, keep: &[bool]) -> Relation {
    let len = keep.iter().filter(|&&k| k).count();
    if len == rel.len {
        return rel.clone();
    }
    let cols = rel.cols.iter().map(|col| col.iter().zip(keep).filter(|(_, &k)| k).map(|(&c, _)| c).collect()).collect();
    Relation { schema: rel.schema.clone(), cols, len: if rel.arity() == 0 { len.min(1) } else { len } }
}

/// Resolve dimension names against `rel`'s schema.
pub(crate) fn positions(rel: &Relation, dims: &[&str], dicts: &Dictionaries) -> Result<Vec<usize>, CoverageError> {
    let mut pos = Vec::with_capacity(dims.len());
    for (k, name) in dims.iter().enumerate() {
        let p = dicts
            .dim_id(name)
            .and_then(|d| rel.position(d))
            .ok_or_else(|| CoverageError::UnknownDim { dim: name.to_string(), schema: dicts.names_of(&rel.schema) })?;
        if dims[..k].contains(name) {
            return Err(CoverageError::DuplicateDim { dim: name.to_string() });
        }
        pos.push(p);
    }
    Ok(pos)
}

/// Projection onto `dims` (in the given order), duplicates removed.
pub fn project(a: &Relation, dims: &[&str], dicts: &Dictionaries) -> Result<Relation, CoverageError> {
    let pos = positions(a, dims, dicts)?;
    let schema: Vec<DimId> = pos.iter().map(|&p| a.schema[p]).collect();
    if pos.is_empty() {
        return Ok(Relation { schema, cols: Vec::new(), len: a.len.min(1) });
    }
    let cols: Vec<Vec<u32>> = pos.iter().map(|&p| a.cols[p].clone()).collect();
    if is_identity(&pos) {
        // A prefix of the schema: still sorted; duplicates are adjacent.
        if pos.len() == a.arity() {
            return Ok(a.clone());
        }
        let keep: Vec<bool> = (0..a.len).map(|i| i == 0 || cols.iter().any(|c| c[i] != c[i - 1])).collect();
        return Ok(filter_rows(&Relation { schema, cols, len: a.len }, &keep));
    }
    Ok(canonicalize(schema, cols, a.len, dicts))
}

/// Rename dimensions: each `(from, to)` pair renames `from` (which must be in `a`'s schema) to
/// `to`, simultaneously (so swaps work). Values are re-encoded into the target dimensions'
/// dictionaries; positions and row order are unchanged (canonical order follows values).
pub fn rename(a: &Relation, pairs: &[(&str, &str)], dicts: &mut Dictionaries) -> Result<Relation, CoverageError> {
    let from: Vec<&str> = pairs.iter().map(|p| p.0).collect();
    let pos = positions(a, &from, dicts)?;
    // Check the resulting names before creating any dimension.
    let mut new_names: Vec<&str> = a.schema.iter().map(|&d| dicts.name(d)).collect();
    for (&p, &(_, to)) in pos.iter().zip(pairs) {
        new_names[p] = to;
    }
    if let Some((_, dup)) = new_names.iter().enumerate().find(|(k, n)| new_names[..*k].contains(n)) {
        return Err(CoverageError::DuplicateDim { dim: dup.to_string() });
    }
    let new_names: Vec<String> = new_names.into_iter().map(str::to_string).collect();
    let schema: Vec<DimId> = new_names.iter().map(|n| dicts.dim(n)).collect();
    let mut cols = a.cols.clone();
    for &p in &pos {
        let (old, new) = (a.schema[p], schema[p]);
        if old == new {
            continue;
        }
        let mut map = vec![u32::MAX; dicts.dict(old).len()];
        for c in cols[p].iter_mut() {
            let m = &mut map[*c as usize];
            if *m == u32::MAX {
                let v = dicts.decode(old, *c).clone();
                *m = dicts.encode(new, v);
            }
            *c = *m;
        }
    }
    Ok(Relation { schema, cols, len: a.len })
}
