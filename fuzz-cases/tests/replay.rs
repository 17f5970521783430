//! Every kept fuzz input — the corpora and each crash once found — run
//! through its target on stable Rust: a crash found once stays fixed.

use std::path::Path;

#[test]
fn every_kept_input_runs_through_its_target_without_a_crash() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut ran = 0;
    for (target, case) in assay_fuzz_cases::TARGETS {
        let mut here = 0;
        for kind in ["corpus", "regressions"] {
            let dir = root.join(kind).join(target);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut files: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
            files.sort();
            for f in files.iter().filter(|f| f.is_file()) {
                let bytes = std::fs::read(f).expect("read a kept input");
                let caught = std::panic::catch_unwind(|| case(&bytes));
                assert!(caught.is_ok(), "{} crashes {target}", f.display());
                here += 1;
            }
        }
        assert!(
            here > 0,
            "no kept inputs for {target}: seed corpus/{target}/"
        );
        ran += here;
    }
    println!("{ran} kept inputs replayed");
}
