//! Loading a tokenizer from any text: an error or a tokenizer, never a panic; what loads saves and
//! loads back to the same tokenizer.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = lib_ml::Tokenizer::from_json(text) {
        let again = lib_ml::Tokenizer::from_json(&t.to_json()).expect("a saved tokenizer loads");
        assert_eq!(again.to_json(), t.to_json());
        let _ = t.encode("http://a.tk/login");
    }
});
