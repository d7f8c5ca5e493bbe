//! The coverage engine: a pure, I/O-free relational algebra over data IDs.
//!
//! A *data ID* is a tuple of dimension values (integers or strings, [`Value`]); a
//! [`Relation`] is a set of data IDs over an ordered list of dimensions (its *schema*).
//! Coverage expressions are evaluated with [`join`] (`A * B`), [`union`] (`A + B`),
//! [`difference`] (`A - B`), [`select`] (`A where P`) and [`project`] (a step's quanta).
//!
//! # Representation
//!
//! * **Dictionary encoding.** Each dimension has a [`Dict`] mapping its values to dense `u32`
//!   codes, assigned in insertion order; all dimensions live in one [`Dictionaries`] store
//!   keyed by name ([`DimId`] is the interned name). Relations hold codes only, so joins and
//!   set operations compare and hash fixed-size integers, never strings.
//! * **Column-major storage** (`Vec<Vec<u32>>`, one vector per dimension, plus an explicit row
//!   count so a zero-dimension relation can hold the one empty row). Chosen over row-major
//!   because the hot operations touch *some* columns of *all* rows: a join packs only the
//!   shared columns into keys and gathers each output column with one sequential pass; a
//!   projection just picks columns (free for a schema prefix); a selection scans only the
//!   columns its predicate names; the key-building loops run one column at a time and
//!   vectorise. Memory is 4 bytes per cell with no per-row overhead.
//! * **Packed keys.** Rows (or their shared columns) are packed into a `u64` when the summed
//!   bit widths of the dictionaries involved fit (`u128` for sorting), otherwise handled as
//!   `u32` slices. Hash joins build on the smaller side; when the key space is small the hash
//!   table is replaced by a direct-address array.
//!
//! # Canonical order
//!
//! Every relation, after every constructor and operation, holds **distinct rows sorted by
//! value order, column by column in schema order**: integers numerically, strings
//! lexicographically (bytewise), all integers before all strings (see [`Value`]'s `Ord`).
//! The order depends only on the values, never on dictionary codes (which follow insertion
//! order), hash seeds or hash-table iteration: sorting maps codes through a per-dictionary
//! rank table (`code -> rank`, computed lazily and cached until the dictionary grows), and no
//! output is ever produced by iterating a hash table. So the same input gives the same rows
//! in the same order, and — since dictionaries are filled in a deterministic order too — the
//! same codes. Operations exploit the invariant: a join probing with its left side in order
//! emits canonical output without sorting; selection, difference and prefix projection are
//! order-preserving filters; union sorts with a run-detecting stable sort (a linear merge of
//! two canonical inputs).
//!
//! # Typing
//!
//! A dimension's values are normally all integers or all strings; a dimension that holds both
//! is [`DimKind::Mixed`]: allowed everywhere except in ordering comparisons. See [`Pred`] for
//! predicate typing and [`table_from_csv`] for CSV rules.

mod cmp;
mod csv_load;
mod dict;
mod error;
pub(crate) mod hash;
mod ops;
mod pred;
mod relation;
mod value;

#[cfg(test)]
mod tests;

pub use csv_load::{read_csv, read_into, table_from_csv, Cell, CsvError, CsvErrorKind, CsvTable, PreRead, MAX_CSV_ERRORS};
pub use dict::{Dict, Dictionaries, DimId};
pub use error::{CoverageError, SetOp};
pub use ops::{difference, join, project, rename, union};
pub use pred::{select, CmpOp, Pred};
pub use relation::Relation;
pub use value::{DimKind, Value, ValueKind};
