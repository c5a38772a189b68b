//! Any text through the released model's preprocessing (`model/features.json`,
//! `known-domains.bin`, `brands.txt`): the URL analysis and the encoder never panic, the rows are
//! `width` long with every id inside the weight table and every value finite, the ids before the
//! padding are distinct, and the analysis is self-consistent (no registrable domain for an IP
//! host or an unparsable URL; the host ends with the registrable domain).
#![no_main]

use lib_ml::analysis::Signal;
use lib_ml::encoder::UrlEncoder;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn encoder() -> &'static UrlEncoder {
    static E: OnceLock<UrlEncoder> = OnceLock::new();
    E.get_or_init(|| {
        UrlEncoder::from_parts(
            include_str!("../../model/features.json"),
            include_bytes!("../../model/known-domains.bin"),
            include_str!("../../model/brands.txt"),
        )
        .expect("released preprocessing")
    })
}

fuzz_target!(|data: &[u8]| {
    let e = encoder();
    let text = String::from_utf8_lossy(data);
    let w = e.width();
    let (mut ids, mut values) = (vec![-1i64; w], vec![f32::NAN; w]);
    let a = e.encode_into_with_analysis(&text, &mut ids, &mut values);
    assert!(ids.iter().all(|&i| (0..e.vocab_size() as i64).contains(&i)), "{ids:?}");
    assert!(values.iter().all(|v| v.is_finite()), "{values:?}");
    let used: Vec<i64> = ids.iter().copied().filter(|&i| i != e.pad_id() as i64).collect();
    let mut distinct = used.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), used.len(), "an id appears twice: {used:?}");
    let signals = a.signals();
    if a.parts.is_none() {
        assert_eq!(signals, vec![Signal::Unparsable]);
        assert!(a.registrable_domain.is_none());
    }
    if a.ip_host {
        assert!(a.registrable_domain.is_none());
    }
    if let (Some(host), Some(reg)) = (&a.host, &a.registrable_domain) {
        assert!(host.ends_with(reg.as_str()), "{host} / {reg}");
    }
});
