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
    let n = ir.jobs.len();
    let (off, to) = ir.children();
    let mut indeg = vec![0u32; n];
    for &(_, c) in &ir.edges {
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
}
