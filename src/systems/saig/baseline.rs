//! The hand-made cross-view baseline: unroll each aerial image around its centre (the polar
//! transform a ground panorama relates to) and match a ground image to the aerial image whose
//! panorama correlates best with it at the best heading, by circular cross-correlation of the
//! pixels. No learning: it measures how far geometry alone goes on the task.

use std::collections::BTreeMap;

use image::RgbImage;
use image::imageops::{self, FilterType};
use rayon::prelude::*;

use metron_datasets::PolarTransform;

use super::super::SystemError;

/// A complex number as `(re, im)`.
type Complex = (f64, f64);

/// In-place radix-2 FFT of a power-of-two length; `inverse` computes the unscaled inverse.
fn fft(a: &mut [Complex], inverse: bool) {
    let n = a.len();
    let mut j = 0;
    for i in 1..n {
        let mut bit = n >> 1;
        while j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
        if i < j {
            a.swap(i, j);
        }
    }
    let mut len = 2;
    while len <= n {
        let angle = 2.0 * std::f64::consts::PI / len as f64 * if inverse { 1.0 } else { -1.0 };
        for start in (0..n).step_by(len) {
            for k in 0..len / 2 {
                let (s, c) = (angle * k as f64).sin_cos();
                let (ur, ui) = a[start + k];
                let (vr, vi) = a[start + k + len / 2];
                let (tr, ti) = (vr * c - vi * s, vr * s + vi * c);
                a[start + k] = (ur + tr, ui + ti);
                a[start + k + len / 2] = (ur - tr, ui - ti);
            }
        }
        len <<= 1;
    }
}

/// One panorama ready for correlation: each row's spectrum along the heading axis, of the
/// grey image made zero-mean and of unit norm (so the score is a correlation coefficient).
struct Spectrum {
    rows: Vec<Vec<Complex>>,
}

fn spectrum(img: &RgbImage) -> Spectrum {
    let (w, h) = img.dimensions();
    let grey: Vec<f64> = img
        .pixels()
        .map(|p| (f64::from(p[0]) + f64::from(p[1]) + f64::from(p[2])) / 3.0)
        .collect();
    let mean = grey.iter().sum::<f64>() / grey.len().max(1) as f64;
    let norm = grey
        .iter()
        .map(|v| (v - mean) * (v - mean))
        .sum::<f64>()
        .sqrt()
        .max(1e-12);
    let rows = (0..h as usize)
        .map(|y| {
            let mut row: Vec<Complex> = (0..w as usize)
                .map(|x| ((grey[y * w as usize + x] - mean) / norm, 0.0))
                .collect();
            fft(&mut row, false);
            row
        })
        .collect();
    Spectrum { rows }
}

/// `max over shifts s of sum_{h,w} g[h, w] p[h, (w + s) mod W]`.
fn best_circular_correlation(g: &Spectrum, p: &Spectrum, buffer: &mut [Complex]) -> f64 {
    buffer.fill((0.0, 0.0));
    for (gr, pr) in g.rows.iter().zip(&p.rows) {
        for ((b, &(a_re, a_im)), &(b_re, b_im)) in buffer.iter_mut().zip(gr).zip(pr) {
            // conj(G) P
            b.0 += a_re * b_re + a_im * b_im;
            b.1 += a_re * b_im - a_im * b_re;
        }
    }
    fft(buffer, true);
    let n = buffer.len() as f64;
    buffer
        .iter()
        .map(|c| c.0 / n)
        .fold(f64::NEG_INFINITY, f64::max)
}

/// The baseline's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolarCorrelationBaseline {
    /// `[height, width]` the ground images and the aerial panoramas are compared at; the
    /// width must be a power of two (the FFT's).
    pub size: [u32; 2],
}

impl PolarCorrelationBaseline {
    /// Ranks of every ground image's own aerial image (`aerial[i]` for `ground[i]`) among all
    /// aerial images by best circular correlation, with and without its `semi_positives`,
    /// reported as `recall_at_K`, `top1_percent_k`, `recall_at_top1_percent` and `hit_rate`
    /// (the last only with semi-positives). Memory: one row of scores per worker, never
    /// `N x N`.
    pub fn evaluate(
        &self,
        ground: &[RgbImage],
        aerial: &[RgbImage],
        semi_positives: &[Vec<usize>],
        ks: &[usize],
    ) -> Result<BTreeMap<String, f64>, SystemError> {
        let [h, w] = self.size;
        if h == 0 || !w.is_power_of_two() {
            return Err(SystemError::Usage(format!(
                "the correlation baseline needs a positive height and a power-of-two width, \
                 got {h}x{w}"
            )));
        }
        let n = ground.len();
        if aerial.len() != n || n == 0 {
            return Err(SystemError::Usage(format!(
                "the correlation baseline needs one aerial image per ground image, got {n} \
                 ground and {} aerial",
                aerial.len()
            )));
        }
        match ks.iter().find(|&&k| k == 0 || k > n) {
            Some(0) => return Err(SystemError::Metrics(metron_metrics::Error::KZero)),
            Some(&k) => {
                return Err(SystemError::Metrics(metron_metrics::Error::KTooLarge {
                    k,
                    available: n,
                }));
            }
            None => {}
        }
        let unroll = PolarTransform::new(h, w);
        let ground_spectra: Vec<Spectrum> = ground
            .par_iter()
            .map(|g| spectrum(&imageops::resize(g, w, h, FilterType::Triangle)))
            .collect();
        let aerial_spectra: Vec<Spectrum> = aerial
            .par_iter()
            .map(|a| unroll.apply(a).map(|p| spectrum(&p)))
            .collect::<Result<_, _>>()?;
        let ranks: Vec<(usize, usize)> = ground_spectra
            .par_iter()
            .enumerate()
            .map_init(
                || vec![(0.0, 0.0); w as usize],
                |buffer, (i, g)| {
                    let scores: Vec<f64> = aerial_spectra
                        .iter()
                        .map(|p| best_circular_correlation(g, p, buffer))
                        .collect();
                    let own = scores[i];
                    let above: Vec<usize> = (0..n).filter(|&j| scores[j] > own).collect();
                    let semis = semi_positives.get(i).map(Vec::as_slice).unwrap_or(&[]);
                    let without = above.iter().filter(|j| !semis.contains(j)).count();
                    (above.len(), without)
                },
            )
            .collect();
        let recall = |k: usize, hit: bool| {
            ranks
                .iter()
                .filter(|(r, r_hit)| if hit { *r_hit < k } else { *r < k })
                .count() as f64
                / n as f64
        };
        let mut metrics: BTreeMap<String, f64> = ks
            .iter()
            .map(|&k| (format!("recall_at_{k}"), recall(k, false)))
            .collect();
        let k1 = metron_metrics::top1_percent_k(n);
        metrics.insert("top1_percent_k".into(), k1 as f64);
        metrics.insert("recall_at_top1_percent".into(), recall(k1, false));
        if !semi_positives.is_empty() {
            metrics.insert("hit_rate".into(), recall(1, true));
        }
        Ok(metrics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn the_fft_is_the_discrete_fourier_transform() {
        let x: Vec<Complex> = (0..8)
            .map(|i| ((i * i % 5) as f64, (i % 3) as f64))
            .collect();
        let mut y = x.clone();
        fft(&mut y, false);
        for (k, yk) in y.iter().enumerate() {
            let (mut re, mut im) = (0.0, 0.0);
            for (t, xt) in x.iter().enumerate() {
                let a = -2.0 * std::f64::consts::PI * (k * t) as f64 / 8.0;
                re += xt.0 * a.cos() - xt.1 * a.sin();
                im += xt.0 * a.sin() + xt.1 * a.cos();
            }
            assert!((yk.0 - re).abs() < 1e-9 && (yk.1 - im).abs() < 1e-9);
        }
        fft(&mut y, true);
        for (a, b) in x.iter().zip(&y) {
            assert!((a.0 - b.0 / 8.0).abs() < 1e-9 && (a.1 - b.1 / 8.0).abs() < 1e-9);
        }
    }

    #[test]
    fn correlation_finds_the_heading_and_equals_the_direct_sum() {
        let img = RgbImage::from_fn(16, 4, |x, y| Rgb([((x * 37 + y * 11) % 251) as u8; 3]));
        let rolled = RgbImage::from_fn(16, 4, |x, y| *img.get_pixel((x + 5) % 16, y));
        let (g, p) = (spectrum(&img), spectrum(&rolled));
        let mut buffer = vec![(0.0, 0.0); 16];
        let best = best_circular_correlation(&g, &p, &mut buffer);
        assert!(
            (best - 1.0).abs() < 1e-9,
            "a rotated copy correlates fully: {best}"
        );
        // Direct: the normalised grey images, the best of all 16 shifts.
        let norm = |im: &RgbImage| {
            let v: Vec<f64> = im.pixels().map(|p| f64::from(p[0])).collect();
            let m = v.iter().sum::<f64>() / v.len() as f64;
            let s = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>().sqrt();
            v.into_iter().map(|x| (x - m) / s).collect::<Vec<_>>()
        };
        let other = RgbImage::from_fn(16, 4, |x, y| Rgb([((x * x + 3 * y) % 200) as u8; 3]));
        let (a, b) = (norm(&img), norm(&other));
        let direct = (0..16)
            .map(|s| {
                (0..4)
                    .flat_map(|h| (0..16).map(move |w| (h, w)))
                    .map(|(h, w)| a[h * 16 + w] * b[h * 16 + (w + s) % 16])
                    .sum::<f64>()
            })
            .fold(f64::NEG_INFINITY, f64::max);
        let via_fft = best_circular_correlation(&g, &spectrum(&other), &mut buffer);
        assert!((direct - via_fft).abs() < 1e-9, "{direct} vs {via_fft}");
    }
}
