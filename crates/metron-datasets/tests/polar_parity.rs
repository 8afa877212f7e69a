//! Parity of [`PolarTransform`] with an independent NumPy implementation of SAFA's polar
//! transform: `tests/parity/polar_reference.py` writes its inputs and outputs into
//! `$METRON_PARITY_DIR/polar` (default `target/parity/polar` of the workspace). `.ci/run`
//! always generates them and sets `METRON_REQUIRE_PARITY=1`, so in CI missing fixtures are a
//! failure; elsewhere the test says it found nothing and returns.

use std::path::{Path, PathBuf};

use metron_core::read_npy_f64;
use metron_datasets::PolarTransform;
use serde_json::Value;

fn fixtures() -> Option<PathBuf> {
    let dir = std::env::var_os("METRON_PARITY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/parity"))
        .join("polar");
    // The script writes the parameters last, so their presence means a complete set.
    if dir.join("polar_params.json").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("METRON_REQUIRE_PARITY").is_none(),
        "METRON_REQUIRE_PARITY is set but {} has no fixtures: run tests/parity/polar_reference.py",
        dir.display()
    );
    eprintln!(
        "no polar parity fixtures in {}: run tests/parity/polar_reference.py",
        dir.display()
    );
    None
}

/// An array file as (shape, values in C order).
fn npy(path: &Path) -> (Vec<usize>, Vec<f64>) {
    let a = read_npy_f64(path).unwrap_or_else(|e| panic!("{e}"));
    (a.shape().to_vec(), a.iter().copied().collect())
}

fn assert_matches(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let (rtol, atol) = (1e-9, 1e-9);
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= atol + rtol * w.abs(),
            "{what}: value {k} is {g}, NumPy has {w}"
        );
    }
}

#[test]
fn polar_transform_matches_the_numpy_reference() {
    let Some(dir) = fixtures() else { return };
    let params: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("polar_params.json")).unwrap())
            .unwrap();
    let (shape, input) = npy(&dir.join("polar_input.npy"));
    let [rows, cols, ch] = shape[..] else {
        panic!("polar_input.npy has shape {shape:?}, expected [rows, cols, channels]")
    };
    let dim = |v: &Value| u32::try_from(v.as_u64().unwrap()).unwrap();

    let sizes = params["sizes"].as_array().unwrap();
    assert!(!sizes.is_empty());
    for size in sizes {
        let (h, w) = (dim(&size[0]), dim(&size[1]));
        let (shape, want) = npy(&dir.join(format!("polar_output_{h}_{w}.npy")));
        assert_eq!(shape, [h as usize, w as usize, ch]);
        let got = PolarTransform::new(h, w)
            .apply_f64(&input, rows, cols, ch)
            .unwrap();
        assert_matches(&format!("{h}x{w}"), &got, &want);
    }

    let c = &params["custom"];
    let (h, w) = (dim(&c["height"]), dim(&c["width"]));
    let centre = [
        c["center"][0].as_f64().unwrap(),
        c["center"][1].as_f64().unwrap(),
    ];
    let (shape, want) = npy(&dir.join("polar_output_custom.npy"));
    assert_eq!(shape, [h as usize, w as usize, ch]);
    let got = PolarTransform::new(h, w)
        .with_center(centre)
        .with_radius(c["radius"].as_f64().unwrap())
        .apply_f64(&input, rows, cols, ch)
        .unwrap();
    assert_matches("custom centre and radius", &got, &want);
}
