//! Per-dimension dictionaries: values <-> dense `u32` codes, plus a cached rank table.

use std::sync::OnceLock;

use super::hash::FastMap;
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
    strs: FastMap<Box<str>, u32>,
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
        match (self.ints.is_empty(), self.strs.is_empty()) {
            (true, true) => DimKind::Empty,
            (false, true) => DimKind::Int,
            (true, false) => DimKind::Str,
            (false, false) => DimKind::Mixed,
        }
    }

    fn next_code(&mut self) -> u32 {
        let code =
            u32::try_from(self.values.len()).expect("more than u32::MAX values in one dimension");
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
        if let Some(&c) = self.strs.get(s) {
            return c;
        }
        let c = self.next_code();
        let b: Box<str> = s.into();
        self.strs.insert(b.clone(), c);
        self.values.push(Value::Str(b));
        c
    }

    /// The code of `v`, adding it if new.
    pub fn intern(&mut self, v: Value) -> u32 {
        match v {
            Value::Int(i) => self.intern_int(i),
            Value::Str(s) => {
                if let Some(&c) = self.strs.get(&*s) {
                    return c;
                }
                let c = self.next_code();
                self.strs.insert(s.clone(), c);
                self.values.push(Value::Str(s));
                c
            }
        }
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
        self.strs.get(s).copied()
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

    pub(crate) fn ranks(&self) -> &Ranks {
        self.ranks.get_or_init(|| compute_ranks(&self.values))
    }
}

fn compute_ranks(values: &[Value]) -> Ranks {
    let n = values.len();
    let identity = values.windows(2).all(|w| w[0] < w[1]);
    let mut by_rank: Vec<u32> = (0..n as u32).collect();
    if identity {
        return Ranks {
            rank: by_rank.clone(),
            by_rank,
            identity,
        };
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
    Ranks {
        rank,
        by_rank,
        identity,
    }
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

    pub(crate) fn names_of(&self, schema: &[DimId]) -> Vec<String> {
        schema.iter().map(|&d| self.name(d).to_string()).collect()
    }
}
