//! The CLI's tests, one binary (one link, one copy of the sandbox on disk):
//! `assay run` (`run`), the MiniLM job (`minilm`), the network end to end
//! with separate `assay` processes on loopback (`network`), and sampled
//! verification, disputes and slashing (`verification`), and the economy —
//! IO, IOSD, block rewards, notes and bonds (`economy`), and the web
//! explorer in a real headless Chromium (`web`), and the attack suite
//! (`attacks`: each way found to read what is not yours or take a node
//! down), and the network over TLS (`tls`). `common` starts
//! coordinators, providers and verifiers and waits for them.

mod attacks;
mod chat;
mod clusters;
mod common;
mod economy;
mod faults;
mod gateway;
mod gguf;
mod minilm;
mod network;
mod python;
mod replicas;
mod run;
mod tls;
mod verification;
mod web;

#[path = "../../src/model_store.rs"]
mod model_store;
#[path = "../../src/tls.rs"]
mod tls_files;
