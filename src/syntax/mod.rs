//! Lexing and parsing of `.bps` files.
pub mod ast;
pub mod lexer;
pub mod lookup;
pub mod parser;

pub use parser::{parse, Parsed};
