//! bpsc: the batch production workflow compiler.
//!
//! The core (syntax, checking, lowering, backends' text generation) is pure: it reads
//! files only through the [`fs::Fs`] trait, so tests run it on in-memory trees.

pub mod backend;
pub mod check;
pub mod cli;
pub mod coverage;
pub mod diag;
pub mod fmt;
pub mod fs;
pub mod ir;
pub mod lower;
pub mod lsp;
pub mod outdir;
pub mod provstore;
pub mod restart;
pub mod source;
pub mod status;
pub mod syntax;
pub mod synth;
pub mod wrap;
