//! CGD's published model sizes (seed README, spec s. 4.1): ResNet-50 backbone + SG head with
//! 1536-d embeddings = 23.51M + 3.15M + 4,096 + 2049 C parameters.

use metron::backbones::{ResNetConfig, parameter_count};
use metron::descriptors::CgdHeadConfig;

#[test]
fn resnet50_sg_1536_matches_the_published_sizes() {
    let device = metron::core::parse_device("cpu").unwrap();
    let backbone = parameter_count(
        &ResNetConfig::resnet50()
            .with_layer3_stride_1(true)
            .init(&device)
            .unwrap(),
    );
    assert_eq!(backbone, 23_508_032);
    // CUB / Cars (98 training classes): 26.86M; SOP (11,318): 49.85M; In-shop (3,997): 34.85M.
    for (classes, millions) in [(98, 26.86), (11_318, 49.85), (3_997, 34.85)] {
        let head = CgdHeadConfig::new(classes)
            .with_descriptors("SG")
            .init(&device)
            .unwrap();
        let head_params = parameter_count(&head);
        assert_eq!(head_params, 2 * 2048 * 768 + 2 * 2048 + 2049 * classes);
        let total = (backbone + head_params) as f64 / 1e6;
        assert!(
            (total - millions).abs() < 0.005,
            "{classes} classes: {total:.3}M vs {millions}M"
        );
    }
}
