//! Options that would make `spmkd-train` run into nonsense are refused before any work, with a
//! message naming the option: learning rates that are not finite or not in (0, 1], model sizes
//! no machine holds.

use std::process::{Command, Output};

fn spmkd_train(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spmkd-train"))
        .args(args)
        .output()
        .expect("spmkd-train runs")
}

fn refused(args: &[&str], needle: &str) {
    let o = spmkd_train(args);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{args:?} ran");
    assert!(stderr.contains(needle), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
}

#[test]
fn learning_rates_that_are_not_finite_or_not_in_0_to_1_are_refused() {
    let out = tempfile::tempdir().unwrap();
    let out = out.path().join("x");
    let out = out.to_str().unwrap();
    for lr in ["--lr=1e30", "--lr=nan", "--lr=-1", "--lr=0"] {
        refused(
            &[
                "adapt",
                "--from",
                "nowhere",
                "--recordings",
                "nowhere.raw",
                "--out",
                out,
                lr,
            ],
            "learning rate",
        );
        refused(&["train", "--run", out, lr], "learning rate");
        refused(&["posture", "--run", out, lr], "learning rate");
    }
}

#[test]
fn a_model_no_machine_holds_is_refused() {
    let out = tempfile::tempdir().unwrap();
    let out = out.path().join("x");
    let out = out.to_str().unwrap();
    refused(
        &["export", "--untrained", "--size", "100000", "--out", out],
        "--size must be a multiple of 4 from 16 to 512",
    );
    refused(
        &[
            "export",
            "--untrained",
            "--keypoints",
            "1000000",
            "--out",
            out,
        ],
        "--keypoints must be from 1 to 1024",
    );
    assert!(!std::path::Path::new(out).exists());
}
