//! `spmkd-train optimize`: an exported model file rewritten to run faster, computing the same
//! (h-swish as one `HardSwish` node, the fuser's soft-argmax as `Softmax`, `ReduceMax` and
//! `MatMul`; see `spmkd_training::export::optimize`). For model files exported before `export`
//! did it itself; their metadata is kept.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

#[derive(Args)]
pub struct OptimizeArgs {
    /// The ONNX model file.
    model: PathBuf,
    /// Where to write the result (default: over `model`).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: &OptimizeArgs) -> Result<()> {
    let onnx =
        std::fs::read(&args.model).with_context(|| format!("reading {}", args.model.display()))?;
    let (optimized, done) = spmkd_training::export::optimize(&onnx)
        .with_context(|| format!("optimizing {}", args.model.display()))?;
    let out = args.out.as_ref().unwrap_or(&args.model);
    // Written next to the target first, so a failed write leaves the original whole.
    let partial = out.with_extension("onnx.partial");
    std::fs::write(&partial, &optimized)
        .with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, out).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "{}: {} h-swish as HardSwish; fuser: {} softmax, {} maximum, {} features product \
         rewritten ({} -> {} bytes)",
        out.display(),
        done.hard_swish,
        done.fuser.softmax,
        done.fuser.max,
        done.fuser.matmul,
        onnx.len(),
        optimized.len()
    );
    Ok(())
}
