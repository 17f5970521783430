//! `assay-gateway`: an OpenAI-compatible HTTP API over the Assay network.
//!
//! Small teams call an API with the client they already use; this crate is
//! that API. `POST /v1/embeddings` takes OpenAI's request (see [`openai`]),
//! and every request becomes, or joins, a verified job of the minilm-embed
//! guest on the network ([`batching`], [`market`]): requests that arrive
//! within a few milliseconds share one job. The response is OpenAI's, plus
//! an `assay` field (and `x-assay-job` / `x-assay-receipt` headers) naming
//! the job and its receipt, so a caller can check the result with
//! `assay job status`. Jobs are paid from the gateway's own account; API
//! keys ([`keys`]) are stored hashed and may carry a spend limit.
//!
//! # Example
//!
//! ```no_run
//! # async fn serve() -> Result<(), assay_gateway::Error> {
//! use std::sync::Arc;
//! use assay_gateway::{BatchConfig, Batcher, Gateway, KeyStore, Market, MarketConfig, ModelCard};
//! # let (cfg, key): (MarketConfig, assay_protocol::NodeKey) = unimplemented!();
//! let keys = Arc::new(KeyStore::open(std::path::Path::new("gateway.sqlite"))?);
//! let coordinator = cfg.coordinator.clone();
//! let market = Arc::new(Market::connect(cfg, key).await?);
//! let batcher = Batcher::start(market, BatchConfig::default());
//! let gateway = Gateway::new(keys, batcher, ModelCard::minilm(30522), coordinator);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, assay_gateway::router(gateway)).await?;
//! # Ok(()) }
//! ```
//!
//! # Errors
//!
//! Every failure reaches the client in OpenAI's error format with the
//! status its clients expect ([`Error::status`]): 401 a bad key, 400 a bad
//! request, 429 a spend limit, 503 no capacity (retry).

#![forbid(unsafe_code)]

pub mod batching;
pub mod chat;
mod error;
mod jobs;
pub mod keys;
pub mod market;
pub mod openai;
mod server;

pub use batching::{BatchConfig, Batcher};
pub use chat::{ChatCard, ChatConfig, ChatMarket, ChatRequest};
pub use error::Error;
pub use keys::{ApiKey, Held, KeyStore};
pub use market::{Market, MarketConfig};
pub use openai::ModelCard;
pub use server::{Gateway, JOB_HEADER, MAX_BODY_BYTES, RECEIPT_HEADER, router};
