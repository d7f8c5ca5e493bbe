//! The `Relation` type, its constructors, accessors and the canonical sort.

use super::dict::{Dictionaries, DimId, Ranks};
use super::error::CoverageError;
use super::value::Value;

/// A set of rows over an ordered list of dimensions, dictionary-encoded and column-major, in
/// canonical order (see the module documentation).
///
/// Invariants (upheld by every constructor and operation): all columns have `len` entries,
/// every code is valid in its dimension's dictionary, rows are distinct and sorted by value
/// order in schema order, and no dimension appears twice in the schema. A relation with an
/// empty schema has zero rows or exactly one (the empty data ID, the identity of `join`).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Relation {
    pub(crate) schema: Vec<DimId>,
    pub(crate) cols: Vec<Vec<u32>>,
    pub(crate) len: usize,
}

impl Relation {
    /// The relation with no dimensions and one (empty) row: the identity of `join`.
    pub fn unit() -> Relation {
        Relation { schema: Vec::new(), cols: Vec::new(), len: 1 }
    }

    /// The empty relation over `schema`. Panics if a dimension repeats.
    pub fn empty(schema: Vec<DimId>) -> Relation {
        assert!(no_duplicates(&schema), "duplicate dimension in schema");
        let cols = vec![Vec::new(); schema.len()];
        Relation { schema, cols, len: 0 }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn schema(&self) -> &[DimId] {
        &self.schema
    }

    pub fn arity(&self) -> usize {
        self.schema.len()
    }

    /// The dimension names, in schema order.
    pub fn dim_names<'d>(&self, dicts: &'d Dictionaries) -> Vec<&'d str> {
        self.schema.iter().map(|&d| dicts.name(d)).collect()
    }

    /// Position of `dim` in the schema.
    pub fn position(&self, dim: DimId) -> Option<usize> {
        self.schema.iter().position(|&d| d == dim)
    }

    /// The codes of column `i` (schema position), one per row in canonical order.
    pub fn column(&self, i: usize) -> &[u32] {
        &self.cols[i]
    }

    pub fn column_of(&self, dim: DimId) -> Option<&[u32]> {
        self.position(dim).map(|i| &self.cols[i][..])
    }

    /// The codes of row `i`, in schema order.
    pub fn row_codes(&self, i: usize) -> impl Iterator<Item = u32> + '_ {
        assert!(i < self.len, "row {i} out of range");
        self.cols.iter().map(move |c| c[i])
    }

    /// The decoded values of row `i`, in schema order.
    pub fn row<'a>(&'a self, i: usize, dicts: &'a Dictionaries) -> Vec<&'a Value> {
        self.schema.iter().zip(self.row_codes(i)).map(|(&d, c)| dicts.decode(d, c)).collect()
    }

    /// Decoded rows in canonical order.
    pub fn rows<'a>(&'a self, dicts: &'a Dictionaries) -> impl Iterator<Item = Vec<&'a Value>> + 'a {
        (0..self.len).map(move |i| self.row(i, dicts))
    }

    /// Decoded, owned rows in canonical order (convenient for tests and small relations).
    pub fn to_values(&self, dicts: &Dictionaries) -> Vec<Vec<Value>> {
        self.rows(dicts).map(|r| r.into_iter().cloned().collect()).collect()
    }

    /// One dimension over the integers `start..end` (or `start..=end` when `inclusive`).
    /// Empty when the range is empty.
    pub fn from_range(dicts: &mut Dictionaries, dim: &str, start: i64, end: i64, inclusive: bool) -> Relation {
        let d = dicts.dim(dim);
        let dict = dicts.dict_mut(d);
        let col: Vec<u32> = if inclusive {
            (start..=end).map(|i| dict.intern_int(i)).collect()
        } else {
            (start..end).map(|i| dict.intern_int(i)).collect()
        };
        // Ascending, distinct integers: already canonical.
        let len = col.len();
        Relation { schema: vec![d], cols: vec![col], len }
    }

    /// One dimension over the given values (duplicates removed).
    pub fn from_values<I: IntoIterator<Item = Value>>(dicts: &mut Dictionaries, dim: &str, values: I) -> Relation {
        let d = dicts.dim(dim);
        let dict = dicts.dict_mut(d);
        let col: Vec<u32> = values.into_iter().map(|v| dict.intern(v)).collect();
        let len = col.len();
        canonicalize(vec![d], vec![col], len, dicts)
    }

    /// A relation over `dims` from explicit rows (duplicates removed).
    pub fn from_rows<R, I>(dicts: &mut Dictionaries, dims: &[&str], rows: I) -> Result<Relation, CoverageError>
    where
        R: AsRef<[Value]>,
        I: IntoIterator<Item = R>,
    {
        let schema: Vec<DimId> = dims.iter().map(|n| dicts.dim(n)).collect();
        if let Some(dup) = first_duplicate(&schema) {
            return Err(CoverageError::DuplicateDim { dim: dicts.name(dup).to_string() });
        }
        let mut cols = vec![Vec::new(); schema.len()];
        let mut len = 0usize;
        for (r, row) in rows.into_iter().enumerate() {
            let row = row.as_ref();
            if row.len() != schema.len() {
                return Err(CoverageError::RowArity { row: r, expected: schema.len(), found: row.len() });
            }
            for ((col, &d), v) in cols.iter_mut().zip(&schema).zip(row) {
                col.push(dicts.dict_mut(d).intern(v.clone()));
            }
            len += 1;
        }
        Ok(canonicalize(schema, cols, len, dicts))
    }

    /// A relation from raw code columns (any order, duplicates allowed); sorts and dedupes.
    /// Panics if a dimension repeats, a column has the wrong length, or a code is not valid in
    /// its dimension's dictionary. `len` matters only for an empty schema.
    pub fn from_codes(schema: Vec<DimId>, cols: Vec<Vec<u32>>, len: usize, dicts: &Dictionaries) -> Relation {
        assert!(no_duplicates(&schema), "duplicate dimension in schema");
        assert_eq!(schema.len(), cols.len(), "one column per dimension");
        for (&d, c) in schema.iter().zip(&cols) {
            assert_eq!(c.len(), len, "column length");
            let n = dicts.dict(d).len() as u32;
            assert!(c.iter().all(|&x| x < n), "code out of range for dimension {}", dicts.name(d));
        }
        canonicalize(schema, cols, len, dicts)
    }
}

pub(crate) fn no_duplicates(schema: &[DimId]) -> bool {
    first_duplicate(schema).is_none()
}

pub(crate) fn first_duplicate(schema: &[DimId]) -> Option<DimId> {
    schema.iter().enumerate().find(|(i, d)| schema[..*i].contains(d)).map(|(_, &d)| d)
}

/// Bits needed to hold any code (or rank) of a dictionary with `n` entries.
pub(crate) fn bits_for(n: usize) -> u32 {
    if n <= 1 {
        0
    } else {
        usize::BITS - (n - 1).leading_zeros()
    }
}

/// Fixed-width unsigned integers used as packed multi-column keys. The first packed column
/// lands in the most significant bits, so integer order on keys is lexicographic order on the
/// packed columns.
pub(crate) trait PackedKey: Copy + Ord + Eq + std::hash::Hash {
    const ZERO: Self;
    fn push(self, bits: u32, v: u32) -> Self;
    fn extract(self, shift: u32, bits: u32) -> u32;
}

macro_rules! packed_key {
    ($t:ty) => {
        impl PackedKey for $t {
            const ZERO: Self = 0;
            #[inline(always)]
            fn push(self, bits: u32, v: u32) -> Self {
                // `bits` may be 0 (single-valued dictionary); the value is then 0 as well.
                if bits == 0 {
                    self
                } else {
                    (self << bits) | v as $t
                }
            }
            #[inline(always)]
            fn extract(self, shift: u32, bits: u32) -> u32 {
                if bits == 0 {
                    0
                } else {
                    ((self >> shift) & ((1 as $t) << bits).wrapping_sub(1)) as u32
                }
            }
        }
    };
}
packed_key!(u64);
packed_key!(u128);

/// How canonicalisation may sort; tests force the general path to check it against the packed
/// one.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) enum SortPath {
    Auto,
    /// `u128` keys even when `u64` would do.
    Packed128,
    General,
}

/// Sort `cols` (column-major, `len` rows) into canonical order and drop duplicate rows.
pub(crate) fn canonicalize(schema: Vec<DimId>, cols: Vec<Vec<u32>>, len: usize, dicts: &Dictionaries) -> Relation {
    canonicalize_with(schema, cols, len, dicts, SortPath::Auto)
}

pub(crate) fn canonicalize_with(schema: Vec<DimId>, cols: Vec<Vec<u32>>, len: usize, dicts: &Dictionaries, path: SortPath) -> Relation {
    if schema.is_empty() {
        return Relation { schema, cols, len: len.min(1) };
    }
    if len <= 1 {
        return Relation { schema, cols, len };
    }
    let ranks: Vec<&Ranks> = schema.iter().map(|&d| dicts.dict(d).ranks()).collect();
    let bits: Vec<u32> = schema.iter().map(|&d| bits_for(dicts.dict(d).len())).collect();
    let total: u32 = bits.iter().sum();
    let cols = if path == SortPath::Auto && total <= 64 {
        sort_packed::<u64>(&cols, len, &ranks, &bits)
    } else if path != SortPath::General && total <= 128 {
        sort_packed::<u128>(&cols, len, &ranks, &bits)
    } else {
        sort_general(&cols, len, &ranks)
    };
    let len = cols[0].len();
    Relation { schema, cols, len }
}

fn sort_packed<K: PackedKey>(cols: &[Vec<u32>], len: usize, ranks: &[&Ranks], bits: &[u32]) -> Vec<Vec<u32>> {
    let mut keys = vec![K::ZERO; len];
    for ((col, r), &b) in cols.iter().zip(ranks).zip(bits) {
        if r.identity {
            for (k, &c) in keys.iter_mut().zip(col) {
                *k = k.push(b, c);
            }
        } else {
            for (k, &c) in keys.iter_mut().zip(col) {
                *k = k.push(b, r.rank[c as usize]);
            }
        }
    }
    // Stable sort: it detects presorted runs, so sorting the concatenation of two canonical
    // relations (union) is a linear merge.
    keys.sort();
    keys.dedup();
    let mut shift: u32 = bits.iter().sum();
    let mut out = Vec::with_capacity(cols.len());
    for (r, &b) in ranks.iter().zip(bits) {
        shift -= b;
        let col: Vec<u32> = if r.identity {
            keys.iter().map(|k| k.extract(shift, b)).collect()
        } else {
            keys.iter().map(|k| r.by_rank[k.extract(shift, b) as usize]).collect()
        };
        out.push(col);
    }
    out
}

fn sort_general(cols: &[Vec<u32>], len: usize, ranks: &[&Ranks]) -> Vec<Vec<u32>> {
    let rank_cols: Vec<Vec<u32>> = cols.iter().zip(ranks).map(|(c, r)| c.iter().map(|&x| r.rank[x as usize]).collect()).collect();
    let mut idx: Vec<u32> = (0..len as u32).collect();
    let cmp = |x: u32, y: u32| {
        for rc in &rank_cols {
            match rc[x as usize].cmp(&rc[y as usize]) {
                std::cmp::Ordering::Equal => continue,
                o => return o,
            }
        }
        std::cmp::Ordering::Equal
    };
    idx.sort_by(|&x, &y| cmp(x, y));
    idx.dedup_by(|x, y| cmp(*x, *y).is_eq());
    cols.iter().map(|c| idx.iter().map(|&i| c[i as usize]).collect()).collect()
}
