//! Per-dimension dictionaries: values <-> dense `u32` codes, plus a cached rank table.

use std::sync::OnceLock;

use super::hash::{hash_str, FastMap};
use super::value::{DimKind, Value};

/// Identifies a dimension inside one [`Dictionaries`] store (an interned dimension name).
///
/// A `DimId` (and every [`Relation`](super::Relation) built with it) is only meaningful
/// together with the `Dictionaries` that issued it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct DimId(u32);

impl DimId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Rank tables of a dictionary: `rank[code]` is the position of the code's value in value
/// order, `by_rank[rank]` the inverse.
#[derive(Clone, Debug)]
pub(crate) struct Ranks {
    pub(crate) rank: Vec<u32>,
    pub(crate) by_rank: Vec<u32>,
    /// Codes were assigned in value order (`rank[c] == c`), so mapping can be skipped.
    pub(crate) identity: bool,
}

/// The dictionary of one dimension.
///
/// Codes are dense (`0..len()`), assigned in insertion order, and never change; a relation's
/// canonical order does not depend on them (it follows the values), so inserting new values
/// never invalidates an existing relation. At most `u32::MAX` values per dimension.
#[derive(Clone, Debug, Default)]
pub struct Dict {
    values: Vec<Value>,
    ints: FastMap<i64, u32>,
    /// String index without a second copy of each string: hash of the string -> code of the
    /// first string with that hash; the (astronomically rare) later strings whose 64-bit
    /// hash collides live in `str_collisions`.
    strs: FastMap<u64, u32>,
    str_collisions: FastMap<Box<str>, u32>,
    /// Computed on first use, dropped whenever a value is added.
    ranks: OnceLock<Ranks>,
}

impl Dict {
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// All values, indexed by code.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    pub fn kind(&self) -> DimKind {
        match (self.ints.is_empty(), self.values.len() == self.ints.len()) {
            (true, true) => DimKind::Empty,
            (false, true) => DimKind::Int,
            (true, false) => DimKind::Str,
            (false, false) => DimKind::Mixed,
        }
    }

    fn next_code(&mut self) -> u32 {
        let code = u32::try_from(self.values.len()).expect("more than u32::MAX values in one dimension");
        if self.ranks.get().is_some() {
            self.ranks = OnceLock::new();
        }
        code
    }

    pub fn intern_int(&mut self, i: i64) -> u32 {
        if let Some(&c) = self.ints.get(&i) {
            return c;
        }
        let c = self.next_code();
        self.ints.insert(i, c);
        self.values.push(Value::Int(i));
        c
    }

    pub fn intern_str(&mut self, s: &str) -> u32 {
        let h = hash_str(s);
        match self.lookup_str(h, s) {
            Some(c) => c,
            None => self.insert_str(h, s.into()),
        }
    }

    /// The code of `v`, adding it if new.
    pub fn intern(&mut self, v: Value) -> u32 {
        match v {
            Value::Int(i) => self.intern_int(i),
            Value::Str(s) => {
                let h = hash_str(&s);
                match self.lookup_str(h, &s) {
                    Some(c) => c,
                    None => self.insert_str(h, s),
                }
            }
        }
    }

    #[inline]
    fn lookup_str(&self, h: u64, s: &str) -> Option<u32> {
        let &c = self.strs.get(&h)?;
        if self.values[c as usize].as_str() == Some(s) {
            Some(c)
        } else {
            self.str_collisions.get(s).copied()
        }
    }

    fn insert_str(&mut self, h: u64, s: Box<str>) -> u32 {
        let c = self.next_code();
        match self.strs.entry(h) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(c);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.str_collisions.insert(s.clone(), c);
            }
        }
        self.values.push(Value::Str(s));
        c
    }

    /// Forget every value with a code `>= len` (undo of a failed load).
    pub(crate) fn truncate(&mut self, len: usize) {
        if len >= self.values.len() {
            return;
        }
        for c in len..self.values.len() {
            match &self.values[c] {
                Value::Int(i) => {
                    self.ints.remove(i);
                }
                Value::Str(s) => {
                    let h = hash_str(s);
                    if self.strs.get(&h) == Some(&(c as u32)) {
                        self.strs.remove(&h);
                    } else {
                        self.str_collisions.remove(&**s);
                    }
                }
            }
        }
        self.values.truncate(len);
        self.ranks = OnceLock::new();
    }

    pub fn code(&self, v: &Value) -> Option<u32> {
        match v {
            Value::Int(i) => self.code_int(*i),
            Value::Str(s) => self.code_str(s),
        }
    }

    pub fn code_int(&self, i: i64) -> Option<u32> {
        self.ints.get(&i).copied()
    }

    pub fn code_str(&self, s: &str) -> Option<u32> {
        self.lookup_str(hash_str(s), s)
    }

    /// The value of `code`. Panics if the code was not issued by this dictionary.
    pub fn value(&self, code: u32) -> &Value {
        &self.values[code as usize]
    }

    pub fn get(&self, code: u32) -> Option<&Value> {
        self.values.get(code as usize)
    }

    /// Position of `code`'s value in value order among all values of this dictionary.
    pub fn rank(&self, code: u32) -> u32 {
        self.ranks().rank[code as usize]
    }

    /// Codes in value order: `by_rank()[r]` is the code of the `r`-th smallest value.
    pub fn by_rank(&self) -> &[u32] {
        &self.ranks().by_rank
    }

    pub(crate) fn ranks(&self) -> &Ranks {
        self.ranks.get_or_init(|| compute_ranks(&self.values))
    }
}

fn compute_ranks(values: &[Value]) -> Ranks {
    let n = values.len();
    let identity = values.windows(2).all(|w| w[0] < w[1]);
    let mut by_rank: Vec<u32> = (0..n as u32).collect();
    if identity {
        return Ranks { rank: by_rank.clone(), by_rank, identity };
    }
    if values.iter().all(|v| matches!(v, Value::Int(_))) {
        by_rank.sort_unstable_by_key(|&c| values[c as usize].as_int());
    } else {
        by_rank.sort_unstable_by(|&a, &b| values[a as usize].cmp(&values[b as usize]));
    }
    let mut rank = vec![0u32; n];
    for (r, &c) in by_rank.iter().enumerate() {
        rank[c as usize] = r as u32;
    }
    Ranks { rank, by_rank, identity }
}

/// The dictionaries of all dimensions, keyed by dimension name.
#[derive(Clone, Debug, Default)]
pub struct Dictionaries {
    names: Vec<Box<str>>,
    by_name: FastMap<Box<str>, DimId>,
    dicts: Vec<Dict>,
}

impl Dictionaries {
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of dimension `name`, creating an empty dictionary for it if new.
    pub fn dim(&mut self, name: &str) -> DimId {
        if let Some(&d) = self.by_name.get(name) {
            return d;
        }
        let d = DimId(u32::try_from(self.names.len()).expect("too many dimensions"));
        self.names.push(name.into());
        self.by_name.insert(name.into(), d);
        self.dicts.push(Dict::default());
        d
    }

    /// The id of dimension `name` if it exists.
    pub fn dim_id(&self, name: &str) -> Option<DimId> {
        self.by_name.get(name).copied()
    }

    pub fn name(&self, d: DimId) -> &str {
        &self.names[d.index()]
    }

    /// Number of dimensions.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn dict(&self, d: DimId) -> &Dict {
        &self.dicts[d.index()]
    }

    pub fn dict_mut(&mut self, d: DimId) -> &mut Dict {
        &mut self.dicts[d.index()]
    }

    /// The code of `v` in dimension `d`, adding it if new.
    pub fn encode(&mut self, d: DimId, v: Value) -> u32 {
        self.dicts[d.index()].intern(v)
    }

    /// The code of `v` in dimension `d`, if `v` was ever interned there.
    pub fn code(&self, d: DimId, v: &Value) -> Option<u32> {
        self.dicts[d.index()].code(v)
    }

    /// The value of `code` in dimension `d`. Panics on a foreign code.
    pub fn decode(&self, d: DimId, code: u32) -> &Value {
        self.dicts[d.index()].value(code)
    }

    /// Forget every dimension created after the first `n` (undo of a failed load).
    pub(crate) fn truncate_dims(&mut self, n: usize) {
        for name in self.names.drain(n.min(self.names.len())..) {
            self.by_name.remove(&name);
        }
        self.dicts.truncate(n);
    }

    pub(crate) fn names_of(&self, schema: &[DimId]) -> Vec<String> {
        schema.iter().map(|&d| self.name(d).to_string()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Force two strings onto one hash to exercise the collision side table.
    #[test]
    fn string_hash_collisions() {
        let mut d = Dict::default();
        let a = d.intern_str("a");
        let h = hash_str("a");
        let b = d.insert_str(h, "b".into());
        assert_eq!(d.lookup_str(h, "a"), Some(a));
        assert_eq!(d.lookup_str(h, "b"), Some(b));
        assert_eq!(d.lookup_str(h, "c"), None);
        d.truncate(1);
        assert_eq!(d.lookup_str(h, "b"), None);
        assert_eq!(d.code_str("a"), Some(a));
        d.truncate(0);
        assert!(d.is_empty() && d.code_str("a").is_none() && d.kind() == DimKind::Empty);
        let x = d.intern(Value::from("x"));
        assert_eq!((d.intern_str("x"), d.intern(Value::Int(3))), (x, 1));
        assert_eq!(d.kind(), DimKind::Mixed);
    }
}
