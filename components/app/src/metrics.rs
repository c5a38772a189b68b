//! The app's Prometheus metrics: names, the key-value keys that hold them, and the text
//! exposition (format 0.0.4).
//!
//! Every request runs in a fresh instance, so nothing is counted in memory: each event is one
//! atomic `increment` of a key in the key-value store, and `/metrics` reads them back. The store
//! is shared by every instance (and, in the cluster, every pod), so the values are the totals of
//! the whole application — see the app README, "Metrics with several pods". Counters are kept per
//! deployment version (the `deployment_version` variable: v1, v2 during a canary), and every
//! version's counters are exposed with a `version` label.

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
    /// All kinds, in exposition order.
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
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Counter {
    /// A prediction served, by label (index into [`LABELS`]).
    Prediction(usize),
    /// A feedback click: `true` = agree.
    Feedback(bool),
    /// A view of the UI page.
    PageView,
    /// A failed model-service call.
    ModelError(ErrorKind),
    /// A round trip that fell in bucket `i` of [`LATENCY_BUCKETS`] (`len()` = above the last).
    LatencyBucket(usize),
    /// Sum of round-trip times in microseconds.
    LatencySumMicros,
    /// A served score of label `.0` that fell in bucket `.1` of [`SCORE_BUCKETS`] (`len()` =
    /// above the last).
    ScoreBucket(usize, usize),
    /// Sum of served scores of label `.0`, in millionths.
    ScoreSumMicros(usize),
    /// A reason shown with a verdict (index into [`REASON_CODES`]).
    Reason(usize),
}

/// Prefix of every metric key: `metrics:<version>:<counter>`.
pub const KEY_PREFIX: &str = "metrics:";

impl Counter {
    /// The key-value key holding the counter of deployment `version`.
    pub fn key(&self, version: &str) -> String {
        let name = match self {
            Counter::Prediction(i) => format!("predictions:{}", LABELS[*i]),
            Counter::Feedback(true) => "feedback:agree".into(),
            Counter::Feedback(false) => "feedback:disagree".into(),
            Counter::PageView => "page_views".into(),
            Counter::ModelError(k) => format!("model_service_errors:{}", k.as_str()),
            Counter::LatencyBucket(i) => format!("latency_bucket:{i}"),
            Counter::LatencySumMicros => "latency_sum_us".into(),
            Counter::ScoreBucket(l, i) => format!("score_bucket:{}:{i}", LABELS[*l]),
            Counter::ScoreSumMicros(l) => format!("score_sum_u:{}", LABELS[*l]),
            Counter::Reason(i) => format!("reasons:{}", REASON_CODES[*i]),
        };
        format!("{KEY_PREFIX}{version}:{name}")
    }

    /// Every counter, in a fixed order.
    pub fn all() -> Vec<Counter> {
        let mut all: Vec<Counter> = (0..LABELS.len()).map(Counter::Prediction).collect();
        all.extend([
            Counter::Feedback(true),
            Counter::Feedback(false),
            Counter::PageView,
        ]);
        all.extend(ErrorKind::ALL.map(Counter::ModelError));
        all.extend((0..=LATENCY_BUCKETS.len()).map(Counter::LatencyBucket));
        all.push(Counter::LatencySumMicros);
        for l in 0..LABELS.len() {
            all.extend((0..=SCORE_BUCKETS.len()).map(|i| Counter::ScoreBucket(l, i)));
            all.push(Counter::ScoreSumMicros(l));
        }
        all.extend((0..REASON_CODES.len()).map(Counter::Reason));
        all
    }
}

/// The counters one served prediction adds: its label, its score's bucket and sum, and each
/// reason shown (unknown codes are not counted).
pub fn prediction_counters(label: usize, score: f64, reasons: &[&str]) -> Vec<(Counter, i64)> {
    let bucket = SCORE_BUCKETS
        .iter()
        .position(|b| score <= *b)
        .unwrap_or(SCORE_BUCKETS.len());
    let mut out = vec![
        (Counter::Prediction(label), 1),
        (Counter::ScoreBucket(label, bucket), 1),
        (
            Counter::ScoreSumMicros(label),
            (score.clamp(0.0, 1.0) * 1e6).round() as i64,
        ),
    ];
    out.extend(
        reasons
            .iter()
            .filter_map(|r| REASON_CODES.iter().position(|c| c == r))
            .map(|i| (Counter::Reason(i), 1)),
    );
    out
}

/// The histogram bucket of a round trip of `seconds`.
pub fn bucket_of(seconds: f64) -> usize {
    LATENCY_BUCKETS
        .iter()
        .position(|b| seconds <= *b)
        .unwrap_or(LATENCY_BUCKETS.len())
}

/// Records a model-service round trip of `version`: its bucket and its time (two increments).
pub fn observe_latency(store: &dyn Store, version: &str, seconds: f64) -> Result<(), StoreError> {
    store.increment(&Counter::LatencyBucket(bucket_of(seconds)).key(version), 1)?;
    let micros = (seconds.max(0.0) * 1e6).round() as i64;
    store.increment(&Counter::LatencySumMicros.key(version), micros)?;
    Ok(())
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

/// The counters of one deployment version.
pub type VersionValues = (String, Vec<(Counter, i64)>);

/// Reads every counter of every deployment version found in `store`, and of `own` (the serving
/// version) even before it counted anything: `increment(key, 0)`, one atomic read each.
pub fn read_all(store: &dyn Store, own: &str) -> Result<Vec<VersionValues>, StoreError> {
    let mut versions: Vec<String> = store
        .keys()?
        .iter()
        .filter_map(|k| k.strip_prefix(KEY_PREFIX)?.split_once(':').map(|(v, _)| v))
        .filter(|v| valid_version(v))
        .map(str::to_string)
        .collect();
    versions.push(own.to_string());
    versions.sort();
    versions.dedup();
    versions
        .into_iter()
        .map(|v| {
            let values = Counter::all()
                .into_iter()
                .map(|c| Ok((c, store.increment(&c.key(&v), 0)?)))
                .collect::<Result<_, StoreError>>()?;
            Ok((v, values))
        })
        .collect()
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

/// Renders the exposition text from counter values (as [`read_all`] returns them).
pub fn render(values: &[VersionValues], build: &BuildInfo, feedback_rows: i64) -> String {
    let get = |counters: &[(Counter, i64)], c: Counter| {
        counters
            .iter()
            .find(|(k, _)| *k == c)
            .map_or(0, |(_, v)| (*v).max(0))
    };
    let mut out = String::with_capacity(8192);

    header(
        &mut out,
        "predictions_total",
        "counter",
        "Predictions served, by verdict.",
    );
    for (v, c) in values {
        let v = escape(v);
        for (i, label) in LABELS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{PREFIX}_predictions_total{{version=\"{v}\",label=\"{label}\"}} {}",
                get(c, Counter::Prediction(i))
            );
        }
    }

    header(
        &mut out,
        "feedback_total",
        "counter",
        "Feedback on verdicts, by whether the user agreed.",
    );
    for (v, c) in values {
        let v = escape(v);
        for (agree, verdict) in [(true, "agree"), (false, "disagree")] {
            let _ = writeln!(
                out,
                "{PREFIX}_feedback_total{{version=\"{v}\",verdict=\"{verdict}\"}} {}",
                get(c, Counter::Feedback(agree))
            );
        }
    }

    header(
        &mut out,
        "page_views_total",
        "counter",
        "Views of the UI page.",
    );
    for (v, c) in values {
        let _ = writeln!(
            out,
            "{PREFIX}_page_views_total{{version=\"{}\"}} {}",
            escape(v),
            get(c, Counter::PageView)
        );
    }

    header(
        &mut out,
        "model_service_errors_total",
        "counter",
        "Failed calls to the model-service, by kind.",
    );
    for (v, c) in values {
        let v = escape(v);
        for kind in ErrorKind::ALL {
            let _ = writeln!(
                out,
                "{PREFIX}_model_service_errors_total{{version=\"{v}\",kind=\"{}\"}} {}",
                kind.as_str(),
                get(c, Counter::ModelError(kind))
            );
        }
    }

    header(
        &mut out,
        "model_service_request_duration_seconds",
        "histogram",
        "Round-trip time of calls from the app to the model-service.",
    );
    for (v, c) in values {
        let v = escape(v);
        let name = format!("{PREFIX}_model_service_request_duration_seconds");
        // `_count` is the sum of the buckets, so the two always agree within one scrape.
        let mut cumulative = 0;
        for i in 0..=LATENCY_BUCKETS.len() {
            cumulative += get(c, Counter::LatencyBucket(i));
            let le = LATENCY_BUCKETS.get(i).copied().unwrap_or(f64::INFINITY);
            let _ = writeln!(
                out,
                "{name}_bucket{{version=\"{v}\",le=\"{}\"}} {cumulative}",
                num(le)
            );
        }
        let sum = get(c, Counter::LatencySumMicros) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{version=\"{v}\"}} {}", num(sum));
        let _ = writeln!(out, "{name}_count{{version=\"{v}\"}} {cumulative}");
    }

    header(
        &mut out,
        "score",
        "histogram",
        "Scores (P(phishing)) served, by verdict label: a canary whose distribution drifts from the stable version's shows here.",
    );
    for (v, c) in values {
        let v = escape(v);
        for (l, label) in LABELS.iter().enumerate() {
            let mut cumulative = 0;
            for i in 0..=SCORE_BUCKETS.len() {
                cumulative += get(c, Counter::ScoreBucket(l, i));
                let le = SCORE_BUCKETS.get(i).copied().unwrap_or(f64::INFINITY);
                let _ = writeln!(
                    out,
                    "{PREFIX}_score_bucket{{version=\"{v}\",label=\"{label}\",le=\"{}\"}} {cumulative}",
                    num(le)
                );
            }
            let sum = get(c, Counter::ScoreSumMicros(l)) as f64 / 1e6;
            let _ = writeln!(
                out,
                "{PREFIX}_score_sum{{version=\"{v}\",label=\"{label}\"}} {}",
                num(sum)
            );
            let _ = writeln!(
                out,
                "{PREFIX}_score_count{{version=\"{v}\",label=\"{label}\"}} {cumulative}"
            );
        }
    }

    header(
        &mut out,
        "reasons_total",
        "counter",
        "Reasons shown with verdicts, by code (see the model-service's OpenAPI document).",
    );
    for (v, c) in values {
        let v = escape(v);
        for (i, code) in REASON_CODES.iter().enumerate() {
            let _ = writeln!(
                out,
                "{PREFIX}_reasons_total{{version=\"{v}\",code=\"{code}\"}} {}",
                get(c, Counter::Reason(i))
            );
        }
    }

    header(
        &mut out,
        "feedback_disagreement_ratio",
        "gauge",
        "Share of feedback that disagreed with the verdict (absent until there is feedback).",
    );
    for (v, c) in values {
        let agree = get(c, Counter::Feedback(true));
        let disagree = get(c, Counter::Feedback(false));
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
        observe_latency(&store, "v2", 0.1).unwrap();
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

    #[test]
    fn keys_are_distinct() {
        let keys: std::collections::BTreeSet<String> =
            Counter::all().iter().map(|c| c.key("v1")).collect();
        assert_eq!(keys.len(), Counter::all().len());
    }

    #[test]
    fn histogram_is_cumulative_and_counts_match() {
        let store = MemStore::default();
        for s in [0.0005, 0.003, 0.003, 0.2, 9.0] {
            observe_latency(&store, "v2", s).unwrap();
        }
        observe_latency(&store, "v1", 0.003).unwrap();
        let build = BuildInfo {
            deployment: "v1".into(),
            version: "1.2.3".into(),
            commit: "abc\"def".into(),
            lib_version: "0.1.0".into(),
        };
        let text = render(&read_all(&store, "v1").unwrap(), &build, 0);
        assert!(
            text.contains("_bucket{version=\"v2\",le=\"0.001\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("_bucket{version=\"v2\",le=\"0.005\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("_bucket{version=\"v2\",le=\"0.25\"} 4\n"),
            "{text}"
        );
        assert!(
            text.contains("_bucket{version=\"v2\",le=\"+Inf\"} 5\n"),
            "{text}"
        );
        assert!(
            text.contains("_seconds_count{version=\"v2\"} 5\n"),
            "{text}"
        );
        assert!(
            text.contains("_seconds_sum{version=\"v2\"} 9.2065\n"),
            "{text}"
        );
        assert!(
            text.contains("_seconds_count{version=\"v1\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("commit=\"abc\\\"def\""), "{text}");
        // No feedback yet: the ratio has no sample (only its HELP and TYPE lines).
        assert_eq!(disagreement_samples(&text), Vec::<String>::new(), "{text}");
        // One disagreeing and three agreeing answers for v1: a sample of 0.25, for v1 only.
        store
            .increment(&Counter::Feedback(false).key("v1"), 1)
            .unwrap();
        store
            .increment(&Counter::Feedback(true).key("v1"), 3)
            .unwrap();
        let text = render(&read_all(&store, "v1").unwrap(), &build, 0);
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
