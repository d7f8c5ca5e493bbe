//! bpsc: the batch production workflow compiler.
//!
//! The core (syntax, checking, lowering, engines' text generation) is pure: it reads files
//! only through the [`fs::Fs`] trait and engines write only through
//! [`backend::Output`], so tests run it on in-memory trees.
//!
//! Layers, each importing only from the ones above it:
//!
//! | layer | modules |
//! |---|---|
//! | foundations | [`source`], [`fs`], [`diag`], [`coverage`], [`syntax`] |
//! | front end | [`check`], [`fmt`], [`lsp`], [`synth`] |
//! | the IR | [`ir`] (imports nothing from the checker) |
//! | lowering | [`lower`] (checker → IR) |
//! | engines | [`backend`] (IR → engine files; engine state) and [`submitdir`] (the submit-directory contract) |
//! | the compile path | [`pipeline`], [`outdir`] |
//! | running campaigns | [`wrap`], [`provstore`], [`status`], [`restart`], [`operate`] (submit, cancel, hold, release, priority), [`report`] |
//! | commands | [`cli`] |

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
pub mod operate;
pub mod outdir;
pub mod pipeline;
pub mod provstore;
pub mod report;
pub mod restart;
pub mod source;
pub mod status;
pub mod submitdir;
pub mod syntax;
pub mod synth;
pub mod ui;
pub mod wrap;
