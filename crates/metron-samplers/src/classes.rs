//! Grouping dataset indices by label, shared by the class-aware samplers.

use crate::SamplerError;

/// Dataset indices grouped by class: classes in ascending label order, indices ascending within
/// a class. A fixed order (rather than a hash map's) is what makes epochs reproducible.
pub(crate) fn group_by_class(labels: &[usize]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..labels.len()).collect();
    // Stable sort: indices stay ascending inside each class.
    order.sort_by_key(|&i| labels[i]);
    let mut classes: Vec<Vec<usize>> = Vec::new();
    let mut current = None;
    for i in order {
        if current != Some(labels[i]) {
            current = Some(labels[i]);
            classes.push(Vec::new());
        }
        if let Some(class) = classes.last_mut() {
            class.push(i);
        }
    }
    classes
}

/// The checks every class-aware sampler makes: a non-empty dataset, a positive batch size and
/// per-class count, and a batch size that is a multiple of the per-class count.
pub(crate) fn check_batch_layout(
    sampler: &'static str,
    dataset_len: usize,
    batch_size: usize,
    per_class: usize,
) -> Result<(), SamplerError> {
    if dataset_len == 0 {
        return Err(SamplerError::EmptyDataset { sampler });
    }
    if batch_size == 0 {
        return Err(SamplerError::ZeroBatchSize { sampler });
    }
    if per_class == 0 {
        return Err(SamplerError::ZeroPerClass { sampler });
    }
    if !batch_size.is_multiple_of(per_class) {
        return Err(SamplerError::NotDivisible {
            sampler,
            batch_size,
            per_class,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_sparse_labels_in_label_order() {
        let labels = [7, 2, 7, 1_000_000, 2, 2];
        assert_eq!(
            group_by_class(&labels),
            vec![vec![1, 4, 5], vec![0, 2], vec![3]]
        );
        assert!(group_by_class(&[]).is_empty());
    }
}
