//! The gateway's HTTP surface without a network: the router over a
//! stand-in embedder (each sequence's row is its index as f32s), driven
//! with `tower::ServiceExt::oneshot` — auth, routes, OpenAI's schema and
//! errors, headers, and keys with spend limits.

mod server;
