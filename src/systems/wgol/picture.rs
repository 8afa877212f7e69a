//! The picture of a WGOL run: test canvases with the ground-truth box, and each map as a heat
//! map with its box.

use std::collections::BTreeMap;
use std::path::Path;

use image::{Rgb, RgbImage};
use ndarray::Array2;

use metron_localization::{PixelBox, union_box};
use metron_viz::{draw_text, fill_rect, frame, save_png, text_height};

use super::canvas::Canvas;
use super::evaluate::{MapKind, Prediction, full_map};
use crate::systems::SystemError;

const GREEN: Rgb<u8> = Rgb([0, 170, 0]);
const RED: Rgb<u8> = Rgb([220, 0, 0]);

/// A column of the picture: its title and the map it shows (none: the bare canvas).
type Column<'a> = (&'a str, Option<(MapKind, &'a [(Canvas, Prediction)])>);

/// The canvas with `map` laid over it in red (strength = the map's value).
fn overlay(canvas: &RgbImage, map: Option<&Array2<f32>>) -> RgbImage {
    RgbImage::from_fn(canvas.width(), canvas.height(), |x, y| {
        let [r, g, b] = canvas.get_pixel(x, y).0.map(f32::from);
        let g = 0.299 * r + 0.587 * g + 0.114 * b;
        let m = map.map_or(0.0, |m| m[[y as usize, x as usize]].clamp(0.0, 1.0)) * 0.7;
        let mix = |target: f32| (g * (1.0 - m) + target * m) as u8;
        Rgb([mix(255.0), mix(0.0), mix(0.0)])
    })
}

fn paste_scaled(out: &mut RgbImage, img: &RgbImage, x0: u32, y0: u32, scale: u32) {
    for (x, y, p) in img.enumerate_pixels() {
        for dy in 0..scale {
            for dx in 0..scale {
                out.put_pixel(x0 + x * scale + dx, y0 + y * scale + dy, *p);
            }
        }
    }
}

fn draw_box(out: &mut RgbImage, b: &PixelBox, x0: u32, y0: u32, scale: u32, colour: Rgb<u8>) {
    let s = i64::from(scale);
    frame(
        out,
        i64::from(x0) + b.x1 * s,
        i64::from(y0) + b.y1 * s,
        (b.x2 - b.x1 + 1) * s,
        (b.y2 - b.y1 + 1) * s,
        2,
        colour,
    );
}

/// Writes one test image per row: the image with its ground-truth box (green), then the
/// CAM, SPA and SOS maps of the top-1 class as heat maps with their boxes (red) at the
/// chosen thresholds. `first` are the images and predictions of the CAM / SPA network, `sos`
/// those of the SOS network (if one was trained), for the same images. Without `truth` (a
/// user's own images) no ground-truth box or wrong-class mark is drawn.
pub fn write_localisation_picture(
    path: &Path,
    first: &[(Canvas, Prediction)],
    sos: Option<&[(Canvas, Prediction)]>,
    thresholds: &BTreeMap<MapKind, f32>,
    truth: bool,
) -> Result<(), SystemError> {
    let rows = first.len();
    if rows == 0 {
        return Ok(());
    }
    let side = first[0].0.image.width();
    let scale = if side < 128 { 2 } else { 1 };
    let cell = side * scale + 6;
    let header = text_height(2) + 8;
    let columns: Vec<Column<'_>> = {
        let mut c = vec![
            (if truth { "canvas" } else { "image" }, None),
            ("CAM", Some((MapKind::Cam, first))),
            ("SPA", Some((MapKind::Spa, first))),
        ];
        if let Some(p) = sos {
            c.push(("SOS", Some((MapKind::Sos, p))));
        }
        c
    };
    let mut out = RgbImage::from_pixel(
        cell * columns.len() as u32,
        header + cell * rows as u32,
        Rgb([255; 3]),
    );
    for (j, (title, _)) in columns.iter().enumerate() {
        draw_text(
            &mut out,
            i64::from(cell * j as u32 + 4),
            4,
            title,
            2,
            Rgb([0; 3]),
        );
    }
    for (row, (c, _)) in first.iter().enumerate() {
        let y0 = header + cell * row as u32 + 3;
        let out_size = [c.image.height() as usize, c.image.width() as usize];
        for (j, (_, map)) in columns.iter().enumerate() {
            let x0 = cell * j as u32 + 3;
            match map {
                None => {
                    paste_scaled(&mut out, &c.image, x0, y0, scale);
                    if truth {
                        draw_box(&mut out, &c.gt_box, x0, y0, scale, GREEN);
                    }
                }
                Some((kind, predictions)) => {
                    let Some((_, p)) = predictions.get(row) else {
                        continue;
                    };
                    let m = full_map(*kind, p, p.top5[0], out_size);
                    paste_scaled(&mut out, &overlay(&c.image, m.as_ref()), x0, y0, scale);
                    if truth {
                        draw_box(&mut out, &c.gt_box, x0, y0, scale, GREEN);
                    }
                    if let (Some(m), Some(t)) = (&m, thresholds.get(kind)) {
                        draw_box(&mut out, &union_box(m.view(), *t), x0, y0, scale, RED);
                    }
                    if truth && p.top5[0] != c.label {
                        // A wrong class: a red corner mark.
                        fill_rect(&mut out, i64::from(x0), i64::from(y0), 8, 8, RED);
                    }
                }
            }
        }
    }
    save_png(path, &out).map_err(metron_train::TrainError::from)?;
    Ok(())
}
