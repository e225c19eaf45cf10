//! SSIM against scikit-image's `structural_similarity` on real frames (fixture made by
//! `core/tests/fixtures/make_ssim_fixture.py`).

use burn::prelude::*;
use serde::Deserialize;
use spmkd_training::ssim::ssim;

#[derive(Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    size: [usize; 2],
    x: Vec<f32>,
    y: Vec<f32>,
    ssim: f64,
}

#[test]
fn matches_scikit_image() {
    let fixture: Fixture =
        serde_json::from_str(include_str!("../../core/tests/fixtures/ssim.json"))
            .expect("fixture parses");
    assert_eq!(fixture.cases.len(), 5);
    let device = Device::flex();
    for case in fixture.cases {
        let [h, w] = case.size;
        let x = Tensor::<4>::from_data(TensorData::new(case.x, [1, 1, h, w]), &device);
        let y = Tensor::<4>::from_data(TensorData::new(case.y, [1, 1, h, w]), &device);
        let ours: f32 = ssim(x, y).into_scalar();
        assert!(
            (ours as f64 - case.ssim).abs() < 1e-4,
            "{}: ours {ours}, scikit-image {}",
            case.name,
            case.ssim
        );
    }
}
