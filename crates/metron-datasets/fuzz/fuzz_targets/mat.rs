//! The MAT-file parser, and the Cars196 and CVACT readers on top of it.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use metron_datasets::{CvactLayout, parse_cars196, parse_cvact, parse_mat};

fuzz_target!(|data: &[u8]| {
    let root = Path::new("/fuzz");
    if parse_mat(&root.join("x.mat"), data).is_ok() {
        let _ = parse_cars196(root, data);
        for layout in [
            CvactLayout::Polar,
            CvactLayout::NonPolar,
            CvactLayout::NonPolarSaigVal,
        ] {
            let _ = parse_cvact(root, data, layout);
        }
    }
});
