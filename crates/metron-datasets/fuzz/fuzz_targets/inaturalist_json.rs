//! One iNaturalist competition JSON file.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let root = Path::new("/fuzz");
    let _ =
        metron_datasets::parse_inaturalist_json(&root.join("train2018.json"), text, root, "train");
});
