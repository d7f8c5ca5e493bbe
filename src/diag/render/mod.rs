//! Renderers of diagnostics.
mod plain;
pub use plain::*;
