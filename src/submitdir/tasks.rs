//! Task tables: `tasks/GROUP.jsonl` (one job line each) and `tasks/GROUP.idx` (u64 offsets).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::groups::Groups;
use super::output::Output;
use crate::ir::jsonl::JobLines;
use crate::ir::Ir;

/// Write every group's table.  Job lines are the IR's job lines (ids, parents, quanta with
/// their commands, transfers), so the wrapper and the status harvester read one format.
pub fn write_tables(ir: &Ir, out: &dyn Output, g: &Groups) -> io::Result<()> {
    // Render each job line once through the IR writer, routed to its group's file.  Every
    // group's writers are open at once: keep the buffers within ~64 MiB in total when there
    // are many groups (e.g. the HTCondor backend's task-table shards).
    let cap = ((64usize << 20) / g.names.len().max(1)).clamp(16 << 10, 256 << 10);
    let mut writers: Vec<(Box<dyn Write>, Box<dyn Write>, u64)> = Vec::with_capacity(g.names.len());
    for name in &g.names {
        let jf = out.create_buffered(&format!("{}/{name}.jsonl", super::TASKS), cap)?;
        let xf = out.create_buffered(&format!("{}/{name}.idx", super::TASKS), cap / 4)?;
        writers.push((jf, xf, 0));
    }
    // Lines must be in group order (index_in_group), which is IR job order.
    let mut lines = JobLines::new(ir);
    for j in 0..ir.jobs.len() as u32 {
        let line = lines.line(j);
        let (w, x, off) = &mut writers[g.group_of[j as usize] as usize];
        x.write_all(&off.to_le_bytes())?;
        w.write_all(line.as_bytes())?;
        *off += line.len() as u64;
    }
    for (mut w, mut x, _) in writers {
        w.flush()?;
        x.flush()?;
    }
    Ok(())
}

/// Read line `index` of a task table through its offsets file.
pub fn read_task(table: &Path, index: u64) -> io::Result<String> {
    let idx = table.with_extension("idx");
    let mut xf = File::open(&idx)?;
    let len = xf.metadata()?.len();
    if (index + 1) * 8 > len {
        return Err(io::Error::new(io::ErrorKind::NotFound, format!("{} has {} tasks; no task {index}", table.display(), len / 8)));
    }
    xf.seek(SeekFrom::Start(index * 8))?;
    let mut b = [0u8; 8];
    xf.read_exact(&mut b)?;
    let start = u64::from_le_bytes(b);
    let end = if (index + 2) * 8 <= len {
        xf.read_exact(&mut b)?;
        u64::from_le_bytes(b)
    } else {
        std::fs::metadata(table)?.len()
    };
    if end < start || end - start > (64 << 20) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{}: bad offsets for task {index}", idx.display())));
    }
    let mut f = File::open(table)?;
    f.seek(SeekFrom::Start(start))?;
    let mut buf = vec![0u8; (end - start) as usize];
    f.read_exact(&mut buf)?;
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
