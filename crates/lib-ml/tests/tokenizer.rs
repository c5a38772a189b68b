//! Tokenizer tests: golden files produced by the original Keras preprocessing, JSON, properties.

use lib_ml::{Tokenizer, TokenizerError, OOV_ID};
use proptest::prelude::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct Golden {
    vocabulary: Vec<String>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    text: String,
    ids: Vec<u32>,
}

fn golden() -> anyhow::Result<(Tokenizer, Golden)> {
    let corpus = include_str!("golden/corpus.txt");
    let tokenizer = Tokenizer::fit(corpus.lines());
    let golden: Golden = serde_json::from_str(include_str!("golden/encode.json"))?;
    Ok((tokenizer, golden))
}

#[test]
fn vocabulary_matches_keras_word_index() -> anyhow::Result<()> {
    let (tokenizer, golden) = golden()?;
    let ours: Vec<String> = (1..tokenizer.vocab_size() as u32)
        .map(|id| tokenizer.token_of(id).unwrap())
        .collect();
    assert_eq!(ours, golden.vocabulary);
    Ok(())
}

#[test]
fn every_golden_case_matches_keras_pad_sequences() -> anyhow::Result<()> {
    let (tokenizer, golden) = golden()?;
    assert!(golden.cases.len() >= 8);
    for case in &golden.cases {
        assert_eq!(
            tokenizer.encode(&case.text),
            case.ids,
            "case `{}`",
            case.name
        );
    }
    Ok(())
}

#[test]
fn batch_encoding_equals_row_by_row_encoding() -> anyhow::Result<()> {
    let (tokenizer, golden) = golden()?;
    let texts: Vec<&str> = golden.cases.iter().map(|c| c.text.as_str()).collect();
    let mut flat = vec![7; 3]; // stale contents must be overwritten
    tokenizer.encode_batch(&texts, &mut flat);
    let expected: Vec<u32> = golden.cases.iter().flat_map(|c| c.ids.clone()).collect();
    assert_eq!(flat, expected);
    Ok(())
}

#[test]
fn short_urls_are_padded_at_the_front() -> anyhow::Result<()> {
    let (tokenizer, _) = golden()?;
    let ids = tokenizer.encode("http://a.com");
    assert!(
        ids[..188].iter().all(|&i| i == 0),
        "padding must come first"
    );
    assert!(
        ids[188..].iter().all(|&i| i != 0),
        "the URL must fill the end"
    );
    Ok(())
}

#[test]
fn long_urls_keep_their_last_characters() -> anyhow::Result<()> {
    let (tokenizer, _) = golden()?;
    let url = format!("http://example.com/{}", "a".repeat(500) + "/login.php");
    let ids = tokenizer.encode(&url);
    assert_eq!(ids, tokenizer.encode(&url[url.len() - 200..]));
    Ok(())
}

#[test]
fn uppercase_and_lowercase_encode_identically() -> anyhow::Result<()> {
    let (tokenizer, _) = golden()?;
    assert_eq!(
        tokenizer.encode("HTTPS://WWW.EXAMPLE.COM/ΣΟΦΟΣ"),
        tokenizer.encode("https://www.example.com/σοφος")
    );
    Ok(())
}

#[test]
fn oov_characters_map_to_index_one() -> anyhow::Result<()> {
    let (tokenizer, _) = golden()?;
    assert_eq!(tokenizer.encode("~")[199], OOV_ID);
    assert_eq!(tokenizer.encode("漢")[199], OOV_ID);
    Ok(())
}

#[test]
fn json_round_trip_keeps_every_id() -> anyhow::Result<()> {
    let (tokenizer, golden) = golden()?;
    let back = Tokenizer::from_json(&tokenizer.to_json())?;
    assert_eq!(back, tokenizer);
    for case in &golden.cases {
        assert_eq!(back.encode(&case.text), case.ids);
    }
    Ok(())
}

#[test]
fn save_and_load_through_a_file() -> anyhow::Result<()> {
    let (tokenizer, _) = golden()?;
    let path = std::env::temp_dir().join(format!("lib-ml-tokenizer-{}.json", std::process::id()));
    tokenizer.save(&path)?;
    let back = Tokenizer::load(&path);
    std::fs::remove_file(&path)?;
    assert_eq!(back?, tokenizer);
    Ok(())
}

#[test]
fn loading_a_missing_file_names_it() {
    let err = Tokenizer::load("/nonexistent/tokenizer.json").unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/tokenizer.json"),
        "{err}"
    );
}

#[test]
fn newer_format_version_is_rejected_with_a_hint() -> anyhow::Result<()> {
    let json = Tokenizer::fit(["ab"])
        .to_json()
        .replace("\"format_version\": 1", "\"format_version\": 2");
    let err = Tokenizer::from_json(&json).unwrap_err();
    assert!(
        matches!(
            err,
            TokenizerError::UnsupportedVersion {
                found: 2,
                supported: 1
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade lib-ml"));
    Ok(())
}

#[test]
fn bad_tokenizer_files_are_rejected() {
    let good = Tokenizer::fit(["ab"]).to_json();
    let cases = [
        ("not json", "{"),
        (
            "wrong format",
            &good.replace("phishing-char-tokenizer", "keras") as &str,
        ),
        ("oov not first", &good.replace("\"-n-\",", "") as &str),
        ("multi-char token", &good.replace("\"a\"", "\"ab\"") as &str),
        ("duplicate token", &good.replace("\"a\"", "\"b\"") as &str),
        (
            "post padding",
            &good.replace("\"padding\": \"pre\"", "\"padding\": \"post\"") as &str,
        ),
        (
            "missing vocabulary",
            r#"{"format":"phishing-char-tokenizer","format_version":1}"#,
        ),
    ];
    for (what, json) in cases {
        assert!(Tokenizer::from_json(json).is_err(), "{what} was accepted");
    }
}

proptest! {
    #[test]
    fn encode_never_panics_and_is_always_max_len(text in any::<String>()) {
        let tokenizer = Tokenizer::fit(include_str!("golden/corpus.txt").lines());
        let ids = tokenizer.encode(&text);
        prop_assert_eq!(ids.len(), 200);
        prop_assert!(ids.iter().all(|&id| (id as usize) < tokenizer.vocab_size()));
    }

    #[test]
    fn padding_length_follows_text_length(text in "[a-z/.:]{0,300}") {
        let tokenizer = Tokenizer::fit(["abcdefghijklmnopqrstuvwxyz/.:"]);
        let ids = tokenizer.encode(&text);
        let pads = ids.iter().take_while(|&&id| id == 0).count();
        prop_assert_eq!(pads, 200usize.saturating_sub(text.len()));
    }

    #[test]
    fn only_the_last_max_len_characters_matter(prefix in "[a-z]{0,50}", tail in "[a-z./]{200}") {
        let tokenizer = Tokenizer::fit(["abcdefghijklmnopqrstuvwxyz/."]);
        prop_assert_eq!(tokenizer.encode(&(prefix + &tail)), tokenizer.encode(&tail));
    }
}

/// Found by the `tokenizer_json` fuzz target: a file asking for `max_len` 4,888,888,888,888,800
/// loaded, and the first `encode` aborted trying to allocate it.
#[test]
fn fuzz_regression_huge_max_len_is_refused_at_load() {
    let json = include_str!("fuzz-regressions/tokenizer_json-huge-max-len.json");
    let err = lib_ml::Tokenizer::from_json(json).unwrap_err().to_string();
    assert!(
        err.contains("`max_len` is 4888888888888800; it must be 1 to 65536"),
        "{err}"
    );
    // The largest allowed length still loads and encodes.
    let mut file: serde_json::Value = serde_json::from_str(json).unwrap();
    file["max_len"] = lib_ml::MAX_SEQUENCE_LEN.into();
    let t = lib_ml::Tokenizer::from_json(&file.to_string()).unwrap();
    assert_eq!(t.encode("http://a.tk").len(), lib_ml::MAX_SEQUENCE_LEN);
}
