//! CVUSA and VIGOR readers on miniature copies of their layouts.

use std::path::Path;

use metron_datasets::*;

#[path = "support/files.rs"]
mod files;
use files::write;

#[test]
fn cvusa_pairs_polar_and_not() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(
        r,
        "splits/train-19zl.csv",
        "bingmap/19/0000001.jpg,streetview/panos/0000001.jpg,annotations/0000001.png\nbingmap/19/0000002.jpg,streetview/panos/0000002.jpg,annotations/0000002.png\n",
    );
    write(
        r,
        "splits/val-19zl.csv",
        "bingmap/19/0000003.jpg,streetview/panos/0000003.jpg,a\n",
    );
    let polar = read_cvusa(r, true).unwrap();
    assert_eq!(polar[0].satellite[1], r.join("bingmap/19/0000002.jpg"));
    assert_eq!(polar[0].ground[1], r.join("streetview/panos/0000002.jpg"));
    assert_eq!(polar[1].satellite.len(), 1);
    let plain = read_cvusa(r, false).unwrap();
    assert_eq!(plain[1].satellite[0], r.join("bingmap_ori/19/0000003.jpg"));
    write(
        r,
        "splits/val-19zl.csv",
        "ok.jpg,ok.jpg,a\nonly-one-field\n",
    );
    let err = read_cvusa(r, true).unwrap_err().to_string();
    assert!(err.contains("val-19zl.csv:2"), "{err}");
}

fn vigor(root: &Path) {
    for (city, sats) in [
        ("NewYork", ["ny_a.png", "ny_b.png"]),
        ("Seattle", ["se_a.png", "se_b.png"]),
        ("SanFrancisco", ["sf_a.png", "sf_b.png"]),
        ("Chicago", ["ch_a.png", "ch_b.png"]),
    ] {
        write(
            root,
            &format!("splits/{city}/satellite_list.txt"),
            &format!("{}\n{}\n", sats[0], sats[1]),
        );
        let line = format!(
            "pano_{city}.jpg {} 1.5 -2 {} 0 0 {} 3 4 {} 5 6\n",
            sats[1], sats[0], sats[0], sats[1]
        );
        for f in [
            "same_area_balanced_train.txt",
            "same_area_balanced_test.txt",
            "pano_label_balanced.txt",
        ] {
            write(root, &format!("splits/{city}/{f}"), &line);
        }
    }
}

#[test]
fn vigor_running_satellite_index_and_areas() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    vigor(r);
    let same = read_vigor(r, true).unwrap();
    assert_eq!(same[0].satellites.len(), 8);
    assert_eq!(same[0].panoramas.len(), 4);
    // Seattle's panorama: positive se_b = running index 2 + 1 = 3.
    let se = &same[0].panoramas[1];
    assert_eq!(se.satellites, [3, 2, 2, 3]);
    assert_eq!(se.offsets[0], [1.5, -2.0]);
    assert_eq!(se.path, r.join("Seattle/panorama/pano_Seattle.jpg"));
    assert_eq!(same[0].satellites[3], r.join("Seattle/satellite/se_b.png"));
    let cross = read_vigor(r, false).unwrap();
    assert_eq!(
        cross[1].satellites[0],
        r.join("SanFrancisco/satellite/sf_a.png")
    );
    assert_eq!(cross[1].panoramas[0].satellites[0], 1);
    write(
        r,
        "splits/Chicago/same_area_balanced_test.txt",
        "p.jpg zz.png 0 0 ch_a.png 0 0 ch_a.png 0 0 ch_a.png 0 0\n",
    );
    let err = read_vigor(r, true).unwrap_err().to_string();
    assert!(
        err.contains("same_area_balanced_test.txt:1") && err.contains("'zz.png'"),
        "{err}"
    );
    write(
        r,
        "splits/Chicago/same_area_balanced_test.txt",
        "p.jpg ch_a.png 0 x ch_a.png 0 0 ch_a.png 0 0 ch_a.png 0 0\n",
    );
    assert!(
        read_vigor(r, true)
            .unwrap_err()
            .to_string()
            .contains("delta = 'x'")
    );
    write(
        r,
        "splits/Chicago/same_area_balanced_test.txt",
        "p.jpg ch_a.png 0\n",
    );
    assert!(
        read_vigor(r, true)
            .unwrap_err()
            .to_string()
            .contains("3 fields, expected 13")
    );
}

#[test]
fn vigor_is_reachable_from_the_registry_as_ground_and_satellite_splits() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path().join("VIGOR");
    vigor(&r);
    let registry = dir.path().join("datasets.toml");
    std::fs::write(
        &registry,
        "[v]\nreader = \"vigor\"\nroot = \"VIGOR\"\n\
         [vx]\nreader = \"vigor-cross\"\nroot = \"VIGOR\"\n",
    )
    .unwrap();
    let reg = Registry::load(&registry).unwrap();
    let same = reg.read("v", None).unwrap();
    let ground = same.split("train-ground").unwrap();
    let sats = same.split("train-satellite").unwrap();
    assert_eq!((ground.samples.len(), sats.samples.len()), (4, 8));
    // A panorama's label is its positive satellite's: Seattle's is se_b (running index 3).
    assert_eq!(ground.samples[1].label, 3);
    assert_eq!(sats.samples[3].path, r.join("Seattle/satellite/se_b.png"));
    assert_eq!(ground.classes, sats.classes);
    let cross = reg.read("vx", None).unwrap();
    assert_eq!(cross.split("test-satellite").unwrap().samples.len(), 4);
}
