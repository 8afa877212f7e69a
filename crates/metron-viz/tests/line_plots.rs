//! Line plots through the public API: sizes, colours, degenerate data, PNG round trip.

use metron_viz::{LinePlot, Palette, Series, VizError, render_line_plots, save_line_plots};

fn training_plots() -> Vec<LinePlot> {
    let loss = LinePlot::new("loss per epoch", "epoch", "loss")
        .with_series(Series::per_epoch("train", &[2.31, 1.52, 1.10, 0.91, 0.85]))
        .with_series(Series::per_epoch("val", &[2.40, 1.71, 1.38, 1.30, 1.29]));
    let recall = LinePlot::new("Recall@1 per epoch", "epoch", "Recall@1")
        .with_series(Series::per_epoch("test", &[0.37, 0.58, 0.71, 0.80, 0.93]));
    vec![loss, recall]
}

fn count(img: &image::RgbImage, c: image::Rgb<u8>) -> usize {
    img.pixels().filter(|p| **p == c).count()
}

#[test]
fn panels_sit_side_by_side() {
    let plots = training_plots();
    let img = render_line_plots(&plots, 320, 240).unwrap();
    assert_eq!(img.dimensions(), (640, 240));
    let one = render_line_plots(&plots[..1], 320, 240).unwrap();
    assert_eq!(one.dimensions(), (320, 240));
    // The first panel alone is exactly the left half of the pair.
    let left = image::imageops::crop_imm(&img, 0, 0, 320, 240).to_image();
    assert_eq!(left, one);
    let three = render_line_plots(
        &[plots[0].clone(), plots[1].clone(), plots[0].clone()],
        200,
        150,
    )
    .unwrap();
    assert_eq!(three.dimensions(), (600, 150));
}

#[test]
fn each_series_is_drawn_in_its_own_colour() {
    let plots = training_plots();
    let img = render_line_plots(&plots[..1], 400, 300).unwrap();
    // Curves plus legend swatches.
    assert!(count(&img, Palette::series(0)) > 100);
    assert!(count(&img, Palette::series(1)) > 100);
    assert_eq!(count(&img, Palette::series(2)), 0);
    // The recall panel has one series, in the first colour.
    let img = render_line_plots(&plots[1..], 400, 300).unwrap();
    assert!(count(&img, Palette::series(0)) > 100);
    assert_eq!(count(&img, Palette::series(1)), 0);
    // Text and frame are there too.
    assert!(count(&img, Palette::TEXT) > 100);
    assert!(count(&img, Palette::AXIS) > 100);
}

#[test]
fn nan_and_infinite_points_are_skipped() {
    let plot = LinePlot::new("nan", "x", "y").with_series(Series::new(
        "s",
        vec![
            (f64::NAN, 1.0),
            (1.0, f64::NAN),
            (2.0, 0.5),
            (3.0, f64::INFINITY),
            (f64::NEG_INFINITY, 0.0),
            (4.0, 0.7),
            (5.0, 0.8),
        ],
    ));
    let img = render_line_plots(&[plot], 300, 200).unwrap();
    assert!(count(&img, Palette::series(0)) > 0);
}

#[test]
fn degenerate_series_render() {
    let cases = [
        vec![],
        vec![(f64::NAN, f64::NAN)],
        vec![(3.0, 0.25)],
        vec![(1.0, 0.5), (2.0, 0.5), (3.0, 0.5)],
        vec![(2.0, 0.0), (2.0, 1.0)],
        vec![(0.0, 0.0), (0.0, 0.0)],
        vec![(-1e300, 1e-300), (1e300, -1e-300)],
        vec![(0.0, -f64::MAX), (1.0, f64::MAX)],
    ];
    for points in cases {
        let plot =
            LinePlot::new("degenerate", "x", "y").with_series(Series::new("s", points.clone()));
        let img =
            render_line_plots(&[plot], 300, 200).unwrap_or_else(|e| panic!("{points:?}: {e}"));
        assert_eq!(img.dimensions(), (300, 200));
    }
    // A plot with no series, and one with no text at all.
    let bare = LinePlot::default();
    let img = render_line_plots(&[bare, LinePlot::new("only a title", "", "")], 200, 120).unwrap();
    assert_eq!(img.dimensions(), (400, 120));
}

#[test]
fn single_point_is_a_visible_marker() {
    let plot = LinePlot::new("one", "", "").with_series(Series::new("s", vec![(1.0, 1.0)]));
    let img = render_line_plots(&[plot], 300, 200).unwrap();
    // A disc of radius 3 has 29 pixels; the legend swatch adds more.
    assert!(count(&img, Palette::series(0)) >= 29);
}

#[test]
fn png_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("curves.png");
    let plots = training_plots();
    save_line_plots(&path, &plots, 320, 240).unwrap();
    let back = image::open(&path).unwrap().to_rgb8();
    assert_eq!(back, render_line_plots(&plots, 320, 240).unwrap());
    // Overwriting works too (atomic rename over an existing file), and leaves no temp file.
    save_line_plots(&path, &plots[..1], 320, 240).unwrap();
    assert_eq!(image::open(&path).unwrap().width(), 320);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["curves.png"]);
}

#[test]
fn unwritable_destination_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("curves.png");
    let err = save_line_plots(&path, &training_plots(), 320, 240).unwrap_err();
    assert!(matches!(err, VizError::Write { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("curves.png"), "{msg}");
    // The path is said once, not twice.
    assert_eq!(msg.matches("curves.png").count(), 1, "{msg}");
}
