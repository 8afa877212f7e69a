//! The WGOL list files: the input is the three texts (training list, evaluation list, boxes)
//! separated by NUL bytes; an odd first byte picks ILSVRC, an even one CUB.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use metron_datasets::{WgolSet, parse_wgol};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let mut parts = text.splitn(3, '\0');
    let lists = [
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    ];
    let set = if first % 2 == 1 {
        WgolSet::Ilsvrc
    } else {
        WgolSet::Cub
    };
    let _ = parse_wgol(Path::new("/fuzz"), set, lists);
});
