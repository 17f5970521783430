#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| assay_fuzz_cases::wit_host_surface(data));
