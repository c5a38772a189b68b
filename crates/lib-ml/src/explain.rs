//! Why a URL got its score, from the model's own terms: the n-gram model's logit is a sum of
//! one term per input id (`weight × value`), so each term can be handed back to what produced
//! it — a signal of the analysis, or the characters of the URL an n-gram covers.
//!
//! [`explain`] turns the terms of one URL into reasons (the signals that fired, in order of
//! weight, in plain sentences) and an attribution over the URL's parts (scheme, host labels,
//! path segments, query), whose contributions add up to the n-gram part of the logit.

use crate::analysis::{normalize_url, Analysis, Signal};
use crate::encoder::UrlEncoder;
use crate::ngrams::{for_each_window, read_text};
#[cfg(test)]
use crate::ngrams::{salted_bucket, NgramSpec};
use std::collections::HashMap;

/// Every reason code, in a fixed order (the OpenAPI document lists the same).
pub const REASON_CODES: [&str; 19] = [
    "domain_mismatch",
    "brand_in_path",
    "brand_in_domain",
    "lookalike",
    "ip_host",
    "punycode",
    "free_hosting",
    "known_domain",
    "many_subdomains",
    "hyphenated_domain",
    "digits_in_domain",
    "userinfo",
    "port",
    "long_host",
    "plain_http",
    "not_a_url",
    "passes_on_unknown",
    "passes_on_known",
    "passes_on_same_site",
];

/// One reason: a stable code, a sentence, and how much it moved the score (in logit units:
/// positive toward phishing).
#[derive(Debug, Clone, PartialEq)]
pub struct Reason {
    /// Stable, documented code (`domain_mismatch`, `known_domain`, ...).
    pub code: &'static str,
    /// A plain sentence.
    pub message: String,
    /// Its term in the logit.
    pub weight: f32,
}

/// One contiguous part of the URL as the model read it and its share of the logit.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// `scheme`, `userinfo`, `host`, `port`, `path`, `query` or `fragment`.
    pub kind: &'static str,
    /// The text (lower-cased, as the model read it).
    pub text: String,
    /// Its share of the n-gram terms (logit units: positive toward phishing).
    pub contribution: f32,
}

/// Reasons and attribution for one URL.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// The fired signals' reasons, strongest first (|weight| of at least 0.05).
    pub reasons: Vec<Reason>,
    /// The URL's parts in order; their texts concatenate to the URL as the model read it.
    pub parts: Vec<Part>,
    /// Where the link leads when it is read as that page (a known site passing you on to an
    /// unknown one, [`UrlEncoder::reading`]): the onward address's registrable domain, or its
    /// host when it has none (an IP address).
    pub leads_to: Option<String>,
}

/// The kind of each part of `url` (normalized, lower-cased) as byte ranges, by the boundaries
/// the analysis reads ([`crate::analysis::url_spans`]): host labels and path segments one by one.
fn split_parts(url: &str) -> Vec<(&'static str, usize, usize)> {
    let Some(sp) = crate::analysis::url_spans(url) else {
        return vec![("host", 0, url.len())];
    };
    let mut out = Vec::new();
    let scheme_end = sp.scheme.as_ref().map_or(0, |r| r.end);
    // The scheme with `://`, or a leading `//` without one.
    let first = sp.userinfo.as_ref().map_or(sp.host.start, |r| r.start);
    if first > 0 {
        out.push(("scheme", 0, first.max(scheme_end)));
    }
    if let Some(r) = sp.userinfo {
        out.push(("userinfo", r.start, r.end));
    }
    let (host_start, host_end) = (sp.host.start, sp.host.end);
    let mut label_start = host_start;
    for (i, _) in url[host_start..host_end].match_indices('.') {
        out.push(("host", label_start, host_start + i + 1));
        label_start = host_start + i + 1;
    }
    if label_start < host_end {
        out.push(("host", label_start, host_end));
    }
    if let Some(r) = sp.port {
        out.push(("port", r.start, r.end));
    }
    let mut at = sp.rest;
    let query = url[at..].find(['?', '#']).map_or(url.len(), |i| at + i);
    while at < query {
        let next = url[at + 1..query].find('/').map_or(query, |i| at + 1 + i);
        out.push(("path", at, next));
        at = next;
    }
    if at < url.len() {
        let frag = url[at..].find('#').map_or(url.len(), |i| at + i);
        if url[at..].starts_with('?') {
            out.push(("query", at, frag));
            at = frag;
        }
        if at < url.len() {
            out.push(("fragment", at, url.len()));
        }
    }
    out
}

/// Per byte of `text` (as `ngrams::read_text` gives it, or an onward address), its share of
/// the n-gram terms `terms` (bucket → term): the text's n-grams in namespace `salt` and, with
/// [`crate::encoder::EncoderSpec::shape`], its shape tokens (each over the part it counts).
fn byte_contributions(
    encoder: &UrlEncoder,
    text: &str,
    salt: u64,
    terms: &HashMap<u32, f32>,
) -> Vec<f32> {
    let spec = &encoder.spec().ngrams;
    // (bucket, first byte, end byte) of every n-gram window, over `text`'s bytes.
    let mut all: Vec<(u32, usize, usize)> = Vec::new();
    for_each_window(text, spec, salt, |b, start, n| {
        // Framed positions 1..=len are the text's bytes; `^` and `$` carry nothing.
        let lo = start.max(1) - 1;
        let hi = (start + n).min(text.len() + 1).saturating_sub(1);
        all.push((b, lo, hi));
    });
    all.extend(
        encoder
            .shape_tokens(text)
            .into_iter()
            .map(|(b, at)| (b, at.start, at.end)),
    );
    // How often each bucket occurs, to split its term between its occurrences.
    let mut occurrences: HashMap<u32, u32> = HashMap::new();
    for &(b, _, _) in &all {
        *occurrences.entry(b).or_default() += 1;
    }
    let mut per_byte = vec![0f32; text.len()];
    for (b, lo, hi) in all {
        let Some(&term) = terms.get(&b) else { continue };
        if lo >= hi {
            continue;
        }
        let share = term / occurrences[&b] as f32 / (hi - lo) as f32;
        for c in &mut per_byte[lo..hi] {
            *c += share;
        }
    }
    per_byte
}

/// The site an address passes you on to, for a sentence.
fn onward(a: &Analysis) -> &str {
    a.onward
        .as_ref()
        .map_or("another site", |o| o.domain.as_str())
}

/// The reason for `signal`.
fn reason_for(signal: Signal, a: &Analysis, weight: f32) -> Option<Reason> {
    let site = a.registrable_domain.as_deref().unwrap_or("this site");
    let (code, message) = match signal {
        Signal::Unparsable => ("not_a_url", "This does not look like a web address.".to_string()),
        Signal::IpHost => (
            "ip_host",
            "The address is a bare IP address, not a named site.".to_string(),
        ),
        Signal::Punycode | Signal::NonAsciiHost => (
            "punycode",
            format!("The site's name ({site}) is written with international letters, which can imitate familiar ones."),
        ),
        Signal::FreeHosting if crate::analysis::LINK_SHORTENERS.contains(&site) => (
            "free_hosting",
            format!("{site} is a link shortener: the address does not show where the link leads."),
        ),
        Signal::PrivateSuffix | Signal::FreeHosting => (
            "free_hosting",
            format!("{site} is on a hosting or dynamic-DNS service where anyone can publish pages."),
        ),
        Signal::KnownTier0 | Signal::KnownTier1 | Signal::KnownTier2 => {
            let top = match signal {
                Signal::KnownTier0 => "1,000",
                Signal::KnownTier1 => "10,000",
                _ => "100,000",
            };
            // The model may weigh a tier toward phishing (its n-grams on known domains carry
            // the rest): then the words must not read as reassurance.
            let message = if weight > 0.0 {
                format!("{site} is among the top {top} sites; that alone does not make a link safe.")
            } else {
                format!("{site} is a widely used site (among the top {top}).")
            };
            ("known_domain", message)
        }
        Signal::BrandInSubdomain => (
            "domain_mismatch",
            format!(
                "The site is {site}; '{}' only appears in front of it.",
                a.brand_in_subdomain.as_deref().unwrap_or("a brand")
            ),
        ),
        Signal::BrandInPath => (
            "brand_in_path",
            format!(
                "'{}' appears in the address's path, but the site is {site}.",
                a.brand_in_path.as_deref().unwrap_or("a brand")
            ),
        ),
        Signal::BrandInDomain => (
            "brand_in_domain",
            format!(
                "{site} uses the name of {} but is a different site.",
                a.brand_in_domain.as_deref().unwrap_or("a brand")
            ),
        ),
        Signal::Lookalike => (
            "lookalike",
            format!(
                "{site} looks like {}.",
                a.lookalike.as_deref().unwrap_or("a well-known site")
            ),
        ),
        Signal::Subdomains2 | Signal::Subdomains3Plus => (
            "many_subdomains",
            format!(
                "The address has {} levels of subdomains in front of {site}.",
                a.subdomain_labels
            ),
        ),
        Signal::DomainHyphen1 | Signal::DomainHyphens2Plus => (
            "hyphenated_domain",
            match a.domain_hyphens {
                1 => format!("{site} has a hyphen in its name."),
                n => format!("{site} has {n} hyphens in its name."),
            },
        ),
        Signal::DomainDigits => ("digits_in_domain", format!("{site} has digits in its name.")),
        Signal::Userinfo => (
            "userinfo",
            "The address puts a user name before the real host (text before '@').".to_string(),
        ),
        Signal::Port => ("port", "The address names an unusual port.".to_string()),
        Signal::LongHost => ("long_host", "The host name is unusually long.".to_string()),
        Signal::PlainHttp => (
            "plain_http",
            "The link is http://, not https://: the connection is not encrypted.".to_string(),
        ),
        Signal::PassesOnUnknown | Signal::KnownPassesOnUnknown => (
            "passes_on_unknown",
            format!("The address passes you on to {}, which is not a widely used site.", onward(a)),
        ),
        Signal::PassesOnKnown => (
            "passes_on_known",
            // As with a known domain: a push toward phishing must not read as reassurance.
            if weight > 0.0 {
                format!("The address carries a link on to {}; that alone does not make it safe.", onward(a))
            } else {
                format!("The address passes you on to {}, a widely used site.", onward(a))
            },
        ),
        Signal::PassesOnSameSite => (
            "passes_on_same_site",
            format!("The address passes you on within {site}."),
        ),
        Signal::Subdomains0 | Signal::Subdomains1 => return None,
    };
    Some(Reason {
        code,
        message,
        weight,
    })
}

/// Explains one URL from its model terms: `terms` pairs each input id the URL has with its
/// term (`weight × value`), as the model computed them.
pub fn explain(
    encoder: &UrlEncoder,
    url: &str,
    analysis: &Analysis,
    terms: &[(u32, f32)],
) -> Explanation {
    let spec = &encoder.spec().ngrams;
    let first_signal = 1u32 << spec.bits;
    let normalized = normalize_url(url).to_lowercase();
    let text = read_text(&normalized, spec);
    let reading = encoder.reading(analysis, &text);
    // Read as the page it leads to, the signals are that page's; the wrapper's onward address
    // stays for the sentence that names it.
    let read_as = reading.onward.as_ref().map(|o| {
        let mut a = o.analysis.clone();
        a.onward.clone_from(&analysis.onward);
        a
    });
    let signals_of = read_as.as_ref().unwrap_or(analysis);
    let mut ngram_terms: HashMap<u32, f32> = HashMap::new();
    let mut reasons: Vec<Reason> = Vec::new();
    for &(id, term) in terms {
        if id >= first_signal {
            if let Some(&s) = Signal::ALL.get((id - first_signal) as usize) {
                if let Some(r) = reason_for(s, signals_of, term) {
                    match reasons.iter_mut().find(|x| x.code == r.code) {
                        Some(x) => x.weight += term,
                        None => reasons.push(r),
                    }
                }
            }
        } else {
            *ngram_terms.entry(id).or_default() += term;
        }
    }
    reasons.retain(|r| r.weight.abs() >= 0.05);
    reasons.sort_by(|a, b| b.weight.abs().total_cmp(&a.weight.abs()));

    let body_len = text.len();
    // The public suffix's token belongs to the host's last label (the onward address's, when
    // the URL is read as the page it leads to).
    let suffix_term = encoder
        .suffix_id(signals_of)
        .and_then(|id| ngram_terms.remove(&id))
        .unwrap_or(0.0);
    // With the onward address read alone (`EncoderSpec::read_onward`), the bytes before it
    // carry nothing.
    let per_byte = match &reading.onward {
        None => byte_contributions(encoder, &text, reading.namespace, &ngram_terms),
        Some(o) => {
            // Read as the page it leads to: each byte of the onward address as read hands its
            // share to the byte of the URL it comes from (an escape's `%`).
            let mut per_byte = vec![0f32; text.len()];
            let read = byte_contributions(encoder, &o.text, reading.namespace, &ngram_terms);
            for (c, &at) in read.iter().zip(&o.source) {
                per_byte[at] += c;
            }
            per_byte
        }
    };
    let mut parts: Vec<Part> = split_parts(&normalized)
        .into_iter()
        .map(|(kind, lo, hi)| Part {
            kind,
            text: normalized[lo..hi].to_string(),
            contribution: per_byte
                .get(lo.min(body_len)..hi.min(body_len))
                .map_or(0.0, |s| s.iter().sum()),
        })
        .collect();
    let suffix_part = if let Some(o) = &reading.onward {
        // The part the onward address starts in.
        let mut end = 0;
        parts.iter().position(|p| {
            end += p.text.len();
            end > o.start
        })
    } else {
        parts.iter().rposition(|p| p.kind == "host")
    };
    if let Some(i) = suffix_part {
        parts[i].contribution += suffix_term;
    }
    let leads_to = reading.onward.map(|o| {
        let a = o.analysis;
        a.registrable_domain.or(a.host).unwrap_or_default()
    });
    Explanation {
        reasons,
        parts,
        leads_to,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signal_with_a_reason_has_a_listed_code() {
        let a = Analysis::default();
        for s in Signal::ALL {
            if let Some(r) = reason_for(s, &a, 1.0) {
                assert!(REASON_CODES.contains(&r.code), "{:?} -> {}", s, r.code);
            }
        }
    }

    #[test]
    fn plain_http_is_said_only_of_a_link_that_gives_it() {
        let enc = UrlEncoder::new(
            crate::encoder::EncoderSpec::default(),
            crate::analysis::UrlAnalyzer::default(),
        )
        .unwrap();
        let message = |url: &str| {
            let (f, a) = enc.features_with_analysis(url);
            let terms: Vec<(u32, f32)> = f.iter().map(|&(i, _)| (i, 1.0)).collect();
            explain(&enc, url, &a, &terms)
                .reasons
                .into_iter()
                .find(|r| r.code == "plain_http")
                .map(|r| r.message)
        };
        assert!(message("http://a.com/")
            .unwrap()
            .starts_with("The link is http://"));
        // A typed address without a scheme is read as https://, as browsers open it.
        assert_eq!(message("a.com/x"), None);
        assert_eq!(message("https://a.com/x"), None);
    }

    #[test]
    fn a_link_shortener_is_not_called_a_host_of_pages() {
        let at = |domain: &str| Analysis {
            registrable_domain: Some(domain.into()),
            free_hosting: true,
            ..Analysis::default()
        };
        let short = reason_for(Signal::FreeHosting, &at("bit.ly"), 1.0).unwrap();
        assert_eq!(short.code, "free_hosting");
        assert!(
            short.message.contains("bit.ly is a link shortener"),
            "{short:?}"
        );
        let host = reason_for(Signal::FreeHosting, &at("weebly.com"), 1.0).unwrap();
        assert!(
            host.message.contains("anyone can publish pages"),
            "{host:?}"
        );
        for s in crate::analysis::LINK_SHORTENERS {
            assert!(crate::analysis::FREE_HOSTING.contains(s), "{s}");
        }
    }

    #[test]
    fn a_known_domain_reads_as_reassurance_only_when_it_pushed_toward_legitimate() {
        let a = Analysis {
            registrable_domain: Some("example.org".into()),
            ..Analysis::default()
        };
        let toward_legitimate = reason_for(Signal::KnownTier2, &a, -0.4).unwrap();
        assert_eq!(
            toward_legitimate.message,
            "example.org is a widely used site (among the top 100,000)."
        );
        let toward_phishing = reason_for(Signal::KnownTier2, &a, 0.4).unwrap();
        assert!(
            toward_phishing
                .message
                .contains("alone does not make a link safe"),
            "{}",
            toward_phishing.message
        );
        assert_eq!(toward_phishing.code, toward_legitimate.code);
    }

    #[test]
    fn parts_cover_the_url_in_order() {
        for url in [
            "http://user@a.b.example.com:8080/x/y.php?q=1#top",
            "https://example.com",
            "https://example.com/",
            "http://[::1]:80/a",
            "not a url",
        ] {
            let parts = split_parts(url);
            let joined: String = parts.iter().map(|&(_, lo, hi)| &url[lo..hi]).collect();
            assert_eq!(joined, url);
            assert!(
                parts.windows(2).all(|w| w[0].2 == w[1].1),
                "{url}: {parts:?}"
            );
        }
        let kinds: Vec<&str> = split_parts("http://u@a.com:1/p/q?x#f")
            .iter()
            .map(|p| p.0)
            .collect();
        assert_eq!(
            kinds,
            ["scheme", "userinfo", "host", "host", "port", "path", "path", "query", "fragment"]
        );
    }

    #[test]
    fn byte_shares_add_up_to_the_terms_of_the_ngrams_inside_the_body() {
        let spec = NgramSpec {
            bits: 16,
            min_n: 2,
            max_n: 3,
            max_chars: 0,
        };
        // Every bucket of "abc" gets term 1: the 2- and 3-grams inside the body ("ab", "bc",
        // "abc") hand all of theirs to its bytes; the ones touching `^`/`$` hand over the part
        // that covers body bytes only.
        let body = "abc";
        let mut terms = HashMap::new();
        for w in [&b"ab"[..], b"bc", b"abc"] {
            terms.insert(salted_bucket(w, 16, 0), 1.0);
        }
        let enc = UrlEncoder::new(
            crate::encoder::EncoderSpec {
                ngrams: NgramSpec {
                    max_chars: 400,
                    ..spec
                },
                ..Default::default()
            },
            crate::analysis::UrlAnalyzer::default(),
        )
        .unwrap();
        let per_byte = byte_contributions(&enc, body, 0, &terms);
        let total: f32 = per_byte.iter().sum();
        assert!((total - 3.0).abs() < 1e-5, "{per_byte:?}");
        assert!(
            per_byte[1] > per_byte[0],
            "the middle byte is in all three: {per_byte:?}"
        );
    }

    #[test]
    fn shape_terms_go_to_the_part_they_count() {
        let enc = UrlEncoder::new(
            crate::encoder::EncoderSpec {
                ngrams: NgramSpec {
                    bits: 20,
                    ..crate::encoder::EncoderSpec::default().ngrams
                },
                shape: true,
                ..Default::default()
            },
            crate::analysis::UrlAnalyzer::default(),
        )
        .unwrap();
        let url = "https://a1.b-c.example.com/x/y-z/login.php?a=1&b=2";
        let (features, analysis) = enc.features_with_analysis(url);
        let text = read_text(url, &enc.spec().ngrams);
        let tokens = enc.shape_tokens(&text);
        assert_eq!(tokens.len(), crate::encoder::SHAPE_NAMES.len());
        // A term of 1 on each shape token's bucket only: the parts hold all of it, and each
        // counted part holds its own tokens' share.
        let mut ids: Vec<u32> = tokens.iter().map(|t| t.0).collect();
        ids.sort_unstable();
        ids.dedup();
        assert!(ids.iter().all(|i| features.iter().any(|f| f.0 == *i)));
        let terms: Vec<(u32, f32)> = ids.iter().map(|&i| (i, 1.0)).collect();
        let e = explain(&enc, url, &analysis, &terms);
        let total: f32 = e.parts.iter().map(|p| p.contribution).sum();
        assert!(
            (total - ids.len() as f32).abs() < 1e-3,
            "{total} vs {}",
            ids.len()
        );
        let of = |kind: &str| -> f32 {
            e.parts
                .iter()
                .filter(|p| p.kind == kind)
                .map(|p| p.contribution)
                .sum()
        };
        // 5 host counts, 6 path counts, 2 query counts, each with the whole URL's 5 spread
        // over every byte.
        assert!(
            of("host") > 5.0 && of("path") > 6.0 && of("query") > 2.0,
            "{e:?}"
        );
        assert!(of("scheme") > 0.0 && of("scheme") < 1.0, "{e:?}");
    }
}
