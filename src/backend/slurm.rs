//! slurm backend (being written).

use std::io;
use std::path::Path;

use super::Written;
use crate::lower::ir::Ir;

pub fn write(_ir: &Ir, _dir: &Path) -> io::Result<Written> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "the slurm backend is not written yet"))
}
