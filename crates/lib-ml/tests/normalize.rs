//! One address, one input: the spellings of a URL that a browser treats as the same page give
//! the model the same features (and so the same score, in training and in both components).

use lib_ml::analysis::{normalize_url, onward_text, UrlAnalyzer};
use lib_ml::encoder::{EncoderSpec, UrlEncoder};
use proptest::prelude::*;

fn encoder() -> UrlEncoder {
    UrlEncoder::new(EncoderSpec::default(), UrlAnalyzer::default()).expect("default spec")
}

#[test]
fn spellings_of_a_home_page_encode_alike() {
    let enc = encoder();
    let groups: [&[&str]; 3] = [
        &[
            "https://abacacanoe.com",
            "https://abacacanoe.com/",
            " https://abacacanoe.com/ ",
        ],
        &["winzurf.co.nz", "https://winzurf.co.nz/", "//winzurf.co.nz"],
        &[
            "https://shop.example?ref=mail",
            "https://shop.example/?ref=mail",
        ],
    ];
    for group in groups {
        let first = enc.features(group[0]);
        for url in &group[1..] {
            assert_eq!(
                enc.features(url),
                first,
                "`{url}` and `{}` differ",
                group[0]
            );
        }
    }
    // A path is not an empty one.
    assert_ne!(
        enc.features("https://a-shop.example/"),
        enc.features("https://a-shop.example/x")
    );
}

proptest! {
    /// The explanation hands each byte of the onward address its source byte in the URL
    /// (`Reading::source`): whatever follows the scheme, every source is inside the tail, in
    /// order, one per byte read.
    #[test]
    fn every_byte_of_an_onward_address_comes_from_the_tail(
        scheme in prop::sample::select(vec![
            "http://", "https://", "https%3a%2f%2f", "http%253a%252f%252f", "https-3a__", "",
        ]),
        rest in "[a-z0-9._/?=&#%;!$*-]{0,40}",
    ) {
        let tail = format!("{scheme}{rest}");
        let (text, from) = onward_text(&tail);
        prop_assert_eq!(from.len(), text.len());
        prop_assert!(from.iter().all(|&k| k < tail.len()), "{:?}", from);
        prop_assert!(from.windows(2).all(|w| w[0] <= w[1]), "{:?}", from);
    }

    #[test]
    fn normalizing_twice_changes_nothing(url in any::<String>()) {
        let once = normalize_url(&url).into_owned();
        prop_assert_eq!(normalize_url(&once), once.as_str());
    }

    #[test]
    fn an_empty_path_reads_as_slash(
        scheme in prop::sample::select(vec!["", "http://", "https://", "HTTPS://", "//"]),
        host in "[a-z0-9]{1,12}(-[a-z0-9]{1,8})?\\.(com|de|co\\.nz|xyz)",
        port in prop::option::of(1u16..),
        after in prop::sample::select(vec!["", "?q=1", "#top", "?a=b#c"]),
    ) {
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let bare = format!("{scheme}{host}{port}{after}");
        let slashed = format!("{scheme}{host}{port}/{after}");
        prop_assert_eq!(normalize_url(&bare), normalize_url(&slashed));
        prop_assert_eq!(encoder().features(&bare), encoder().features(&slashed));
    }
}
