//! Encoding any text with a fitted tokenizer (the char-CNN option's preprocessing): never panics,
//! always `max_len` ids, every id known (padding, OOV or a vocabulary entry), and the same as
//! encoding into a buffer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn tokenizer() -> &'static lib_ml::Tokenizer {
    static T: OnceLock<lib_ml::Tokenizer> = OnceLock::new();
    T.get_or_init(|| {
        lib_ml::Tokenizer::fit(include_str!("../../crates/lib-ml/tests/golden/corpus.txt").lines())
    })
}

fuzz_target!(|data: &[u8]| {
    let t = tokenizer();
    let text = String::from_utf8_lossy(data);
    let ids = t.encode(&text);
    assert_eq!(ids.len(), t.max_len());
    assert!(
        ids.iter().all(|&id| id == lib_ml::PAD_ID || id == lib_ml::OOV_ID || t.token_of(id).is_some()),
        "{ids:?}"
    );
    let mut buf = vec![u32::MAX; t.max_len()];
    t.encode_into(&text, &mut buf);
    assert_eq!(buf, ids);
});
