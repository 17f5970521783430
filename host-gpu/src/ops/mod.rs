//! The op catalogue, one module per family. Each module is an `impl
//! Session` block: the family's public methods, its shape rules and its
//! work formulas; it calls `crate::session` for the checks every op shares
//! (inputs of this session, output size), for metering and the quota, and
//! for the launch. A family does not import another family's methods, only
//! its shape rules and work formulas where one builds on another (the
//! norms on the last-axis rule of `reduce`, `attention` on the FLOPs of
//! the canonical functions in `elementwise`).
//!
//! Adding an op: its family's module here (or a new one), `crate::op::Op`,
//! the CPU kernel (`backend/cpu/<family>.rs`, dispatched in
//! `backend/cpu/mod.rs`) and the CUDA kernel.

pub(crate) mod attention;
pub(crate) mod conv;
pub(crate) mod elementwise;
pub(crate) mod layout;
pub(crate) mod matmul;
pub(crate) mod norm;
pub(crate) mod reduce;
pub(crate) mod rotary;
pub(crate) mod transfer;
