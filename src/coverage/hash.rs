//! A small, fast, *fixed-seed* hasher for the engine's internal hash tables.
//!
//! std's SipHash is randomly seeded and slow for `u64` keys. This hasher is a folded-multiply
//! hash (as in foldhash/ahash): good dispersion into both the low bits (bucket index) and the
//! high bits (hashbrown's control byte), which matters because packed keys often differ only
//! in their high bits. Hash tables are never iterated to produce output, so output order does
//! not depend on the hasher at all; the fixed seed only makes runs reproducible.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

const K: u64 = 0x9E37_79B9_7F4A_7C15;
const SEED: u64 = 0x243F_6A88_85A3_08D3;

#[inline(always)]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

#[derive(Clone, Copy)]
pub(crate) struct FastHasher(u64);

impl Default for FastHasher {
    #[inline]
    fn default() -> Self {
        FastHasher(SEED)
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.write_u64(u64::from_le_bytes(c.try_into().unwrap()));
        }
        let rem = chunks.remainder();
        if !rem.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rem.len()].copy_from_slice(rem);
            self.write_u64(u64::from_le_bytes(buf) ^ ((rem.len() as u64) << 60));
        }
    }

    #[inline(always)]
    fn write_u64(&mut self, x: u64) {
        self.0 = folded_multiply(self.0 ^ x, K);
    }

    #[inline(always)]
    fn write_u8(&mut self, x: u8) {
        self.write_u64(u64::from(x));
    }

    #[inline(always)]
    fn write_u32(&mut self, x: u32) {
        self.write_u64(u64::from(x));
    }

    #[inline(always)]
    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }

    #[inline(always)]
    fn write_i64(&mut self, x: i64) {
        self.write_u64(x as u64);
    }

    #[inline(always)]
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FastBuild = BuildHasherDefault<FastHasher>;
pub(crate) type FastMap<K, V> = HashMap<K, V, FastBuild>;
pub(crate) type FastSet<K> = HashSet<K, FastBuild>;

/// Hash of a string with the engine's fixed hasher.
#[inline]
pub(crate) fn hash_str(s: &str) -> u64 {
    let mut h = FastHasher::default();
    h.write(s.as_bytes());
    h.finish()
}
