//! The generic dataset CSV.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = metron_datasets::parse_csv(Path::new("/fuzz/data.csv"), text);
});
