//! `assay run`: run a component locally.

use std::path::PathBuf;

use anyhow::Context;
use assay_runtime::Inputs;
use clap::Args;

use crate::Failure;
use crate::spec_args::{DeviceArgs, SpecArgs, parse_pair};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The job: a Wasm component for the assay:gpu/job world.
    pub component: PathBuf,
    /// An input blob, NAME=PATH (repeatable).
    #[arg(long = "input", short = 'i', value_name = "NAME=PATH", value_parser = parse_pair)]
    pub inputs: Vec<(String, String)>,
    /// Directory for the outputs (metadata and receipt go to DIR/.assay/).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub spec: SpecArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
}

pub fn main(args: RunArgs) -> Result<u8, Failure> {
    let component = std::fs::read(&args.component)
        .with_context(|| format!("reading component {}", args.component.display()))
        .map_err(Failure::usage)?;
    let mut inputs = Inputs::new();
    for (name, path) in &args.inputs {
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading input {name:?} from {path}"))
            .map_err(Failure::usage)?;
        if inputs.insert(name.clone(), bytes.into()).is_some() {
            return Err(Failure::usage(anyhow::anyhow!(
                "input {name:?} given twice"
            )));
        }
    }
    let spec = args.spec.build().map_err(Failure::usage)?;
    let device = args.device.device().map_err(Failure::usage)?;
    let runtime = super::runtime(device)?;
    let report = super::execute(&runtime, &component, inputs, &spec)?;
    if let Some(dir) = &args.out {
        super::write_results(dir, &report).map_err(Failure::fault)?;
    }
    if args.json {
        println!("{}", super::report_json(&report));
    } else {
        super::print_summary(&report, args.out.as_deref());
    }
    Ok(super::exit_code(&report))
}
