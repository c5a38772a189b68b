//! The app's Prometheus metrics: names, the key-value keys that hold them, and the text
//! exposition (format 0.0.4).
//!
//! Every request runs in a fresh instance, so nothing is counted in memory: each event is **one**
//! atomic `increment` of one key in the key-value store, made after the response has left, and
//! `/metrics` reads the keys back and adds them up. A served prediction is one key that names
//! everything about it at once — its label, the bucket of its score, the bucket of the
//! model-service's round trip and the set of reasons shown — so the verdict counters, both
//! histograms and the reason counters come from one write (each write is a committed transaction
//! in Spin's default SQLite store; its price: benchmarks/README.md). The histograms therefore have no `_sum`:
//! an exact sum would be a second write per request. The store is shared by every instance (and,
//! in the cluster, every pod), so the values are the totals of the whole application — see the
//! app README, "Metrics with several pods". Counters are kept per deployment version (the
//! `deployment_version` variable: v1, v2 during a canary), and every version's counters are
//! exposed with a `version` label.

use crate::store::{Store, StoreError};
use std::fmt::Write as _;

/// Prefix of every metric name.
pub const PREFIX: &str = "phishing_app";

/// Upper bounds (seconds) of the model-service round-trip histogram: a few-ms service, with
/// room up to the default timeout.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Upper bounds of the served-score histogram (a score is a probability).
pub const SCORE_BUCKETS: [f64; 11] = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95];

/// Reason codes counted (the model-service's, `lib_ml::explain::REASON_CODES`).
pub use lib_ml::explain::REASON_CODES;

/// Verdict labels a prediction can have.
pub const LABELS: [&str; 2] = ["legitimate", "phishing"];

/// Kinds of model-service failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Could not connect (stopped, refused, DNS, not allowed).
    Unreachable,
    /// No answer within the timeout.
    Timeout,
    /// Answered 4xx (the request was rejected).
    Rejected,
    /// Answered 5xx.
    ServerError,
    /// Answered 2xx with a body the app cannot read.
    BadResponse,
}

impl ErrorKind {
    /// All kinds, in exposition order (the index is the kind's slot in [`Totals`]).
    pub const ALL: [ErrorKind; 5] = [
        ErrorKind::Unreachable,
        ErrorKind::Timeout,
        ErrorKind::Rejected,
        ErrorKind::ServerError,
        ErrorKind::BadResponse,
    ];

    /// The `kind` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Rejected => "rejected",
            ErrorKind::ServerError => "server_error",
            ErrorKind::BadResponse => "bad_response",
        }
    }
}

/// One counted event: one key in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// A prediction served: its label (index into [`LABELS`]), the bucket of its score (index into
    /// [`SCORE_BUCKETS`], `len()` = above the last), the bucket of the model-service's round trip
    /// (index into [`LATENCY_BUCKETS`], likewise) and the reasons shown (bit `i` = [`REASON_CODES`]`[i]`).
    Served {
        /// Index into [`LABELS`].
        label: usize,
        /// Score bucket.
        score: usize,
        /// Round-trip bucket.
        latency: usize,
        /// Reasons shown, one bit per code.
        reasons: u32,
    },
    /// A failed model-service call: its kind and the bucket of its round trip.
    Failed {
        /// Kind of failure.
        kind: ErrorKind,
        /// Round-trip bucket.
        latency: usize,
    },
    /// A feedback click: `true` = agree.
    Feedback(bool),
    /// A view of the UI page.
    PageView,
}

/// Prefix of every metric key: `metrics:<version>:<counter>`.
pub const KEY_PREFIX: &str = "metrics:";

impl Counter {
    /// The key-value key holding the counter of deployment `version`.
    pub fn key(&self, version: &str) -> String {
        format!("{KEY_PREFIX}{version}:{}", self.name())
    }

    fn name(&self) -> String {
        match self {
            Counter::Served {
                label,
                score,
                latency,
                reasons,
            } => format!("served:{}:{score}:{latency}:{reasons:x}", LABELS[*label]),
            Counter::Failed { kind, latency } => format!("failed:{}:{latency}", kind.as_str()),
            Counter::Feedback(true) => "feedback:agree".into(),
            Counter::Feedback(false) => "feedback:disagree".into(),
            Counter::PageView => "page_views".into(),
        }
    }

    /// The counter a key's name (what follows `metrics:<version>:`) holds; `None` for names this
    /// version does not write (a key of an older release is left alone, not misread).
    pub fn parse(name: &str) -> Option<Counter> {
        let parts: Vec<&str> = name.split(':').collect();
        let index = |text: &str, len: usize| text.parse::<usize>().ok().filter(|i| *i <= len);
        match parts[..] {
            ["served", label, score, latency, reasons] => Some(Counter::Served {
                label: LABELS.iter().position(|l| *l == label)?,
                score: index(score, SCORE_BUCKETS.len())?,
                latency: index(latency, LATENCY_BUCKETS.len())?,
                reasons: u32::from_str_radix(reasons, 16)
                    .ok()
                    .filter(|r| *r >> REASON_CODES.len() == 0)?,
            }),
            ["failed", kind, latency] => Some(Counter::Failed {
                kind: *ErrorKind::ALL.iter().find(|k| k.as_str() == kind)?,
                latency: index(latency, LATENCY_BUCKETS.len())?,
            }),
            ["feedback", "agree"] => Some(Counter::Feedback(true)),
            ["feedback", "disagree"] => Some(Counter::Feedback(false)),
            ["page_views"] => Some(Counter::PageView),
            _ => None,
        }
    }
}

/// The counter of a served prediction: its label, score, round trip and the reasons shown
/// (codes not in [`REASON_CODES`] are not counted).
pub fn served(label: usize, score: f64, seconds: f64, reasons: &[&str]) -> Counter {
    let score = SCORE_BUCKETS
        .iter()
        .position(|b| score <= *b)
        .unwrap_or(SCORE_BUCKETS.len());
    let reasons = reasons
        .iter()
        .filter_map(|r| REASON_CODES.iter().position(|c| c == r))
        .fold(0u32, |mask, i| mask | 1 << i);
    Counter::Served {
        label,
        score,
        latency: bucket_of(seconds),
        reasons,
    }
}

/// The histogram bucket of a round trip of `seconds`.
pub fn bucket_of(seconds: f64) -> usize {
    LATENCY_BUCKETS
        .iter()
        .position(|b| seconds <= *b)
        .unwrap_or(LATENCY_BUCKETS.len())
}

/// Whether `v` can be a deployment version: 1–32 of `a-z 0-9 . _ -` (it becomes a key part and a
/// label value).
pub fn valid_version(v: &str) -> bool {
    (1..=32).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// What the build-info gauge reports.
#[derive(Debug, Clone)]
pub struct BuildInfo {
    /// The deployment version (`deployment_version`).
    pub deployment: String,
    /// The app's version.
    pub version: String,
    /// The commit it was built from (empty when unknown).
    pub commit: String,
    /// lib-version's version.
    pub lib_version: String,
}

/// The totals of one deployment version, added up from its counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    /// Predictions by label.
    pub predictions: [i64; LABELS.len()],
    /// Feedback: `[disagree, agree]`.
    pub feedback: [i64; 2],
    /// UI page views.
    pub page_views: i64,
    /// Failed model-service calls by kind ([`ErrorKind::ALL`] order).
    pub errors: [i64; ErrorKind::ALL.len()],
    /// Round trips (served and failed) per bucket, not cumulative.
    pub latency: [i64; LATENCY_BUCKETS.len() + 1],
    /// Scores per label per bucket, not cumulative.
    pub scores: [[i64; SCORE_BUCKETS.len() + 1]; LABELS.len()],
    /// Reasons shown, by code.
    pub reasons: [i64; REASON_CODES.len()],
}

impl Totals {
    /// Adds `n` events of `counter`.
    pub fn add(&mut self, counter: Counter, n: i64) {
        let n = n.max(0);
        match counter {
            Counter::Served {
                label,
                score,
                latency,
                reasons,
            } => {
                self.predictions[label] += n;
                self.scores[label][score] += n;
                self.latency[latency] += n;
                for (i, total) in self.reasons.iter_mut().enumerate() {
                    if reasons & (1 << i) != 0 {
                        *total += n;
                    }
                }
            }
            Counter::Failed { kind, latency } => {
                let k = ErrorKind::ALL.iter().position(|x| *x == kind).unwrap_or(0);
                self.errors[k] += n;
                self.latency[latency] += n;
            }
            Counter::Feedback(agree) => self.feedback[usize::from(agree)] += n,
            Counter::PageView => self.page_views += n,
        }
    }
}

/// Every deployment version's totals, by version.
pub type VersionTotals = (String, Totals);

/// Reads every counter of every deployment version found in `store` and adds them up; `own` (the
/// serving version) is reported even before it counted anything. Each key is read with
/// `increment(key, 0)`, one atomic read that does not depend on how the store encodes numbers.
pub fn read_all(store: &dyn Store, own: &str) -> Result<Vec<VersionTotals>, StoreError> {
    let mut versions: std::collections::BTreeMap<String, Totals> = Default::default();
    versions.insert(own.to_string(), Totals::default());
    for key in store.keys()? {
        let Some((version, name)) = key
            .strip_prefix(KEY_PREFIX)
            .and_then(|rest| rest.split_once(':'))
        else {
            continue;
        };
        let Some(counter) = Counter::parse(name).filter(|_| valid_version(version)) else {
            continue;
        };
        let n = store.increment(&key, 0)?;
        versions
            .entry(version.to_string())
            .or_default()
            .add(counter, n);
    }
    Ok(versions.into_iter().collect())
}

/// Escapes a label value for the text format.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {PREFIX}_{name} {help}");
    let _ = writeln!(out, "# TYPE {PREFIX}_{name} {kind}");
}

/// Formats a float the way Prometheus reads it.
fn num(v: f64) -> String {
    if v == f64::INFINITY {
        "+Inf".into()
    } else {
        format!("{v}")
    }
}

/// Writes one histogram's `_bucket` and `_count` samples: `labels` (already formatted, e.g.
/// `version="v1"`), upper `bounds`, per-bucket (not cumulative) `counts` with one more entry than
/// `bounds` for `+Inf`. `_count` is the `+Inf` bucket, so the two always agree within one scrape.
fn histogram(out: &mut String, name: &str, labels: &str, bounds: &[f64], counts: &[i64]) {
    let mut cumulative = 0;
    for (i, n) in counts.iter().enumerate() {
        cumulative += n;
        let le = bounds.get(i).copied().unwrap_or(f64::INFINITY);
        let _ = writeln!(
            out,
            "{PREFIX}_{name}_bucket{{{labels},le=\"{}\"}} {cumulative}",
            num(le)
        );
    }
    let _ = writeln!(out, "{PREFIX}_{name}_count{{{labels}}} {cumulative}");
}

/// Renders the exposition text from the totals [`read_all`] returns.
pub fn render(values: &[VersionTotals], build: &BuildInfo, feedback_rows: i64) -> String {
    let mut out = String::with_capacity(8192);

    header(
        &mut out,
        "predictions_total",
        "counter",
        "Predictions served, by verdict.",
    );
    for (v, t) in values {
        let v = escape(v);
        for (label, n) in LABELS.iter().zip(t.predictions) {
            let _ = writeln!(
                out,
                "{PREFIX}_predictions_total{{version=\"{v}\",label=\"{label}\"}} {n}"
            );
        }
    }

    header(
        &mut out,
        "feedback_total",
        "counter",
        "Feedback on verdicts, by whether the user agreed.",
    );
    for (v, t) in values {
        let v = escape(v);
        for (verdict, n) in [("agree", t.feedback[1]), ("disagree", t.feedback[0])] {
            let _ = writeln!(
                out,
                "{PREFIX}_feedback_total{{version=\"{v}\",verdict=\"{verdict}\"}} {n}"
            );
        }
    }

    header(
        &mut out,
        "page_views_total",
        "counter",
        "Views of the UI page.",
    );
    for (v, t) in values {
        let _ = writeln!(
            out,
            "{PREFIX}_page_views_total{{version=\"{}\"}} {}",
            escape(v),
            t.page_views
        );
    }

    header(
        &mut out,
        "model_service_errors_total",
        "counter",
        "Failed calls to the model-service, by kind.",
    );
    for (v, t) in values {
        let v = escape(v);
        for (kind, n) in ErrorKind::ALL.iter().zip(t.errors) {
            let _ = writeln!(
                out,
                "{PREFIX}_model_service_errors_total{{version=\"{v}\",kind=\"{}\"}} {n}",
                kind.as_str()
            );
        }
    }

    header(
        &mut out,
        "model_service_request_duration_seconds",
        "histogram",
        "Round-trip time of calls from the app to the model-service (no _sum: see the app README).",
    );
    for (v, t) in values {
        histogram(
            &mut out,
            "model_service_request_duration_seconds",
            &format!("version=\"{}\"", escape(v)),
            &LATENCY_BUCKETS,
            &t.latency,
        );
    }

    header(
        &mut out,
        "score",
        "histogram",
        "Scores (P(phishing)) served, by verdict label: a canary whose distribution drifts from the stable version's shows here.",
    );
    for (v, t) in values {
        let v = escape(v);
        for (label, counts) in LABELS.iter().zip(&t.scores) {
            histogram(
                &mut out,
                "score",
                &format!("version=\"{v}\",label=\"{label}\""),
                &SCORE_BUCKETS,
                counts,
            );
        }
    }

    header(
        &mut out,
        "reasons_total",
        "counter",
        "Reasons shown with verdicts, by code (see the model-service's OpenAPI document).",
    );
    for (v, t) in values {
        let v = escape(v);
        for (code, n) in REASON_CODES.iter().zip(t.reasons) {
            let _ = writeln!(
                out,
                "{PREFIX}_reasons_total{{version=\"{v}\",code=\"{code}\"}} {n}"
            );
        }
    }

    header(
        &mut out,
        "feedback_disagreement_ratio",
        "gauge",
        "Share of feedback that disagreed with the verdict (absent until there is feedback).",
    );
    for (v, t) in values {
        let [disagree, agree] = t.feedback;
        if agree + disagree > 0 {
            let _ = writeln!(
                out,
                "{PREFIX}_feedback_disagreement_ratio{{version=\"{}\"}} {}",
                escape(v),
                num(disagree as f64 / (agree + disagree) as f64)
            );
        }
    }

    header(
        &mut out,
        "feedback_rows",
        "gauge",
        "Feedback rows stored for retraining.",
    );
    let _ = writeln!(out, "{PREFIX}_feedback_rows {}", feedback_rows.max(0));

    header(
        &mut out,
        "build_info",
        "gauge",
        "Build of the app serving this scrape (always 1).",
    );
    let _ = writeln!(
        out,
        "{PREFIX}_build_info{{version=\"{}\",app_version=\"{}\",commit=\"{}\",lib_version=\"{}\"}} 1",
        escape(&build.deployment),
        escape(&build.version),
        escape(&build.commit),
        escape(&build.lib_version)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemStore;

    fn build() -> BuildInfo {
        BuildInfo {
            deployment: "v1".into(),
            version: "1.2.3".into(),
            commit: "abc\"def".into(),
            lib_version: "0.1.0".into(),
        }
    }

    #[test]
    fn buckets_are_upper_bounds() {
        assert_eq!(bucket_of(0.0), 0);
        assert_eq!(bucket_of(0.001), 0);
        assert_eq!(bucket_of(0.0011), 1);
        assert_eq!(bucket_of(5.0), 11);
        assert_eq!(bucket_of(60.0), 12);
    }

    #[test]
    fn own_version_is_reported_before_it_counts() {
        let store = MemStore::default();
        store.increment(&Counter::PageView.key("v2"), 1).unwrap();
        let versions: Vec<String> = read_all(&store, "v1")
            .unwrap()
            .into_iter()
            .map(|(v, _)| v)
            .collect();
        assert_eq!(versions, ["v1", "v2"]);
    }

    #[test]
    fn versions_are_checked() {
        assert!(valid_version("v1"));
        assert!(valid_version("0.2.0-rc.1"));
        assert!(!valid_version(""));
        assert!(!valid_version("V1"));
        assert!(!valid_version("a:b"));
        assert!(!valid_version(&"x".repeat(33)));
    }

    /// Every counter this version can write: each key reads back as its counter, and no two share a key.
    #[test]
    fn keys_read_back_as_their_counters() {
        let mut all = vec![
            Counter::PageView,
            Counter::Feedback(true),
            Counter::Feedback(false),
        ];
        for latency in 0..=LATENCY_BUCKETS.len() {
            all.extend(ErrorKind::ALL.map(|kind| Counter::Failed { kind, latency }));
            for label in 0..LABELS.len() {
                for score in 0..=SCORE_BUCKETS.len() {
                    for reasons in [0, 1, 0b1010, (1 << REASON_CODES.len()) - 1] {
                        all.push(Counter::Served {
                            label,
                            score,
                            latency,
                            reasons,
                        });
                    }
                }
            }
        }
        let mut keys = std::collections::BTreeSet::new();
        for c in &all {
            let key = c.key("v1");
            let name = key.strip_prefix("metrics:v1:").unwrap();
            assert_eq!(Counter::parse(name), Some(*c), "{key}");
            assert!(keys.insert(key));
        }
        // Keys of other writers or of an older release are not misread; a reason bit past the
        // last code is not one.
        let past_the_codes = format!("served:phishing:0:0:{:x}", 1u64 << REASON_CODES.len());
        for name in [
            "predictions:phishing",
            "latency_bucket:3",
            "served:phishing:12:0:0",
            "served:phishing:11:13:0",
            "served:spam:0:0:0",
            past_the_codes.as_str(),
            "served:phishing:0:0:zz",
            "failed:nope:0",
            "feedback:maybe",
            "",
        ] {
            assert_eq!(Counter::parse(name), None, "{name}");
        }
    }

    #[test]
    fn one_served_key_feeds_every_series() {
        let c = served(
            1,
            0.97,
            0.003,
            &["brand_in_domain", "no_such_code", "ip_host"],
        );
        let mut t = Totals::default();
        t.add(c, 2);
        assert_eq!(t.predictions, [0, 2]);
        assert_eq!(t.scores[1][SCORE_BUCKETS.len()], 2);
        assert_eq!(t.latency[bucket_of(0.003)], 2);
        assert_eq!(t.reasons.iter().sum::<i64>(), 4, "{t:?}");
        for code in ["brand_in_domain", "ip_host"] {
            let i = REASON_CODES.iter().position(|c| *c == code).unwrap();
            assert_eq!(t.reasons[i], 2, "{code}");
        }
    }

    #[test]
    fn histogram_is_cumulative_and_counts_match() {
        let store = MemStore::default();
        for s in [0.0005, 0.003, 0.003, 0.2] {
            store
                .increment(&served(0, 0.01, s, &[]).key("v2"), 1)
                .unwrap();
        }
        let failed = Counter::Failed {
            kind: ErrorKind::Timeout,
            latency: bucket_of(9.0),
        };
        store.increment(&failed.key("v2"), 1).unwrap();
        store
            .increment(&served(1, 0.99, 0.003, &[]).key("v1"), 1)
            .unwrap();
        // A key of an older release is ignored, not misread.
        store
            .increment("metrics:v2:predictions:phishing", 7)
            .unwrap();
        let text = render(&read_all(&store, "v1").unwrap(), &build(), 0);
        for line in [
            "_seconds_bucket{version=\"v2\",le=\"0.001\"} 1\n",
            "_seconds_bucket{version=\"v2\",le=\"0.005\"} 3\n",
            "_seconds_bucket{version=\"v2\",le=\"0.25\"} 4\n",
            "_seconds_bucket{version=\"v2\",le=\"+Inf\"} 5\n",
            "_seconds_count{version=\"v2\"} 5\n",
            "_seconds_count{version=\"v1\"} 1\n",
            "_predictions_total{version=\"v2\",label=\"legitimate\"} 4\n",
            "_predictions_total{version=\"v2\",label=\"phishing\"} 0\n",
            "_model_service_errors_total{version=\"v2\",kind=\"timeout\"} 1\n",
            "_score_bucket{version=\"v2\",label=\"legitimate\",le=\"0.05\"} 4\n",
            "_score_count{version=\"v1\",label=\"phishing\"} 1\n",
            "commit=\"abc\\\"def\"",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
        assert!(!text.contains("_sum{"), "{text}");
        // No feedback yet: the ratio has no sample (only its HELP and TYPE lines).
        assert_eq!(disagreement_samples(&text), Vec::<String>::new(), "{text}");
        // One disagreeing and three agreeing answers for v1: a sample of 0.25, for v1 only.
        store
            .increment(&Counter::Feedback(false).key("v1"), 1)
            .unwrap();
        store
            .increment(&Counter::Feedback(true).key("v1"), 3)
            .unwrap();
        let text = render(&read_all(&store, "v1").unwrap(), &build(), 0);
        assert_eq!(
            disagreement_samples(&text),
            [format!(
                "{PREFIX}_feedback_disagreement_ratio{{version=\"v1\"}} 0.25"
            )],
            "{text}"
        );
    }

    fn disagreement_samples(text: &str) -> Vec<String> {
        let name = format!("{PREFIX}_feedback_disagreement_ratio");
        text.lines()
            .filter(|l| l.starts_with(&name))
            .map(str::to_string)
            .collect()
    }
}
