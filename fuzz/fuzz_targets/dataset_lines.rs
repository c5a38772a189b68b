//! Parsing any bytes as a `label<TAB>url` dataset: never panics; skip mode never fails and
//! accounts for every non-blank line; strict mode fails exactly when skip mode skipped something.
#![no_main]

use lib_ml::{parse_dataset_bytes, ReadMode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let skip = parse_dataset_bytes(data, "fuzz.txt", ReadMode::SkipBadRows).expect("skip mode never fails");
    let lines = data
        .split(|&b| b == b'\n')
        .filter(|l| !l.strip_suffix(b"\r").unwrap_or(l).iter().all(u8::is_ascii_whitespace))
        .count();
    assert_eq!(skip.samples.len() + skip.skipped.len(), lines);
    let strict = parse_dataset_bytes(data, "fuzz.txt", ReadMode::Strict);
    assert_eq!(strict.is_err(), !skip.skipped.is_empty());
});
