//! `hello`: the smallest Assay job that touches WASI.
//!
//! It prints a line to stdout and one to stderr, reads the wall clock
//! (`SystemTime::now`), the monotonic clock (`Instant::now` twice), random
//! bytes (`getrandom`) and std's `HashMap` seed, looks for environment
//! variables, arguments and a filesystem, and writes what it saw.
//!
//! The sandbox makes all of these deterministic (wall clock fixed to the
//! job's start time, monotonic clock advancing a fixed step per read, random
//! seeded from the job id, no environment, no files), so two runs of the same
//! job write identical outputs: that is what this guest demonstrates.
//!
//! - Params: `name` (optional, default `world`).
//! - Inputs: none.
//! - Outputs:
//!   - `greeting.txt`: `hello, <name>!\n`
//!   - `wasi.json`: one JSON object with the keys `wall_clock_unix_secs` and
//!     `wall_clock_unix_nanos` (integers), `monotonic_step_nanos` (integer:
//!     the second `Instant` minus the first), `random` (32 hex digits: 16
//!     random bytes from `getrandom`),
//!     `hashmap_hash` (integer: a fixed value hashed with a fresh std
//!     `RandomState`), `env_vars` and `args` (counts), `fs_root_visible` (bool).

#![forbid(unsafe_code)]

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use assay_guest::prelude::*;

fn run() -> Result<()> {
    println!("hello from an assay guest (stdout)");
    eprintln!("hello from an assay guest (stderr)");

    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| Error::msg(format_args!("the wall clock is before 1970: {e}")))?;
    let t0 = Instant::now();
    let t1 = Instant::now();
    let step = t1.duration_since(t0);

    let mut random = [0u8; 16];
    getrandom::fill(&mut random).map_err(|e| Error::msg(format_args!("getrandom: {e}")))?;
    let random_hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let hashmap_hash = RandomState::new().hash_one(42u64);

    let env_vars = std::env::vars_os().count();
    let args = std::env::args_os().count();
    let fs_root_visible = std::fs::metadata("/").is_ok();

    let name: String = param_or("name", "world".to_string())?;
    write_output("greeting.txt", format!("hello, {name}!\n"))?;

    let json = format!(
        "{{\"wall_clock_unix_secs\":{},\"wall_clock_unix_nanos\":{},\"monotonic_step_nanos\":{},\"random\":\"{}\",\
         \"hashmap_hash\":{},\"env_vars\":{},\"args\":{},\"fs_root_visible\":{}}}\n",
        wall.as_secs(),
        wall.as_nanos(),
        step.as_nanos(),
        random_hex,
        hashmap_hash,
        env_vars,
        args,
        fs_root_visible
    );
    write_output("wasi.json", &json)?;
    log!("hello: wrote greeting.txt and wasi.json");
    Ok(())
}

assay_guest::job!(run);
