//! Graph adjacency of the job DAG: children and parents as CSR arrays, and the
//! topological order every writer streams jobs in.

use super::Ir;

/// Children of each of `n` nodes as CSR (offsets of length n+1, targets), from edges sorted
/// by parent.
pub fn csr_children(n: usize, edges: &[(u32, u32)]) -> (Vec<u32>, Vec<u32>) {
    let mut off = vec![0u32; n + 1];
    for &(p, _) in edges {
        off[p as usize + 1] += 1;
    }
    for i in 0..n {
        off[i + 1] += off[i];
    }
    let mut pos = off.clone();
    let mut out = vec![0u32; edges.len()];
    for &(p, c) in edges {
        out[pos[p as usize] as usize] = c;
        pos[p as usize] += 1;
    }
    (off, out)
}

/// Parents of each of `n` nodes as CSR, from edges in any order.
pub fn csr_parents(n: usize, edges: &[(u32, u32)]) -> (Vec<u32>, Vec<u32>) {
    let flipped: Vec<(u32, u32)> = edges.iter().map(|&(p, c)| (c, p)).collect();
    csr_children(n, &flipped)
}

/// The neighbours of `v` in a CSR pair.
pub fn row<'a>(csr: &'a (Vec<u32>, Vec<u32>), v: u32) -> &'a [u32] {
    let (off, to) = csr;
    &to[off[v as usize] as usize..off[v as usize + 1] as usize]
}

/// Jobs in a topological order (parents before children), ties by index: stable.
pub fn topo_jobs(ir: &Ir) -> Vec<u32> {
    topo_order(ir.jobs.len(), &ir.edges)
}

/// The smallest topological order of `n` nodes (by index, lexicographically): Kahn's
/// algorithm taking the smallest ready node first, with a sweep instead of a heap for the
/// nodes that are ready when the sweep reaches them. Lowering numbers jobs mostly parents
/// first (a join node is numbered after the jobs it feeds), so almost every node comes from
/// the sweep and the heap holds the few that became ready behind it: O(n + edges) then.
fn topo_order(n: usize, edges: &[(u32, u32)]) -> Vec<u32> {
    let (off, to) = csr_children(n, edges);
    let mut indeg = vec![0u32; n];
    for &(_, c) in edges {
        indeg[c as usize] += 1;
    }
    // `late`: ready nodes behind the sweep (they had parents left when it passed them).
    let mut late: std::collections::BinaryHeap<std::cmp::Reverse<u32>> = std::collections::BinaryHeap::new();
    let mut sweep = 0usize;
    let mut out = Vec::with_capacity(n);
    loop {
        // Everything in `late` is behind the sweep, so smaller than any node it would find.
        let v = match late.pop() {
            Some(std::cmp::Reverse(v)) => v,
            None => {
                while sweep < n && indeg[sweep] != 0 {
                    sweep += 1;
                }
                if sweep == n {
                    break;
                }
                sweep += 1;
                (sweep - 1) as u32
            }
        };
        out.push(v);
        for &w in &to[off[v as usize] as usize..off[v as usize + 1] as usize] {
            indeg[w as usize] -= 1;
            if indeg[w as usize] == 0 && (w as usize) < sweep {
                late.push(std::cmp::Reverse(w));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csr_both_ways() {
        let edges = [(0, 1), (0, 2), (1, 3), (2, 3)];
        let ch = csr_children(4, &edges);
        assert_eq!(row(&ch, 0), &[1, 2]);
        assert_eq!(row(&ch, 3), &[] as &[u32]);
        let pa = csr_parents(4, &edges);
        assert_eq!(row(&pa, 3), &[1, 2]);
        assert_eq!(row(&pa, 0), &[] as &[u32]);
    }

    /// Kahn's algorithm with a heap of every ready node: the reference.
    fn topo_heap(n: usize, edges: &[(u32, u32)]) -> Vec<u32> {
        let (off, to) = csr_children(n, edges);
        let mut indeg = vec![0u32; n];
        for &(_, c) in edges {
            indeg[c as usize] += 1;
        }
        let mut heap: std::collections::BinaryHeap<std::cmp::Reverse<u32>> =
            (0..n as u32).filter(|&i| indeg[i as usize] == 0).map(std::cmp::Reverse).collect();
        let mut out = Vec::with_capacity(n);
        while let Some(std::cmp::Reverse(v)) = heap.pop() {
            out.push(v);
            for &w in &to[off[v as usize] as usize..off[v as usize + 1] as usize] {
                indeg[w as usize] -= 1;
                if indeg[w as usize] == 0 {
                    heap.push(std::cmp::Reverse(w));
                }
            }
        }
        out
    }

    #[test]
    fn the_sweep_gives_the_heap_order() {
        // Pseudo-random DAGs (xorshift, fixed seed), numbered forwards (the sweep alone),
        // with a few nodes renumbered to the end (as lowering numbers join nodes), and
        // numbered backwards (the heap does all the work): the same order as the reference,
        // and a topological one.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        for round in 0..600 {
            let n = 1 + next(40) as usize;
            let mut edges: Vec<(u32, u32)> = Vec::new();
            for _ in 0..next(3 * n as u64) {
                let (a, b) = (next(n as u64) as u32, next(n as u64) as u32);
                if a != b {
                    edges.push((a.min(b), a.max(b)));
                }
            }
            // A permutation of the node numbers: identity, some moved to the end, reversed.
            let mut perm: Vec<u32> = (0..n as u32).collect();
            match round % 3 {
                0 => {}
                1 => {
                    for _ in 0..1 + next(3) {
                        let k = next(n as u64) as usize;
                        let v = perm.remove(k);
                        perm.push(v);
                    }
                }
                _ => perm.reverse(),
            }
            let mut at = vec![0u32; n];
            for (new, &old) in perm.iter().enumerate() {
                at[old as usize] = new as u32;
            }
            let mut e: Vec<(u32, u32)> = edges.iter().map(|&(p, c)| (at[p as usize], at[c as usize])).collect();
            e.sort_unstable();
            e.dedup();
            let order = topo_order(n, &e);
            assert_eq!(order, topo_heap(n, &e), "{n} {e:?}");
            assert_eq!(order.len(), n);
            let mut pos = vec![0usize; n];
            for (i, &v) in order.iter().enumerate() {
                pos[v as usize] = i;
            }
            assert!(e.iter().all(|&(p, c)| pos[p as usize] < pos[c as usize]), "{e:?} {order:?}");
        }
    }
}
