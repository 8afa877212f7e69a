//! Retrieval grids through the public API: geometry, border colours, decoding from files,
//! errors naming the file, PNG round trip.

use std::path::{Path, PathBuf};

use image::{GrayImage, Luma, Rgb, RgbImage};
use metron_viz::{
    GridImage, GridLayout, GridRow, Palette, VizError, render_retrieval_grid, save_retrieval_grid,
};

fn write_png(dir: &Path, name: &str, img: &RgbImage) -> PathBuf {
    let path = dir.join(name);
    img.save(&path).unwrap();
    path
}

#[test]
fn size_is_rows_by_k_plus_one_thumbnails() {
    let pic = || GridImage::Rgb(RgbImage::from_pixel(30, 20, Rgb([9, 9, 9])));
    let rows: Vec<GridRow> = (0..3)
        .map(|_| {
            let mut row = GridRow::new(pic());
            for k in 0..4 {
                row = row.with_result(pic(), k % 2 == 0);
            }
            row
        })
        .collect();
    let thumb = 48;
    let img = render_retrieval_grid(&rows, thumb).unwrap();
    let l = GridLayout::new(thumb).unwrap();
    let (k, n) = (4u32, 3u32);
    let w = 2 * l.margin + (k + 1) * thumb + l.query_gap + (k - 1) * l.gap;
    let h = 2 * l.margin + n * thumb + (n - 1) * l.gap;
    assert_eq!(img.dimensions(), (w, h));
    assert_eq!(l.picture_size(3, 4).unwrap(), (w, h));
}

#[test]
fn hit_border_is_green_miss_border_red_query_border_blue() {
    let pic = || GridImage::Rgb(RgbImage::from_pixel(10, 10, Rgb([128, 128, 128])));
    let rows = [
        GridRow::new(pic())
            .with_result(pic(), true)
            .with_result(pic(), false),
        GridRow::new(pic()).with_result(pic(), false),
    ];
    let img = render_retrieval_grid(&rows, 64).unwrap();
    let l = GridLayout::new(64).unwrap();
    let b = u64::from(l.border);
    let inside_border = |(x, y): (u64, u64)| {
        // Middle of the left border strip and of the top strip.
        [
            ((x + b / 2) as u32, (y + 32) as u32),
            ((x + 32) as u32, (y + b / 2) as u32),
        ]
    };
    for p in inside_border(l.query_origin(0))
        .into_iter()
        .chain(inside_border(l.query_origin(1)))
    {
        assert_eq!(*img.get_pixel(p.0, p.1), Palette::QUERY);
    }
    for p in inside_border(l.result_origin(0, 0)) {
        assert_eq!(*img.get_pixel(p.0, p.1), Palette::HIT);
    }
    for p in inside_border(l.result_origin(0, 1))
        .into_iter()
        .chain(inside_border(l.result_origin(1, 0)))
    {
        assert_eq!(*img.get_pixel(p.0, p.1), Palette::MISS);
    }
    // Row 1 has one result: its second cell is blank background.
    let (x, y) = l.result_origin(1, 1);
    assert_eq!(
        *img.get_pixel((x + 32) as u32, (y + 32) as u32),
        Palette::BACKGROUND
    );
    // The picture itself shows through inside the frame.
    let (x, y) = l.result_origin(0, 0);
    assert_eq!(
        *img.get_pixel((x + 32) as u32, (y + 32) as u32),
        Rgb([128, 128, 128])
    );
}

#[test]
fn decodes_png_jpeg_and_grey_files() {
    let dir = tempfile::tempdir().unwrap();
    let red = write_png(
        dir.path(),
        "red.png",
        &RgbImage::from_pixel(40, 30, Rgb([250, 0, 0])),
    );
    let jpg = dir.path().join("blue.jpg");
    RgbImage::from_pixel(16, 16, Rgb([0, 0, 250]))
        .save(&jpg)
        .unwrap();
    let grey = dir.path().join("grey.png");
    GrayImage::from_pixel(8, 8, Luma([77])).save(&grey).unwrap();

    let rows = [GridRow::new(red.as_path())
        .with_result(jpg.clone(), true)
        .with_result(grey.as_path(), false)];
    let img = render_retrieval_grid(&rows, 32).unwrap();
    let l = GridLayout::new(32).unwrap();
    let centre = |(x, y): (u64, u64)| *img.get_pixel((x + 16) as u32, (y + 16) as u32);
    assert_eq!(centre(l.query_origin(0)), Rgb([250, 0, 0]));
    let Rgb([r, g, bl]) = centre(l.result_origin(0, 0));
    assert!(
        r < 20 && g < 20 && bl > 230,
        "JPEG blue came back as {r},{g},{bl}"
    );
    assert_eq!(centre(l.result_origin(0, 1)), Rgb([77, 77, 77]));
}

#[test]
fn corrupt_file_is_an_image_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let ok = write_png(dir.path(), "ok.png", &RgbImage::new(4, 4));
    let bad = dir.path().join("broken.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\nthis is not a png").unwrap();
    let rows = [GridRow::new(ok.as_path()).with_result(bad.as_path(), true)];
    match render_retrieval_grid(&rows, 32) {
        Err(VizError::Image { path, why }) => {
            assert_eq!(path, bad);
            assert!(!why.is_empty());
        }
        other => panic!("expected VizError::Image, got {other:?}"),
    }
    let err = render_retrieval_grid(&rows, 32).unwrap_err();
    assert!(err.to_string().contains("broken.png"), "{err}");
    // Saving fails the same way and writes nothing.
    let out = dir.path().join("grid.png");
    assert!(matches!(
        save_retrieval_grid(&out, &rows, 32),
        Err(VizError::Image { .. })
    ));
    assert!(!out.exists());
}

#[test]
fn missing_file_is_a_read_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("gone.jpg");
    let rows = [GridRow::new(missing.as_path())];
    match render_retrieval_grid(&rows, 32) {
        Err(VizError::Read { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected VizError::Read, got {other:?}"),
    }
}

#[test]
fn png_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let q = write_png(
        dir.path(),
        "q.png",
        &RgbImage::from_fn(50, 70, |x, y| Rgb([x as u8 * 5, y as u8 * 3, 100])),
    );
    let rows = [
        GridRow::new(q.as_path())
            .with_result(q.as_path(), true)
            .with_result(RgbImage::from_pixel(5, 5, Rgb([0, 200, 200])), false),
        GridRow::new(RgbImage::from_pixel(90, 10, Rgb([1, 2, 3]))),
    ];
    let out = dir.path().join("grid.png");
    save_retrieval_grid(&out, &rows, 40).unwrap();
    let back = image::open(&out).unwrap().to_rgb8();
    assert_eq!(back, render_retrieval_grid(&rows, 40).unwrap());
}

#[test]
fn unjudged_results_get_grey_frames_and_a_caption() {
    let pic = || GridImage::Rgb(RgbImage::from_pixel(10, 10, Rgb([128, 128, 128])));
    let judged = [GridRow::new(pic()).with_result(pic(), true)];
    let unjudged = [GridRow::new(pic()).with_unjudged_result(pic())];
    let a = render_retrieval_grid(&judged, 64).unwrap();
    let b = render_retrieval_grid(&unjudged, 64).unwrap();
    let l = GridLayout::new(64).unwrap();
    let (x, y) = l.result_origin(0, 0);
    let border = ((x + u64::from(l.border) / 2) as u32, (y + 32) as u32);
    assert_eq!(*a.get_pixel(border.0, border.1), Palette::HIT);
    assert_eq!(*b.get_pixel(border.0, border.1), Palette::UNJUDGED);
    // The caption adds a line of text below the grid, and only then.
    assert_eq!(a.dimensions(), l.picture_size(1, 1).unwrap());
    assert!(b.height() > a.height());
    let below = (a.height()..b.height())
        .flat_map(|y| (0..b.width()).map(move |x| (x, y)))
        .filter(|&(x, y)| *b.get_pixel(x, y) == Palette::TEXT)
        .count();
    assert!(below > 50, "no caption text drawn ({below} text pixels)");
    assert!(metron_viz::UNJUDGED_CAPTION.contains("UNKNOWN"));
}
