//! The example guests' tests, one binary: every built guest is a valid
//! component of the right world (`components`), and the proof-of-hardware
//! challenge guest runs and verifies in the sandbox (`challenge`).

mod challenge;
mod components;
