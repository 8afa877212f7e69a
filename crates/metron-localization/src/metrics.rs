//! Localisation accuracy over images, as WGOL's `evaluate_quick.py` counts it.

use crate::{LocalizationError, PixelBox, Result};

/// The IoU a box must exceed (strictly) against some ground-truth box to count.
const IOU_THRESHOLD: f64 = 0.5;

/// What the network predicted for one image, and the truth.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageOutcome {
    /// The image's class.
    pub gt_class: usize,
    /// Every ground-truth box of the image (ILSVRC images may have several).
    pub gt_boxes: Vec<PixelBox>,
    /// The top predicted classes, best first (usually 5).
    pub top_classes: Vec<usize>,
    /// The box predicted for each of `top_classes`, in the same order (a class-agnostic map
    /// gives the same box for all).
    pub boxes: Vec<PixelBox>,
    /// The box of the ground-truth class's map (for GT-known localisation).
    pub gt_known_box: PixelBox,
}

/// Counts over images. A box is correct when its IoU with **any** ground-truth box is > 0.5;
/// a (class, box) pair when the class is the image's too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LocalizationCounts {
    /// Images counted.
    pub images: usize,
    /// Top-1 class right.
    pub top1_cls: usize,
    /// The class among the top 5.
    pub top5_cls: usize,
    /// Top-1 class right and its box correct.
    pub top1_loc: usize,
    /// Some top-5 class right with its box correct.
    pub top5_loc: usize,
    /// The ground-truth class's box correct (class ignored).
    pub gt_known_loc: usize,
    /// Why the top-1 (class, box) pairs that were wrong were wrong.
    pub errors: ErrorBreakdown,
}

/// Why a top-1 (class, box) pair is not a correct localisation (the original's
/// `get_badcase_detail`), checked in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LocalizationMiss {
    /// The top-1 class is wrong.
    ClassWrong,
    /// The image has several objects and the box covers more than 30 % of at least two
    /// (intersection over each ground-truth box's area).
    MultiInstance,
    /// More than half of the box lies on the best-matching object: it found a part.
    Part,
    /// The box covers at least 70 % of the best-matching object: it took in too much.
    More,
    /// Anything else.
    Other,
}

/// Counts of [`LocalizationMiss`] over images.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorBreakdown {
    /// [`LocalizationMiss::ClassWrong`].
    pub class_wrong: usize,
    /// [`LocalizationMiss::MultiInstance`].
    pub multi_instance: usize,
    /// [`LocalizationMiss::Part`].
    pub part: usize,
    /// [`LocalizationMiss::More`].
    pub more: usize,
    /// [`LocalizationMiss::Other`].
    pub other: usize,
}

impl ErrorBreakdown {
    fn add(&mut self, miss: LocalizationMiss) {
        let slot = match miss {
            LocalizationMiss::ClassWrong => &mut self.class_wrong,
            LocalizationMiss::MultiInstance => &mut self.multi_instance,
            LocalizationMiss::Part => &mut self.part,
            LocalizationMiss::More => &mut self.more,
            LocalizationMiss::Other => &mut self.other,
        };
        *slot += 1;
    }
}

/// Intersection over the area of `of` (+1-pixel convention).
fn overlap_fraction(b: &PixelBox, other: &PixelBox, of: &PixelBox) -> f64 {
    let iw = b.x2.min(other.x2) - b.x1.max(other.x1) + 1;
    let ih = b.y2.min(other.y2) - b.y1.max(other.y1) + 1;
    let inter = (iw.max(0) * ih.max(0)) as f64;
    let area = of.area() as f64;
    if area > 0.0 { inter / area } else { 0.0 }
}

/// Why the top-1 pair of `image` misses, or `None` when it is a correct localisation.
pub fn top1_miss(image: &ImageOutcome) -> Option<LocalizationMiss> {
    if image.top_classes.first() != Some(&image.gt_class) {
        return Some(LocalizationMiss::ClassWrong);
    }
    let b = image.boxes.first()?;
    // The best ground truth by IoU; the first one when none overlaps (as the original).
    let (mut best, mut best_iou) = (0, 0.0);
    for (i, g) in image.gt_boxes.iter().enumerate() {
        let iou = b.iou(g);
        if iou > best_iou {
            (best, best_iou) = (i, iou);
        }
    }
    if best_iou > IOU_THRESHOLD {
        return None;
    }
    let gts = &image.gt_boxes;
    if gts.len() > 1
        && gts
            .iter()
            .filter(|g| overlap_fraction(b, g, g) > 0.3)
            .count()
            > 1
    {
        return Some(LocalizationMiss::MultiInstance);
    }
    let g = gts.get(best)?;
    if overlap_fraction(b, g, b) > 0.5 {
        Some(LocalizationMiss::Part)
    } else if overlap_fraction(b, g, g) >= 0.7 {
        Some(LocalizationMiss::More)
    } else {
        Some(LocalizationMiss::Other)
    }
}

fn box_correct(b: &PixelBox, truth: &[PixelBox]) -> bool {
    truth.iter().any(|g| b.iou(g) > IOU_THRESHOLD)
}

impl LocalizationCounts {
    /// Counts image number `index` (for error messages). An image without a ground-truth box
    /// or a predicted class, or with fewer boxes than classes, is an error.
    pub fn add(&mut self, index: usize, image: &ImageOutcome) -> Result<()> {
        let bad = |why: &str| {
            Err(LocalizationError::BadImage {
                image: index,
                why: why.into(),
            })
        };
        if image.gt_boxes.is_empty() {
            return bad("no ground-truth box");
        }
        if image.top_classes.is_empty() {
            return bad("no predicted class");
        }
        if image.boxes.len() < image.top_classes.len() {
            return bad("fewer predicted boxes than predicted classes");
        }
        let right = |k: usize| image.top_classes[k] == image.gt_class;
        let located = |k: usize| right(k) && box_correct(&image.boxes[k], &image.gt_boxes);
        let top5 = image.top_classes.len().min(5);
        self.images += 1;
        self.top1_cls += usize::from(right(0));
        self.top5_cls += usize::from((0..top5).any(right));
        self.top1_loc += usize::from(located(0));
        self.top5_loc += usize::from((0..top5).any(located));
        self.gt_known_loc += usize::from(box_correct(&image.gt_known_box, &image.gt_boxes));
        if let Some(miss) = top1_miss(image) {
            self.errors.add(miss);
        }
        Ok(())
    }

    fn fraction(&self, n: usize) -> f64 {
        if self.images == 0 {
            0.0
        } else {
            n as f64 / self.images as f64
        }
    }

    /// Top-1 classification accuracy, a fraction.
    pub fn top1_cls_accuracy(&self) -> f64 {
        self.fraction(self.top1_cls)
    }

    /// Top-5 classification accuracy.
    pub fn top5_cls_accuracy(&self) -> f64 {
        self.fraction(self.top5_cls)
    }

    /// Top-1 localisation accuracy (class and box right).
    pub fn top1_loc(&self) -> f64 {
        self.fraction(self.top1_loc)
    }

    /// Top-5 localisation accuracy.
    pub fn top5_loc(&self) -> f64 {
        self.fraction(self.top5_loc)
    }

    /// GT-known localisation accuracy (box right, class given).
    pub fn gt_known_loc(&self) -> f64 {
        self.fraction(self.gt_known_loc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(
        gt_class: usize,
        top: Vec<usize>,
        boxes: Vec<PixelBox>,
        gt_known: PixelBox,
    ) -> ImageOutcome {
        ImageOutcome {
            gt_class,
            gt_boxes: vec![PixelBox::new(0, 0, 9, 9), PixelBox::new(20, 20, 29, 29)],
            top_classes: top,
            boxes,
            gt_known_box: gt_known,
        }
    }

    #[test]
    fn counts_follow_the_original_rules_on_hand_made_images() {
        let good = PixelBox::new(1, 1, 9, 9); // 81 / 100 with the first box
        let second = PixelBox::new(21, 20, 29, 29); // 90 / 100 with the second box
        let half = PixelBox::new(5, 0, 14, 9); // exactly 50 / 150 < 0.5
        let exact_half = PixelBox::new(0, 0, 19, 9); // 100 / 200 = 0.5: not > 0.5
        assert_eq!(exact_half.iou(&PixelBox::new(0, 0, 9, 9)), 0.5);
        let mut c = LocalizationCounts::default();
        // 1: right class, good box -> top-1 loc.
        c.add(0, &image(3, vec![3, 1], vec![good, half], good))
            .unwrap();
        // 2: wrong top-1, right at rank 2 with a box matching the *second* ground truth.
        c.add(1, &image(3, vec![1, 3], vec![good, second], second))
            .unwrap();
        // 3: right class, box at IoU exactly 0.5 -> not located; GT-known box too.
        c.add(2, &image(3, vec![3], vec![exact_half], exact_half))
            .unwrap();
        // 4: wrong classes, but the GT-known box is right.
        c.add(3, &image(3, vec![0, 1, 2, 4, 5, 3], vec![good; 6], good))
            .unwrap();
        assert_eq!(
            c,
            LocalizationCounts {
                images: 4,
                top1_cls: 2,
                top5_cls: 3,
                top1_loc: 1,
                top5_loc: 2,
                gt_known_loc: 3,
                errors: ErrorBreakdown {
                    class_wrong: 2,
                    more: 1,
                    ..ErrorBreakdown::default()
                },
            }
        );
        assert_eq!(c.top1_loc(), 0.25);
        assert_eq!(c.gt_known_loc(), 0.75);
        assert!(c.add(4, &image(3, vec![], vec![], good)).is_err());
        let mut no_truth = image(3, vec![3], vec![good], good);
        no_truth.gt_boxes.clear();
        assert_eq!(
            c.add(5, &no_truth).unwrap_err().to_string(),
            "image 5: no ground-truth box"
        );
    }
}
