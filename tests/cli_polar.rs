//! `metron polar` as a user runs it: outputs, resuming, and failures that name the file.

mod common;
use common::metron;

use std::path::Path;
use std::process::Output;

use image::{Rgb, RgbImage};
use metron::datasets::PolarTransform;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn stdout_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two aerial images: `a.png` (10 wide, 12 high) and `sub/b.jpg` (9 x 9), plus a file that is
/// not an image.
fn aerial_folder(root: &Path) {
    std::fs::create_dir_all(root.join("sub")).unwrap();
    RgbImage::from_fn(10, 12, |x, y| {
        Rgb([(x * 25) as u8, (y * 20) as u8, (x * y) as u8])
    })
    .save(root.join("a.png"))
    .unwrap();
    RgbImage::from_fn(9, 9, |x, y| Rgb([200 - (x * 10) as u8, (y * 30) as u8, 90]))
        .save(root.join("sub/b.jpg"))
        .unwrap();
    std::fs::write(root.join("notes.txt"), "not an image").unwrap();
}

/// Asserts that `out_dir` holds the transform of every input, pixel for pixel.
fn assert_outputs(input: &Path, out_dir: &Path, t: &PolarTransform) {
    for (src, dst) in [("a.png", "a.png"), ("sub/b.jpg", "sub/b.png")] {
        let got = image::open(out_dir.join(dst)).unwrap().to_rgb8();
        assert_eq!(got.dimensions(), (t.width, t.height), "{dst}");
        let want = t
            .apply(&image::open(input.join(src)).unwrap().to_rgb8())
            .unwrap();
        assert!(got == want, "{dst} differs from PolarTransform::apply");
    }
}

#[test]
fn writes_the_transforms_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("aerial"), tmp.path().join("polar"));
    aerial_folder(&input);
    let run = |extra: &[&str]| {
        let mut args = vec![
            "polar",
            "--input",
            p(&input),
            "--output",
            p(&output),
            "--size",
            "8x32",
            "--quiet",
        ];
        args.extend_from_slice(extra);
        metron(&args)
    };

    let text = stdout_ok(&run(&[]));
    assert!(text.contains("2 written, 0 skipped"), "{text}");
    assert_eq!(text.trim_end().lines().count(), 1, "{text}");
    assert!(!output.join("notes.png").exists());
    assert_outputs(&input, &output, &PolarTransform::new(8, 32));

    // Without --overwrite, existing outputs are kept even if the options changed.
    let text = stdout_ok(&run(&["--radius", "3"]));
    assert!(text.contains("0 written, 2 skipped"), "{text}");
    assert_outputs(&input, &output, &PolarTransform::new(8, 32));

    let text = stdout_ok(&run(&["--overwrite", "--center", "4,5.5", "--radius", "3"]));
    assert!(text.contains("2 written, 0 skipped"), "{text}");
    let custom = PolarTransform::new(8, 32)
        .with_center([4.0, 5.5])
        .with_radius(3.0);
    assert_outputs(&input, &output, &custom);
}

#[test]
fn an_output_folder_inside_the_input_is_not_searched() {
    let tmp = tempfile::tempdir().unwrap();
    aerial_folder(tmp.path());
    let output = tmp.path().join("polar");
    let args = [
        "polar",
        "--input",
        p(tmp.path()),
        "--output",
        p(&output),
        "--size",
        "4x8",
        "--quiet",
    ];
    assert!(stdout_ok(&metron(&args)).contains("2 written"));
    // A second run finds the same two inputs, not the outputs as new ones.
    assert!(
        stdout_ok(&metron(&args)).contains("0 written, 2 skipped (already there), 0 failed, of 2")
    );
}

#[test]
fn a_missing_input_folder_is_a_one_line_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-aerial");
    let out = metron(&[
        "polar",
        "--input",
        p(&missing),
        "--output",
        p(&tmp.path().join("out")),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("no-such-aerial"), "{err}");
}

#[test]
fn corrupt_images_are_listed_and_the_others_still_written() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("aerial"), tmp.path().join("polar"));
    aerial_folder(&input);
    std::fs::write(input.join("broken.png"), b"not a png").unwrap();
    let out = metron(&[
        "polar",
        "--input",
        p(&input),
        "--output",
        p(&output),
        "--size",
        "8x32",
        "--quiet",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("broken.png: cannot decode"), "{err}");
    assert!(
        err.contains("2 written, 0 skipped (already there), 1 failed"),
        "{err}"
    );
    assert_outputs(&input, &output, &PolarTransform::new(8, 32));
    assert!(!output.join("broken.png").exists());
}

#[test]
fn bad_geometry_is_refused_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    aerial_folder(tmp.path());
    let output = tmp.path().join("out");
    for (flag, value, needle) in [
        ("--size", "128", "HEIGHTxWIDTH"),
        ("--center", "3", "ROW,COL"),
        ("--radius", "0", "radius"),
    ] {
        let out = metron(&[
            "polar",
            "--input",
            p(tmp.path()),
            "--output",
            p(&output),
            flag,
            value,
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {err}");
        assert!(err.contains(needle), "{flag} {value}: {err}");
    }
    assert!(!output.join("a.png").exists());
}
