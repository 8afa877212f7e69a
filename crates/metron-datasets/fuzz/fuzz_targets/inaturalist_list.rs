//! One Smooth-AP iNaturalist path list.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let root = Path::new("/fuzz");
    let _ = metron_datasets::parse_inaturalist_list(&root.join("list.txt"), text, root, "train");
});
