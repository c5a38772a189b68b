//! A URL as the sparse vector the n-gram model reads: hashed character n-grams (unit length),
//! the public suffix as a token of its own, the URL's shape counts as tokens of their bins
//! ([`EncoderSpec::shape`]), and the [`analysis`](crate::analysis) signals.
//!
//! Ids `0 .. 2^bits` are n-gram buckets, the next [`Signal::ALL`]`.len()` ids the signals, and
//! the last id pads (its weight is zero). A URL becomes two equal-length rows: ids and values;
//! the model's score is `sigmoid(bias + sum(weight[id] * value))`.
//!
//! ```
//! use lib_ml::analysis::UrlAnalyzer;
//! use lib_ml::encoder::{EncoderSpec, UrlEncoder};
//!
//! let enc = UrlEncoder::new(EncoderSpec::default(), UrlAnalyzer::default()).unwrap();
//! let (mut ids, mut values) = (vec![0i64; enc.width()], vec![0f32; enc.width()]);
//! enc.encode_into("http://192.168.0.1/login", &mut ids, &mut values);
//! assert_eq!(*ids.last().unwrap(), enc.pad_id() as i64);
//! assert!(ids.contains(&(enc.signal_id(lib_ml::analysis::Signal::IpHost) as i64)));
//! ```

use crate::analysis::{normalize_url, Analysis, Brands, KnownDomains, Signal, UrlAnalyzer};
use crate::analysis::{onward_start, onward_text, OnwardKind};
use crate::domain::PSL_VERSION;
use crate::ngrams::{bucket, read_text, text_ngram_features, NgramSpec};
use serde::{Deserialize, Serialize};

/// `features.json`: how URLs become model inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderSpec {
    /// Always [`EncoderSpec::FORMAT`].
    pub format: String,
    /// The n-grams.
    pub ngrams: NgramSpec,
    /// Whether the analysis signals and the suffix token are inputs (off: n-grams only).
    pub signals: bool,
    /// The Public Suffix List version the model was trained with.
    pub psl_version: String,
    /// URLs on a known domain (any tier) have their n-grams in a namespace of their own, so
    /// what a path says on a widely used site is learned apart from what it says elsewhere
    /// (`/login` on `live.com` is not `/login` on a fresh domain).
    #[serde(default)]
    pub known_namespace: bool,
    /// When a known site passes you on to an unknown one ([`Signal::KnownPassesOnUnknown`]:
    /// a link wrapper or open redirect, `google.com/url?q=https://fresh.top/login`), the link
    /// is read as the page it leads to: the n-grams from the onward address on (as written, in
    /// the plain namespace), that address's signals and public suffix, and the two signals that
    /// say a known site passed you on. Without it a known site's text and standing
    /// (`/url?q=` on google.com, a top-1,000 domain) vouch for wherever it sends you.
    #[serde(default)]
    pub read_onward: bool,
    /// The URL's shape as tokens of their own ([`UrlEncoder::shape_tokens`]): lengths and
    /// counts of the host, path, query and whole text as read (the onward address, when the
    /// URL is read as the page it leads to), each in half-octave bins: what a linear model
    /// over n-grams cannot see (how long, how many labels, segments, digits, escapes).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shape: bool,
}

impl EncoderSpec {
    /// The format tag.
    pub const FORMAT: &'static str = "phishing-url-features/2";
}

/// Which part of a URL a shape count reads.
#[derive(Debug, Clone, Copy)]
enum ShapePart {
    Host,
    Path,
    Query,
    Url,
}

fn count_of(text: &str, set: &[u8]) -> usize {
    text.bytes().filter(|b| set.contains(b)).count()
}

fn digits(text: &str) -> usize {
    text.bytes().filter(u8::is_ascii_digit).count()
}

fn longest(text: &str, sep: char) -> usize {
    text.split(sep).map(str::len).max().unwrap_or(0)
}

/// The shape counts ([`EncoderSpec::shape`]): name, the part counted, the count.
type Shape = (&'static str, ShapePart, fn(&str) -> usize);

/// Every shape count, in the order of a URL's tokens.
pub const SHAPE_NAMES: [&str; 18] = [
    "host_len",
    "host_labels",
    "host_digits",
    "host_hyphens",
    "host_longest_label",
    "path_len",
    "path_segments",
    "path_digits",
    "path_dots",
    "path_dashes",
    "path_longest_segment",
    "query_len",
    "query_params",
    "url_len",
    "url_escapes",
    "url_symbols",
    "url_digits",
    "url_non_ascii",
];

const SHAPES: [Shape; 18] = [
    (SHAPE_NAMES[0], ShapePart::Host, str::len),
    (SHAPE_NAMES[1], ShapePart::Host, |t| count_of(t, b".") + 1),
    (SHAPE_NAMES[2], ShapePart::Host, digits),
    (SHAPE_NAMES[3], ShapePart::Host, |t| count_of(t, b"-")),
    (SHAPE_NAMES[4], ShapePart::Host, |t| longest(t, '.')),
    (SHAPE_NAMES[5], ShapePart::Path, str::len),
    (SHAPE_NAMES[6], ShapePart::Path, |t| count_of(t, b"/")),
    (SHAPE_NAMES[7], ShapePart::Path, digits),
    (SHAPE_NAMES[8], ShapePart::Path, |t| count_of(t, b".")),
    (SHAPE_NAMES[9], ShapePart::Path, |t| count_of(t, b"-_")),
    (SHAPE_NAMES[10], ShapePart::Path, |t| longest(t, '/')),
    (SHAPE_NAMES[11], ShapePart::Query, str::len),
    (SHAPE_NAMES[12], ShapePart::Query, |t| count_of(t, b"&=")),
    (SHAPE_NAMES[13], ShapePart::Url, str::len),
    (SHAPE_NAMES[14], ShapePart::Url, |t| count_of(t, b"%")),
    (SHAPE_NAMES[15], ShapePart::Url, |t| {
        t.bytes().filter(|b| !b.is_ascii_alphanumeric()).count()
    }),
    (SHAPE_NAMES[16], ShapePart::Url, digits),
    (SHAPE_NAMES[17], ShapePart::Url, |t| {
        t.bytes().filter(|b| !b.is_ascii()).count()
    }),
];

/// The bin of a count: 0 to 3 as themselves, then half octaves (4-5, 6-7, 8-11, 12-15, 16-23,
/// ...), 20 at most (from 1,024 on).
pub fn half_octave(v: usize) -> usize {
    if v < 4 {
        return v;
    }
    let octave = (usize::BITS - 1 - v.leading_zeros()) as usize; // 2 for 4..=7
    let half = usize::from(v >= 3 << (octave - 1));
    (4 + 2 * (octave - 2) + half).min(20)
}

/// Two id-sorted sparse rows added: sorted, ids distinct.
fn merge_sorted(a: &[(u32, f32)], b: &[(u32, f32)]) -> Vec<(u32, f32)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) if x.0 == y.0 => {
                out.push((x.0, x.1 + y.1));
                (i, j) = (i + 1, j + 1);
            }
            (Some(&x), Some(&y)) if x.0 < y.0 => {
                out.push(x);
                i += 1;
            }
            (Some(&x), None) => {
                out.push(x);
                i += 1;
            }
            (_, Some(&y)) => {
                out.push(y);
                j += 1;
            }
            (None, None) => unreachable!(),
        }
    }
    out
}

/// How one URL is read (see [`UrlEncoder::reading`]).
#[derive(Debug, Clone)]
pub struct Reading {
    /// The n-grams' namespace.
    pub namespace: u64,
    /// Read as the page it leads to, that page (else the n-grams are the whole read text's).
    pub onward: Option<OnwardReading>,
}

/// A URL read as the page it leads to.
#[derive(Debug, Clone)]
pub struct OnwardReading {
    /// Where the onward address starts in the URL's read text.
    pub start: usize,
    /// The onward address as the n-grams read it ([`onward_text`]).
    pub text: String,
    /// For each byte of `text`, the byte of the URL's read text it comes from.
    pub source: Vec<usize>,
    /// Its analysis, whose signals and public suffix are the inputs (with
    /// [`Signal::PassesOnUnknown`] and [`Signal::KnownPassesOnUnknown`]).
    pub analysis: Analysis,
}

impl Default for EncoderSpec {
    fn default() -> Self {
        EncoderSpec {
            format: Self::FORMAT.into(),
            ngrams: NgramSpec {
                bits: 18,
                min_n: 1,
                max_n: 5,
                max_chars: 400,
            },
            signals: true,
            psl_version: PSL_VERSION.into(),
            known_namespace: false,
            read_onward: false,
            shape: false,
        }
    }
}

/// Why an encoder could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    /// `features.json` is not valid.
    #[error("features spec is invalid: {0}")]
    Spec(String),
    /// The known-domains file is not valid.
    #[error(transparent)]
    Known(#[from] crate::analysis::KnownDomainsError),
    /// The brands file is not valid.
    #[error("brands file is invalid: {0}")]
    Brands(String),
}

/// Turns URLs into the model's inputs.
#[derive(Debug, Clone)]
pub struct UrlEncoder {
    spec: EncoderSpec,
    analyzer: UrlAnalyzer,
}

impl UrlEncoder {
    /// An encoder for `spec` with these lists. The spec's PSL version must be the built-in
    /// list's: a model trained on other suffixes would see other inputs.
    pub fn new(spec: EncoderSpec, analyzer: UrlAnalyzer) -> Result<Self, EncoderError> {
        if spec.format != EncoderSpec::FORMAT {
            return Err(EncoderError::Spec(format!(
                "format {:?}, expected {:?}",
                spec.format,
                EncoderSpec::FORMAT
            )));
        }
        spec.ngrams.validate().map_err(EncoderError::Spec)?;
        if spec.ngrams.max_chars == 0 || spec.ngrams.max_chars > 4096 {
            return Err(EncoderError::Spec(format!(
                "max_chars {} is outside 1..=4096",
                spec.ngrams.max_chars
            )));
        }
        if spec.psl_version != PSL_VERSION {
            return Err(EncoderError::Spec(format!(
                "trained with Public Suffix List {}, built in is {PSL_VERSION}",
                spec.psl_version
            )));
        }
        Ok(UrlEncoder { spec, analyzer })
    }

    /// From the contents of `features.json`, `known-domains.bin` and `brands.txt`.
    pub fn from_parts(
        spec_json: &str,
        known_domains: &[u8],
        brands: &str,
    ) -> Result<Self, EncoderError> {
        let spec: EncoderSpec =
            serde_json::from_str(spec_json).map_err(|e| EncoderError::Spec(e.to_string()))?;
        let known = KnownDomains::from_bytes(known_domains)?;
        let brands = Brands::parse(brands).map_err(EncoderError::Brands)?;
        UrlEncoder::new(spec, UrlAnalyzer::new(known, brands))
    }

    /// The spec.
    pub fn spec(&self) -> &EncoderSpec {
        &self.spec
    }

    /// The analyzer.
    pub fn analyzer(&self) -> &UrlAnalyzer {
        &self.analyzer
    }

    /// Rows of the weight table: buckets, signals, the pad.
    pub fn vocab_size(&self) -> usize {
        (1usize << self.spec.ngrams.bits) + Signal::ALL.len() + 1
    }

    /// The id that pads (weight zero).
    pub fn pad_id(&self) -> usize {
        self.vocab_size() - 1
    }

    /// The id of `signal`.
    pub fn signal_id(&self, signal: Signal) -> usize {
        (1usize << self.spec.ngrams.bits) + signal.index()
    }

    /// The length of a URL's rows: the most ids one URL can have.
    pub fn width(&self) -> usize {
        self.spec.ngrams.max_features()
            + 1
            + Signal::ALL.len()
            + if self.spec.shape { SHAPES.len() } else { 0 }
    }

    /// The shape tokens of `read` (the text the n-grams read): each token's bucket and the
    /// bytes of `read` whose count it is (for explanations); none without
    /// [`EncoderSpec::shape`] (and `signals`) or for an empty text. Two tokens may share a
    /// bucket.
    pub fn shape_tokens(&self, read: &str) -> Vec<(u32, std::ops::Range<usize>)> {
        if !(self.spec.shape && self.spec.signals) || read.is_empty() {
            return Vec::new();
        }
        let whole = 0..read.len();
        let (host, path, query) = match crate::analysis::url_spans(read) {
            Some(sp) => {
                let tail = &read[sp.rest..];
                let q = tail.find(['?', '#']).map_or(read.len(), |i| sp.rest + i);
                let f = read[q..].find('#').map_or(read.len(), |i| q + i);
                (sp.host, sp.rest..q, q..f)
            }
            None => (0..0, 0..0, 0..0),
        };
        let mut out = Vec::with_capacity(SHAPES.len());
        for (name, part, count) in SHAPES {
            let span = match part {
                ShapePart::Host => host.clone(),
                ShapePart::Path => path.clone(),
                ShapePart::Query => query.clone(),
                ShapePart::Url => whole.clone(),
            };
            let bin = half_octave(count(&read[span.clone()]));
            // A count of an empty part is the URL's to explain.
            let at = if span.is_empty() { whole.clone() } else { span };
            let token = format!("\u{2}shape:{name}={bin}");
            out.push((bucket(token.as_bytes(), self.spec.ngrams.bits), at));
        }
        out
    }

    /// The n-gram namespace of a URL with this analysis: 1 for a known domain when the spec
    /// keeps those apart (`known_namespace`), else 0.
    pub fn namespace(&self, analysis: &Analysis) -> u64 {
        u64::from(self.spec.signals && self.spec.known_namespace && analysis.known_tier.is_some())
    }

    /// How the URL of `analysis` is read (`text`: the URL as [`read_text`] gives it): all of
    /// it, in the URL's [`namespace`](Self::namespace); or, with `read_onward` and a known site
    /// that passes you on to an unknown one, as the page it leads to (see
    /// [`EncoderSpec::read_onward`]).
    pub fn reading(&self, analysis: &Analysis, text: &str) -> Reading {
        let whole = Reading {
            namespace: self.namespace(analysis),
            onward: None,
        };
        let passes_on = analysis
            .onward
            .as_ref()
            .is_some_and(|o| o.kind == OnwardKind::Unknown);
        if !(self.spec.signals
            && self.spec.read_onward
            && passes_on
            && analysis.known_tier.is_some())
        {
            return whole;
        }
        let Some(start) = onward_start(text) else {
            return whole;
        };
        let (onward, source) = onward_text(&text[start..]);
        let onward_analysis = self.analyzer.analyze(&onward);
        if onward_analysis.host.is_none() {
            return whole;
        }
        Reading {
            namespace: 0,
            onward: Some(OnwardReading {
                start,
                text: onward,
                source: source.into_iter().map(|i| start + i).collect(),
                analysis: onward_analysis,
            }),
        }
    }

    /// The inputs' signals of a URL with this analysis read this way.
    pub fn signals(&self, analysis: &Analysis, reading: &Reading) -> Vec<Signal> {
        match &reading.onward {
            None => analysis.signals(),
            Some(onward) => {
                let mut s = onward.analysis.signals();
                for extra in [Signal::PassesOnUnknown, Signal::KnownPassesOnUnknown] {
                    if !s.contains(&extra) {
                        s.push(extra);
                    }
                }
                s
            }
        }
    }

    /// The id of the public-suffix token of a URL with this analysis (an n-gram bucket), if
    /// the spec has signals and the URL a suffix.
    pub fn suffix_id(&self, analysis: &Analysis) -> Option<u32> {
        let suffix = analysis.suffix.as_ref().filter(|_| self.spec.signals)?;
        let token = format!("\u{1}suffix:{suffix}");
        Some(bucket(token.as_bytes(), self.spec.ngrams.bits))
    }

    /// The sparse input of `url` and its analysis: (id, value) pairs, ids distinct. The URL is
    /// read as [`normalize_url`] gives it (no scheme: `https://`; an empty path: `/`).
    pub fn features_with_analysis(&self, url: &str) -> (Vec<(u32, f32)>, Analysis) {
        let url = &*normalize_url(url);
        let analysis = self.analyzer.analyze(url);
        let text = read_text(url, &self.spec.ngrams);
        let reading = self.reading(&analysis, &text);
        let read = reading
            .onward
            .as_ref()
            .map_or(text.as_str(), |o| o.text.as_str());
        let mut f = text_ngram_features(read, &self.spec.ngrams, reading.namespace);
        if self.spec.signals {
            let of = reading.onward.as_ref().map_or(&analysis, |o| &o.analysis);
            let mut shape: Vec<(u32, f32)> = self
                .shape_tokens(read)
                .into_iter()
                .map(|(id, _)| (id, 1.0))
                .collect();
            if !shape.is_empty() {
                shape.sort_unstable_by_key(|&(i, _)| i);
                shape.dedup_by(|a, b| {
                    let same = a.0 == b.0;
                    if same {
                        b.1 += a.1;
                    }
                    same
                });
                f = merge_sorted(&f, &shape);
            }
            if let Some(id) = self.suffix_id(of) {
                match f.iter_mut().find(|(i, _)| *i == id) {
                    Some((_, v)) => *v += 1.0,
                    None => f.push((id, 1.0)),
                }
            }
            for s in self.signals(&analysis, &reading) {
                f.push((self.signal_id(s) as u32, 1.0));
            }
        }
        (f, analysis)
    }

    /// The sparse input of `url`.
    pub fn features(&self, url: &str) -> Vec<(u32, f32)> {
        self.features_with_analysis(url).0
    }

    /// Writes `url`'s input into rows of [`width`](Self::width): ids and values, padded.
    ///
    /// # Panics
    /// If a row is not `width` long.
    pub fn encode_into(&self, url: &str, ids: &mut [i64], values: &mut [f32]) {
        self.encode_into_with_analysis(url, ids, values);
    }

    /// [`encode_into`](Self::encode_into), returning the URL's analysis too.
    ///
    /// # Panics
    /// If a row is not `width` long.
    pub fn encode_into_with_analysis(
        &self,
        url: &str,
        ids: &mut [i64],
        values: &mut [f32],
    ) -> Analysis {
        let w = self.width();
        assert!(ids.len() == w && values.len() == w, "rows must be {w} long");
        let (f, analysis) = self.features_with_analysis(url);
        debug_assert!(f.len() <= w);
        for (k, (id, v)) in ids.iter_mut().zip(values.iter_mut()).enumerate() {
            match f.get(k) {
                Some(&(i, x)) => (*id, *v) = (i64::from(i), x),
                None => (*id, *v) = (self.pad_id() as i64, 0.0),
            }
        }
        analysis
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_padded_and_never_overflow() {
        // With and without the shape counts (`EncoderSpec::shape`), which widen the rows.
        for shape in [false, true] {
            let spec = EncoderSpec {
                shape,
                ..EncoderSpec::default()
            };
            let enc = UrlEncoder::new(spec, UrlAnalyzer::default()).unwrap();
            let w = enc.width();
            let (mut ids, mut values) = (vec![0i64; w], vec![0f32; w]);
            let long = format!(
                "http://{}.example.com/{}",
                "a-b.".repeat(300),
                "x1/".repeat(900)
            );
            enc.encode_into(&long, &mut ids, &mut values);
            assert!(ids
                .iter()
                .all(|&i| (0..enc.vocab_size() as i64).contains(&i)));
            enc.encode_into("", &mut ids, &mut values);
            assert!(ids.contains(&(enc.signal_id(Signal::Unparsable) as i64)));
        }
    }

    #[test]
    fn a_url_without_scheme_reads_as_https() {
        // As browsers open a typed address: HTTPS first.
        let enc = UrlEncoder::new(EncoderSpec::default(), UrlAnalyzer::default()).unwrap();
        assert_eq!(
            enc.features("paypal.com/signin"),
            enc.features("https://paypal.com/signin")
        );
        assert_ne!(
            enc.features("paypal.com/signin"),
            enc.features("http://paypal.com/signin")
        );
    }

    #[test]
    fn a_known_site_passing_you_on_is_read_from_the_onward_address() {
        let known = crate::analysis::KnownDomains::from_ranked(["google.com"], &[10]);
        let with = |read_onward: bool| {
            let spec = EncoderSpec {
                known_namespace: true,
                read_onward,
                ..EncoderSpec::default()
            };
            UrlEncoder::new(spec, UrlAnalyzer::new(known.clone(), Default::default())).unwrap()
        };
        let (on, off) = (with(true), with(false));
        let wrapped = "https://www.google.com/url?q=https://fresh-site.top/login";
        let alone = "https://fresh-site.top/login";
        // Read as the page it leads to: that page's n-grams, public suffix and signals, and the
        // two that say a known site passed you on.
        let passed_on =
            [Signal::PassesOnUnknown, Signal::KnownPassesOnUnknown].map(|s| on.signal_id(s) as u32);
        let mut expected = on.features(alone);
        expected.extend(passed_on.map(|i| (i, 1.0)));
        expected.sort_by_key(|&(i, _)| i);
        let mut got = on.features(wrapped);
        got.sort_by_key(|&(i, _)| i);
        assert_eq!(got, expected);
        assert_ne!(off.features(wrapped).len(), expected.len());
        let text = read_text(wrapped, &on.spec().ngrams);
        let r = on.reading(&on.analyzer().analyze(wrapped), &text);
        let o = r.onward.unwrap();
        assert_eq!((o.start, r.namespace), (29, 0));
        assert_eq!(
            o.analysis.registrable_domain.as_deref(),
            Some("fresh-site.top")
        );
        // Escaped, the address is its parameter's value, decoded, for the signals.
        let escaped = "https://l.google.com/l?u=https%3A%2F%2Fwww.paypal.com.fresh-site.top%2F&h=x";
        let text = read_text(escaped, &on.spec().ngrams);
        let r = on.reading(&on.analyzer().analyze(escaped), &text);
        let onward = r.onward.unwrap();
        assert_eq!(onward.text, "https://www.paypal.com.fresh-site.top/");
        assert_eq!(
            onward.analysis.host.as_deref(),
            Some("www.paypal.com.fresh-site.top")
        );
        // Each byte read comes from its escape or itself in the URL.
        let from = |k: usize| &text[onward.source[k]..];
        assert!(from(0).starts_with("https%3a%2f%2fwww."), "{}", from(0));
        assert!(from(5).starts_with("%3a%2f"), "{}", from(5));
        assert!(from(8).starts_with("www.paypal"), "{}", from(8));
        // A plainly written one, escaped or not, gives the same n-grams and signals; so does
        // one in Proofpoint URL Defense's two spellings (v2: `_` for `/`, `-XX` for a byte;
        // v3: plainly after `/__`, up to `__;`).
        let plain = "https://l.google.com/l?u=https://www.paypal.com.fresh-site.top/";
        assert_eq!(on.features(plain), on.features(escaped));
        let known = crate::analysis::KnownDomains::from_ranked(
            ["google.com", "urldefense.com", "mimecast.com"],
            &[10],
        );
        let spec = EncoderSpec {
            known_namespace: true,
            read_onward: true,
            ..EncoderSpec::default()
        };
        let pp = UrlEncoder::new(spec, UrlAnalyzer::new(known, Default::default())).unwrap();
        let same = pp.features("https://www.google.com/url?q=https://my-fresh-site.top/a_b?q=1");
        for proofpoint in [
            "https://urldefense.com/v2/url?u=https-3A__my-2Dfresh-2Dsite.top_a-5Fb-3Fq-3D1&d=DwM&c=x",
            "https://urldefense.com/v3/__https://my-fresh-site.top/a_b?q=1__;!!G3vK!x1$",
        ] {
            assert_eq!(pp.features(proofpoint), same, "{proofpoint}");
        }
        // Mimecast's link names only the domain: read as its home page.
        assert_eq!(
            pp.features("https://protect-eu.mimecast.com/s/AbC12?domain=my-fresh-site.top"),
            pp.features("https://www.google.com/url?q=https://my-fresh-site.top/")
        );
        // A known onward site, or an unknown wrapper: the whole URL, as before.
        for url in [
            "https://www.google.com/url?q=https://www.google.com/maps",
            "https://fresh-site.top/go?u=https://other.top/",
        ] {
            let text = read_text(url, &on.spec().ngrams);
            let r = on.reading(&on.analyzer().analyze(url), &text);
            assert!(r.onward.is_none(), "{url}");
            assert_eq!(on.features(url), off.features(url), "{url}");
        }
    }

    #[test]
    fn without_signals_only_ngrams_remain() {
        let spec = EncoderSpec {
            signals: false,
            ..EncoderSpec::default()
        };
        let enc = UrlEncoder::new(spec, UrlAnalyzer::default()).unwrap();
        let f = enc.features("http://192.168.0.1/");
        assert!(f.iter().all(|&(i, _)| i < 1 << 18));
    }

    #[test]
    fn a_wrong_spec_is_refused_with_the_reason() {
        let bad = |spec: EncoderSpec| {
            UrlEncoder::new(spec, UrlAnalyzer::default())
                .unwrap_err()
                .to_string()
        };
        let d = EncoderSpec::default();
        assert!(bad(EncoderSpec {
            psl_version: "1999".into(),
            ..d.clone()
        })
        .contains("1999"));
        assert!(bad(EncoderSpec {
            format: "x".into(),
            ..d.clone()
        })
        .contains("format"));
        let mut s = d.clone();
        s.ngrams.bits = 40;
        assert!(bad(s).contains("bits"));
        assert!(UrlEncoder::from_parts("{}", b"", "").is_err());
    }

    #[test]
    fn shape_counts_are_binned_tokens_of_the_text_read() {
        assert_eq!(
            [0, 1, 3, 4, 5, 6, 7, 8, 11, 12, 16, 24, 100, 1 << 20].map(half_octave),
            [0, 1, 3, 4, 4, 5, 5, 6, 6, 7, 8, 9, 13, 20]
        );
        let with = |shape: bool, signals: bool| {
            let spec = EncoderSpec {
                shape,
                signals,
                ..EncoderSpec::default()
            };
            UrlEncoder::new(spec, UrlAnalyzer::default()).unwrap()
        };
        let (on, off) = (with(true, true), with(false, true));
        assert_eq!(on.width(), off.width() + SHAPE_NAMES.len());
        let url = "https://login.example.com/a/b/c/verify.php?id=1&t=2";
        let shape: Vec<u32> = on
            .shape_tokens(&read_text(url, &on.spec().ngrams))
            .iter()
            .map(|t| t.0)
            .collect();
        assert_eq!(shape.len(), SHAPE_NAMES.len());
        let (f_on, f_off) = (on.features(url), off.features(url));
        // The same n-grams and signals, plus the tokens (a bucket an n-gram shares holds both).
        assert!(shape.iter().all(|i| f_on.iter().any(|f| f.0 == *i)));
        assert!(f_on.len() >= f_off.len() + 10 && f_on.len() <= f_off.len() + SHAPE_NAMES.len());
        let mut ids: Vec<u32> = f_on.iter().map(|f| f.0).collect();
        ids.sort_unstable();
        assert!(ids.windows(2).all(|w| w[0] != w[1]), "ids are distinct");
        // Counts, not characters: another path of the same shape has the same tokens, a
        // deeper one other path tokens; an empty text has none.
        let same = on.shape_tokens(&read_text(
            "https://login.example.com/x/y/z/secure.php?ab=3&c=4",
            &on.spec().ngrams,
        ));
        assert_eq!(same.iter().map(|t| t.0).collect::<Vec<_>>(), shape);
        let deeper = on.shape_tokens(&read_text(
            "https://login.example.com/a/b/c/d/e/f/verify.php?id=1&t=2",
            &on.spec().ngrams,
        ));
        assert_ne!(deeper[6].0, shape[6], "path_segments");
        assert_eq!(deeper[0].0, shape[0], "host_len");
        assert!(on.shape_tokens("").is_empty());
        // Off with the signals (the ablation) and off by default.
        assert!(with(true, false).shape_tokens("https://a.com/").is_empty());
        assert!(!EncoderSpec::default().shape);
    }
}
