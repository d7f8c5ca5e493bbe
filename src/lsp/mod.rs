//! The language server.
pub fn run_stdio() -> Result<(), String> {
    Err("not yet".into())
}
