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

/// The smallest topological order of `n` nodes (by index, lexicographically).
fn topo_order(n: usize, edges: &[(u32, u32)]) -> Vec<u32> {
    // Lowering numbers jobs so that parents usually come first; when every edge agrees, the
    // index order is the smallest topological order, the one the heap would give.
    if edges.iter().all(|&(p, c)| p < c) {
        return (0..n as u32).collect();
    }
    topo_heap(n, edges)
}

/// Kahn's algorithm, taking the smallest ready node first.
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

    #[test]
    fn the_index_order_shortcut_gives_the_heap_order() {
        // Pseudo-random DAGs (xorshift, fixed seed): edges forward in index order take the
        // shortcut, and it must give what the heap gives; with one edge pointing back, the
        // heap decides and the order is still topological.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        for _ in 0..200 {
            let n = 1 + next(40) as usize;
            let mut edges: Vec<(u32, u32)> = Vec::new();
            for _ in 0..next(3 * n as u64) {
                let (a, b) = (next(n as u64) as u32, next(n as u64) as u32);
                if a != b {
                    edges.push((a.min(b), a.max(b)));
                }
            }
            edges.sort_unstable();
            edges.dedup();
            let fast = topo_order(n, &edges);
            assert_eq!(fast, topo_heap(n, &edges), "{n} {edges:?}");
            assert_eq!(fast, (0..n as u32).collect::<Vec<_>>());
            // Renumber: node i becomes n-1-i, so every edge points back and the heap decides.
            let mut back: Vec<(u32, u32)> = edges.iter().map(|&(p, c)| (n as u32 - 1 - p, n as u32 - 1 - c)).collect();
            back.sort_unstable();
            let order = topo_order(n, &back);
            assert_eq!(order, topo_heap(n, &back));
            let mut pos = vec![0usize; n];
            for (i, &v) in order.iter().enumerate() {
                pos[v as usize] = i;
            }
            assert!(back.iter().all(|&(p, c)| pos[p as usize] < pos[c as usize]), "{back:?} {order:?}");
            assert_eq!(order.len(), n);
        }
    }
}
