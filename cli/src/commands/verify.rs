//! `assay verify`: check a receipt's signature.

use std::path::PathBuf;

use anyhow::Context;
use assay_protocol::Receipt;
use clap::Args;

use crate::Failure;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A receipt JSON file (e.g. OUT/.assay/receipt.json).
    pub receipt: PathBuf,
}

pub fn main(args: VerifyArgs) -> Result<u8, Failure> {
    let text = std::fs::read_to_string(&args.receipt)
        .with_context(|| format!("reading {}", args.receipt.display()))
        .map_err(Failure::usage)?;
    let receipt: Receipt = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a receipt", args.receipt.display()))
        .map_err(Failure::usage)?;
    match receipt.verify() {
        Ok(()) => {
            println!(
                "valid: signed by {}; outcome {}, outputs root {}",
                receipt.body.provider_id, receipt.body.outcome, receipt.body.outputs_root
            );
            Ok(0)
        }
        Err(e) => {
            println!("INVALID: {e}");
            Ok(crate::EXIT_JOB_FAILED)
        }
    }
}
