//! The published systems as ready-to-run recipes: configuration presets and the wiring from
//! datasets to report. The examples (`examples/*.rs`) parse flags and call these.

pub mod cgd;
