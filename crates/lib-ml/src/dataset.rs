//! Reading `label<TAB>url` dataset files.

use crate::label::{Label, LabelError};
use std::fmt;
use std::path::{Path, PathBuf};

/// One labelled URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The class.
    pub label: Label,
    /// The URL, as written in the file.
    pub url: String,
}

/// What is wrong with one row of a dataset file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    /// Occurs when a row does not have exactly two tab-separated fields.
    #[error("has {0} tab-separated fields, expected 2 (label<TAB>url)")]
    FieldCount(usize),
    /// Occurs when the label is neither `legitimate` nor `phishing`.
    #[error("{0}")]
    Label(#[from] LabelError),
    /// Occurs when the URL field is empty or only whitespace.
    #[error("has an empty url")]
    EmptyUrl,
    /// Occurs when the row is not valid UTF-8.
    #[error("is not valid UTF-8 (byte {0} of the row)")]
    InvalidUtf8(usize),
}

/// A row that was skipped, with where it is and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub error: RowError,
    /// The row as read (lossily decoded, cut to 200 characters), for reports.
    pub text: String,
}

impl fmt::Display for BadRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {} {}: `{}`", self.line, self.error, self.text)
    }
}

/// Errors from reading a dataset file.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// Occurs when the file cannot be read.
    #[error("failed to read dataset file `{}`", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Occurs in [`ReadMode::Strict`] at the first malformed row.
    #[error("line {line} of `{}` {error}", path.display())]
    BadRow {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        error: RowError,
    },
}

/// How to treat malformed rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// Fail at the first malformed row.
    Strict,
    /// Skip malformed rows and report them in [`Dataset::skipped`].
    SkipBadRows,
}

/// The rows of a dataset file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dataset {
    /// The well-formed rows, in file order.
    pub samples: Vec<Sample>,
    /// The malformed rows that were skipped (always empty in [`ReadMode::Strict`]).
    pub skipped: Vec<BadRow>,
}

impl Dataset {
    /// How many samples have each label: `[legitimate, phishing]`.
    pub fn class_counts(&self) -> [usize; 2] {
        class_counts(&self.samples)
    }

    /// The URLs, in order.
    pub fn urls(&self) -> Vec<&str> {
        self.samples.iter().map(|s| s.url.as_str()).collect()
    }
}

/// How many of `samples` have each label: `[legitimate, phishing]`.
///
/// ```
/// use lib_ml::{class_counts, Label, Sample};
/// let s = |label| Sample { label, url: "http://a.com".into() };
/// assert_eq!(class_counts(&[s(Label::Phishing), s(Label::Legitimate), s(Label::Phishing)]), [1, 2]);
/// ```
pub fn class_counts(samples: &[Sample]) -> [usize; 2] {
    let phishing = samples
        .iter()
        .filter(|s| s.label == Label::Phishing)
        .count();
    [samples.len() - phishing, phishing]
}

/// Parses one row (without its line ending).
fn parse_row(raw: &[u8]) -> Result<Sample, RowError> {
    let row = std::str::from_utf8(raw).map_err(|e| RowError::InvalidUtf8(e.valid_up_to()))?;
    let fields: Vec<&str> = row.split('\t').collect();
    let [label, url] = fields[..] else {
        return Err(RowError::FieldCount(fields.len()));
    };
    let label: Label = label.trim().parse()?;
    let url = url.trim();
    if url.is_empty() {
        return Err(RowError::EmptyUrl);
    }
    Ok(Sample {
        label,
        url: url.to_string(),
    })
}

/// Parses dataset text; `path` only names the source in errors.
///
/// Lines may end in `\n` or `\r\n`; blank lines are ignored.
///
/// ```
/// use lib_ml::{parse_dataset_bytes, Label, ReadMode};
/// let data = b"phishing\thttp://a.tk/login\nlegit\thttp://b.com\n";
/// let ds = parse_dataset_bytes(data, "mem.txt", ReadMode::SkipBadRows)?;
/// assert_eq!(ds.samples.len(), 1);
/// assert_eq!(ds.samples[0].label, Label::Phishing);
/// assert_eq!(ds.skipped[0].line, 2);
/// assert!(parse_dataset_bytes(data, "mem.txt", ReadMode::Strict).is_err());
/// # Ok::<(), lib_ml::DatasetError>(())
/// ```
pub fn parse_dataset_bytes(
    bytes: &[u8],
    path: impl AsRef<Path>,
    mode: ReadMode,
) -> Result<Dataset, DatasetError> {
    let mut ds = Dataset::default();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match parse_row(raw) {
            Ok(sample) => ds.samples.push(sample),
            Err(error) => match mode {
                ReadMode::Strict => {
                    return Err(DatasetError::BadRow {
                        path: path.as_ref().to_path_buf(),
                        line: i + 1,
                        error,
                    })
                }
                ReadMode::SkipBadRows => ds.skipped.push(BadRow {
                    line: i + 1,
                    error,
                    text: String::from_utf8_lossy(raw).chars().take(200).collect(),
                }),
            },
        }
    }
    Ok(ds)
}

/// Reads a `label<TAB>url` file.
///
/// In [`ReadMode::Strict`] the first malformed row is an error naming the file and line; in
/// [`ReadMode::SkipBadRows`] malformed rows are skipped and listed in [`Dataset::skipped`].
pub fn read_dataset(path: impl AsRef<Path>, mode: ReadMode) -> Result<Dataset, DatasetError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_dataset_bytes(&bytes, path, mode)
}
