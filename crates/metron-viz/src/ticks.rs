//! "Nice" axis ticks: round numbers (1, 2, 2.5 or 5 times a power of ten) that a reader can
//! interpolate between, with labels printed to exactly the precision the step needs.

/// Most ticks an axis gets.
const MAX_TICKS: usize = 6;
/// Fewest ticks an axis gets (a consequence of the search, checked by the tests).
#[cfg(test)]
const MIN_TICKS: usize = 4;
/// Step mantissas, ascending. Consecutive ratios are at most 2, which is what guarantees that
/// the smallest step giving at most six ticks still gives at least four.
const MANTISSAS: [f64; 4] = [1.0, 2.0, 2.5, 5.0];
/// Below this a range (or a value) counts as zero; keeps `10^e` away from underflow.
const TINY: f64 = 1e-150;

/// Ticks of one axis: their values (the first at or below the data's minimum, the last at or
/// above its maximum, so the axis spans exactly `values[0] ..= values[last]`) and their labels.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ticks {
    pub values: Vec<f64>,
    pub labels: Vec<String>,
}

impl Ticks {
    /// First and last tick: the axis range.
    pub fn range(&self) -> (f64, f64) {
        (self.values[0], self.values[self.values.len() - 1])
    }
}

/// Four to six evenly spaced round values covering `[min, max]`: the first is at or below
/// `min`, the last at or above `max`, and the step is 1, 2, 2.5 or 5 times a power of ten
/// (the smallest such step that needs at most six ticks).
///
/// An empty range (`min == max`) is widened around the value (by 10% of it, or to
/// `[-1, 1]` around zero); non-finite bounds fall back to `[0, 1]`; swapped bounds are
/// accepted. Never panics, never returns fewer than two values.
///
/// ```
/// let t = metron_viz::nice_ticks(0.37, 0.93);
/// assert_eq!(t, vec![0.2, 0.4, 0.6, 0.8, 1.0]);
/// ```
pub fn nice_ticks(min: f64, max: f64) -> Vec<f64> {
    compute(min, max).values
}

/// [`nice_ticks`] plus labels.
pub(crate) fn compute(min: f64, max: f64) -> Ticks {
    let (min, max) = widen(min, max);
    // Halves, so that a range like [-1e308, 1e308] does not overflow to infinity.
    let half_span = max / 2.0 - min / 2.0;
    // A step this small gives far more than MAX_TICKS ticks, so the search starts below the
    // answer and the first fit is the smallest fitting step.
    let e0 = (half_span / 30.0).log10().floor() as i32 - 1;
    for e in e0..=e0 + 4 {
        for m in MANTISSAS {
            let step = m * pow10(e);
            // A small tolerance so that 0.6 / 0.2 = 2.9999999999999996 still floors to 3.
            let lo = (min / step + 1e-9).floor();
            let hi = (max / step - 1e-9).ceil();
            let n = hi - lo + 1.0;
            if n <= MAX_TICKS as f64 {
                return build(lo as i64, hi as i64, m, e).unwrap_or_else(|| fallback(min, max));
            }
        }
    }
    fallback(min, max)
}

/// Turns an empty or non-finite range into one that ticks can cover.
fn widen(min: f64, max: f64) -> (f64, f64) {
    if !min.is_finite() || !max.is_finite() {
        return (0.0, 1.0);
    }
    let (min, max) = if min <= max { (min, max) } else { (max, min) };
    let scale = min.abs().max(max.abs());
    if max - min > scale * 1e-12 && max - min > TINY {
        return (min, max);
    }
    let mid = min / 2.0 + max / 2.0;
    if mid.abs() < TINY {
        (-1.0, 1.0)
    } else {
        let half = mid.abs() * 0.1;
        (mid - half, mid + half)
    }
}

/// 10^e; for negative e computed as a division later (see [`value`]) so ticks are the nearest
/// doubles to their decimal values (0.6, not 0.6000000000000001).
fn pow10(e: i32) -> f64 {
    10f64.powi(e)
}

/// The tick `i * m * 10^e`, correctly rounded where the decimal value has a short form.
fn value(i: i64, m: f64, e: i32) -> f64 {
    let units = i as f64 * m;
    let v = if (-22..0).contains(&e) {
        units / 10f64.powi(-e)
    } else {
        units * pow10(e)
    };
    v + 0.0 // turns -0.0 into 0.0
}

fn build(lo: i64, hi: i64, m: f64, e: i32) -> Option<Ticks> {
    let values: Vec<f64> = (lo..=hi).map(|i| value(i, m, e)).collect();
    if values.len() < 2 || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let step = m * pow10(e);
    let largest = values.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let labels = if largest >= 1e6 || step < 1e-4 {
        values.iter().map(|&v| exponent_label(v)).collect()
    } else {
        // 0.25 needs two decimals, 2.5 one, 25 none.
        let decimals = (-e + i32::from(m == 2.5)).max(0) as usize;
        values.iter().map(|&v| format!("{v:.decimals$}")).collect()
    };
    Some(Ticks { values, labels })
}

fn exponent_label(v: f64) -> String {
    if v == 0.0 {
        "0".to_owned()
    } else {
        format!("{v:e}")
    }
}

/// Two ticks at the bounds, for ranges the search cannot cover (beyond f64's reach).
fn fallback(min: f64, max: f64) -> Ticks {
    let values = vec![min, max];
    let labels = values.iter().map(|&v| exponent_label(v)).collect();
    Ticks { values, labels }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
    }

    #[test]
    fn unit_range_steps_by_a_fifth() {
        let t = compute(0.0, 1.0);
        assert_eq!(t.values, vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        assert_eq!(t.labels, ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
    }

    #[test]
    fn recall_like_range() {
        // Step 0.1 would need 0.3..=1.0 (8 ticks); 0.2 needs 0.2..=1.0 (5).
        let t = compute(0.37, 0.93);
        assert_eq!(t.values, vec![0.2, 0.4, 0.6, 0.8, 1.0]);
        assert_eq!(t.range(), (0.2, 1.0));
    }

    #[test]
    fn epochs_one_to_ten_step_by_two() {
        let t = compute(1.0, 10.0);
        assert_eq!(t.values, vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(t.labels, ["0", "2", "4", "6", "8", "10"]);
    }

    #[test]
    fn quarter_steps_print_two_decimals() {
        // Range 0..0.9: step 0.1 -> 10 ticks, 0.2 -> 6 ticks (0..1.0).
        let t = compute(0.0, 0.9);
        assert_eq!(t.values, vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        // 0.1..1.1: 0.2 -> 0.0..1.2 = 7 ticks, so 0.25 -> 0.0..1.25 = 6 ticks.
        let t = compute(0.1, 1.1);
        assert_eq!(t.values, vec![0.0, 0.25, 0.5, 0.75, 1.0, 1.25]);
        assert_eq!(t.labels, ["0.00", "0.25", "0.50", "0.75", "1.00", "1.25"]);
    }

    #[test]
    fn negative_and_large_ranges() {
        assert!(close(&nice_ticks(-3.2, 7.9), &[-5.0, 0.0, 5.0, 10.0]));
        let t = compute(120.0, 980.0);
        assert_eq!(t.values, vec![0.0, 200.0, 400.0, 600.0, 800.0, 1000.0]);
        let t = compute(0.0, 3.0e6);
        assert_eq!(t.values, vec![0.0, 1.0e6, 2.0e6, 3.0e6]);
        assert_eq!(t.labels, ["0", "1e6", "2e6", "3e6"]);
    }

    #[test]
    fn tiny_steps_use_exponents() {
        // Step 1e-4 still prints as decimals; below that, exponents.
        assert_eq!(
            compute(0.0, 0.0003).labels,
            ["0.0000", "0.0001", "0.0002", "0.0003"]
        );
        assert_eq!(compute(0.0, 0.00003).labels, ["0", "1e-5", "2e-5", "3e-5"]);
    }

    #[test]
    fn always_four_to_six_covering_ticks() {
        let mut x = 0.123_456_f64;
        for _ in 0..2000 {
            // A cheap deterministic spread of ranges over many magnitudes.
            x = (x * 9301.0 + 49297.0) % 233_280.0;
            let a = (x / 233_280.0 - 0.5) * 10f64.powi((x as i32 % 13) - 6);
            let b = a + (x / 1000.0).fract() * 10f64.powi((x as i32 % 11) - 5) + 1e-3;
            let t = compute(a, b);
            let n = t.values.len();
            assert!(
                (MIN_TICKS..=MAX_TICKS).contains(&n),
                "{a}..{b}: {:?}",
                t.values
            );
            let tol = (b - a) * 1e-9;
            assert!(
                t.values[0] <= a + tol && t.values[n - 1] >= b - tol,
                "{a}..{b}: {:?}",
                t.values
            );
            assert!(t.values.windows(2).all(|w| w[0] < w[1]));
            assert_eq!(t.labels.len(), n);
        }
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        // Widened to 0.45..0.55: step 0.02 needs 7 ticks, 0.025 needs 5.
        assert_eq!(nice_ticks(0.5, 0.5), vec![0.45, 0.475, 0.5, 0.525, 0.55]);
        let t = compute(0.5, 0.5);
        let (lo, hi) = t.range();
        assert!(lo < 0.5 && hi > 0.5);
        let t = compute(0.0, 0.0);
        assert_eq!(t.range(), (-1.0, 1.0));
        let t = compute(f64::NAN, 1.0);
        assert_eq!(t.range(), (0.0, 1.0));
        let t = compute(1.0, 0.0);
        assert_eq!(t.range(), (0.0, 1.0));
        let t = compute(-f64::MAX, f64::MAX);
        assert!(t.values.iter().all(|v| v.is_finite()));
        let (lo, hi) = t.range();
        assert!(lo <= -f64::MAX && hi >= f64::MAX);
        let t = compute(1e-300, 2e-300);
        assert!(t.values.len() >= 2);
    }
}
