pub mod coverage;
