//! pegasus backend (being written).

use std::io;
use std::path::Path;

use super::Written;
use crate::lower::ir::Ir;

pub fn write_yaml(_ir: &Ir, _dir: &Path) -> io::Result<Written> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "the pegasus backend is not written yet"))
}

pub fn write_dax(_ir: &Ir, _dir: &Path) -> io::Result<Written> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "the pegasus backend is not written yet"))
}
