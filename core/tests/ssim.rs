//! SSIM against scikit-image's `structural_similarity` on real frames (fixture made by
//! `core/tests/fixtures/make_ssim_fixture.py`; the training crate checks its Burn SSIM
//! against the same file).

use serde::Deserialize;
use spmkd_core::ssim::Ssim;

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
        serde_json::from_str(include_str!("fixtures/ssim.json")).expect("fixture parses");
    assert_eq!(fixture.cases.len(), 5);
    let mut ssim = Ssim::default();
    for case in fixture.cases {
        let [h, w] = case.size;
        let ours = ssim.compute(&case.x, &case.y, w, h).unwrap();
        assert!(
            (ours as f64 - case.ssim).abs() < 1e-4,
            "{}: ours {ours}, scikit-image {}",
            case.name,
            case.ssim
        );
    }
}
