//! Loading and checking the three splits.

use anyhow::{bail, Context, Result};
use lib_ml::{read_dataset, BadRow, ReadMode, Sample};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// The split names, in order.
pub const SPLITS: [&str; 3] = ["train", "val", "test"];

/// One split as loaded.
#[derive(Debug, Clone)]
pub struct Split {
    /// `train`, `val` or `test`.
    pub name: &'static str,
    /// The file it came from.
    pub path: PathBuf,
    /// SHA-256 of the file.
    pub sha256: String,
    /// The rows (after the row limit).
    pub samples: Vec<Sample>,
    /// Malformed rows that were skipped.
    pub skipped: Vec<BadRow>,
}

impl Split {
    /// The URLs, in order.
    pub fn urls(&self) -> Vec<&str> {
        self.samples.iter().map(|s| s.url.as_str()).collect()
    }
    /// The 0/1 targets, in order.
    pub fn targets(&self) -> Vec<f32> {
        self.samples
            .iter()
            .map(|s| s.label.index() as f32)
            .collect()
    }
    /// `[legitimate, phishing]` counts.
    pub fn class_counts(&self) -> [usize; 2] {
        lib_ml::class_counts(&self.samples)
    }
}

/// The data summary written to `data-report.json` by the check stage.
#[derive(Debug, Serialize)]
pub struct DataReport {
    /// Per split: file, hash, counts, skipped rows (sources included).
    pub splits: Vec<SplitReport>,
    /// Per extra training source (`[[data.sources]]`): what it added to training and validation.
    pub sources: Vec<SourceReport>,
    /// URLs found in both train and test (must be 0).
    pub train_test_overlap: usize,
}

/// One split in the [`DataReport`].
#[derive(Debug, Serialize)]
pub struct SplitReport {
    /// Split name.
    pub name: String,
    /// The file.
    pub path: String,
    /// SHA-256 of the file.
    pub sha256: String,
    /// Rows used.
    pub rows: usize,
    /// Legitimate rows.
    pub legitimate: usize,
    /// Phishing rows.
    pub phishing: usize,
    /// Share of phishing rows.
    pub phishing_share: f64,
    /// Skipped malformed rows, as `line N ...` messages.
    pub skipped: Vec<String>,
}

/// What one `[[data.sources]]` file added.
#[derive(Debug, Clone, Serialize)]
pub struct SourceReport {
    /// The file's name.
    pub file: String,
    /// SHA-256 of the file.
    pub sha256: String,
    /// `urls` or `domains`.
    pub kind: String,
    /// Rows added to training: `[legitimate, phishing]`.
    pub train: [usize; 2],
    /// Rows added to validation: `[legitimate, phishing]`.
    pub val: [usize; 2],
    /// Rows left out because the same URL is in the validation or test split.
    pub dropped_in_val_or_test: usize,
    /// Malformed rows skipped.
    pub skipped: usize,
    /// Rows left out because they are on a hosting service (`skip_hosted`).
    pub hosted_left_out: usize,
}

/// The host of a URL as the source split hashes it: lower case, without scheme, user, port and
/// a leading `www.`.
pub fn host_of(url: &str) -> String {
    let rest = url.trim();
    let rest = rest.split_once("://").map_or(rest, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    // An IPv6 literal keeps its colons; anything else loses its port.
    let host = match host.find(']') {
        Some(end) if host.starts_with('[') => host[..=end].to_lowercase(),
        _ => host.split(':').next().unwrap_or("").to_lowercase(),
    };
    host.strip_prefix("www.")
        .map(str::to_string)
        .unwrap_or(host)
}

/// Whether a source row goes to validation: 1 host in 10, by SHA-256 of the host.
pub fn is_validation_host(host: &str) -> bool {
    Sha256::digest(host.as_bytes())[0] % 10 == 0
}

/// Adds each `[[data.sources]]` file to the training and validation splits (split by host, at
/// most `max_rows` rows each, evenly spaced through the file), leaving out rows whose URL is in
/// the validation or test split.
pub fn add_sources(
    splits: &mut [Split; 3],
    sources: &[crate::params::SourceParams],
    max_bad_rows: usize,
) -> Result<Vec<SourceReport>> {
    let mut reports = Vec::new();
    // URLs no source may add: validation and test, and what earlier sources put in validation
    // (added once each source is done).
    let mut held: HashSet<String> = splits[1]
        .samples
        .iter()
        .chain(&splits[2].samples)
        .map(|s| s.url.clone())
        .collect();
    for source in sources {
        let path = &source.file;
        if !path.is_file() {
            bail!(
                "training source `{}` does not exist; fix [[data.sources]] in the params file",
                path.display()
            );
        }
        let (samples, skipped) = if source.kind == "domains" {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("failed to read `{}`", path.display()))?;
            let rows = text
                .lines()
                .map(str::trim)
                .filter(|d| !d.is_empty() && !d.starts_with('#'))
                .map(|d| Sample {
                    label: lib_ml::Label::Legitimate,
                    url: format!("https://{d}/"),
                })
                .collect();
            (rows, 0)
        } else {
            let ds = read_dataset(path, ReadMode::SkipBadRows)?;
            if ds.skipped.len() > max_bad_rows {
                bail!(
                    "`{}` has {} malformed rows, more than max_bad_rows = {max_bad_rows}",
                    path.display(),
                    ds.skipped.len()
                );
            }
            (ds.samples, ds.skipped.len())
        };
        let samples = evenly_spaced(samples, source.max_rows);
        let before = samples.len();
        let samples: Vec<Sample> = if source.skip_hosted {
            let analyzer = lib_ml::analysis::UrlAnalyzer::default();
            samples
                .into_iter()
                .filter(|s| {
                    let a = analyzer.analyze(&lib_ml::analysis::normalize_url(&s.url));
                    !(a.private_suffix || a.free_hosting)
                })
                .collect()
        } else {
            samples
        };
        let hosted_left_out = before - samples.len();
        let val_before = splits[1].samples.len();
        let mut report = SourceReport {
            file: path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into(),
            sha256: sha256_file(path)?,
            kind: source.kind.clone(),
            train: [0, 0],
            val: [0, 0],
            dropped_in_val_or_test: 0,
            skipped,
            hosted_left_out,
        };
        for s in samples {
            if held.contains(&s.url) {
                report.dropped_in_val_or_test += 1;
                continue;
            }
            let class = s.label.index() as usize;
            if is_validation_host(&host_of(&s.url)) {
                report.val[class] += 1;
                splits[1].samples.push(s);
            } else {
                report.train[class] += 1;
                splits[0].samples.push(s);
            }
        }
        held.extend(
            splits[1].samples[val_before..]
                .iter()
                .map(|s| s.url.clone()),
        );
        reports.push(report);
    }
    Ok(reports)
}

fn sha256_file(path: &Path) -> Result<String> {
    let bytes =
        std::fs::read(path).with_context(|| format!("failed to read `{}`", path.display()))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// At most `limit` of `samples` (0 = all), evenly spaced, so a small limit still sees both classes
/// of a file sorted by label.
fn evenly_spaced(samples: Vec<Sample>, limit: usize) -> Vec<Sample> {
    if limit == 0 || limit >= samples.len() {
        return samples;
    }
    let n = samples.len();
    (0..limit).map(|i| samples[i * n / limit].clone()).collect()
}

/// Loads one split, skipping up to `max_bad_rows` malformed rows and keeping at most `limit` rows
/// (0 = all). The kept rows are evenly spaced through the file, so a small limit still sees both
/// classes of a file sorted by label.
pub fn load_split(
    dir: &Path,
    name: &'static str,
    max_bad_rows: usize,
    limit: usize,
) -> Result<Split> {
    if !dir.is_dir() {
        bail!(
            "data directory `{}` does not exist; set [data] dir in the params file or pass --data-dir",
            dir.display()
        );
    }
    let path = dir.join(format!("{name}.txt"));
    if !path.is_file() {
        bail!("missing {name} split: `{}` does not exist", path.display());
    }
    let ds = read_dataset(&path, ReadMode::SkipBadRows)?;
    if ds.skipped.len() > max_bad_rows {
        let first: Vec<String> = ds.skipped.iter().take(5).map(|b| b.to_string()).collect();
        bail!(
            "`{}` has {} malformed rows, more than max_bad_rows = {}; first ones:\n  {}",
            path.display(),
            ds.skipped.len(),
            max_bad_rows,
            first.join("\n  ")
        );
    }
    let samples = evenly_spaced(ds.samples, limit);
    if samples.is_empty() {
        bail!("the {name} split `{}` has no rows", path.display());
    }
    Ok(Split {
        name,
        sha256: sha256_file(&path)?,
        path,
        samples,
        skipped: ds.skipped,
    })
}

/// Loads train, val and test.
pub fn load_all(dir: &Path, max_bad_rows: usize, limit: usize) -> Result<[Split; 3]> {
    Ok([
        load_split(dir, SPLITS[0], max_bad_rows, limit)?,
        load_split(dir, SPLITS[1], max_bad_rows, limit)?,
        load_split(dir, SPLITS[2], max_bad_rows, limit)?,
    ])
}

/// Checks the splits and summarises them; fails when a test URL also occurs in training.
pub fn check(splits: &[Split; 3]) -> Result<DataReport> {
    let train: HashSet<&str> = splits[0].samples.iter().map(|s| s.url.as_str()).collect();
    let overlap = splits[2]
        .samples
        .iter()
        .filter(|s| train.contains(s.url.as_str()))
        .count();
    let report = DataReport {
        splits: splits
            .iter()
            .map(|s| {
                let [l, p] = s.class_counts();
                SplitReport {
                    name: s.name.into(),
                    path: s
                        .path
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned(),
                    sha256: s.sha256.clone(),
                    rows: s.samples.len(),
                    legitimate: l,
                    phishing: p,
                    phishing_share: p as f64 / s.samples.len() as f64,
                    skipped: s.skipped.iter().map(|b| b.to_string()).collect(),
                }
            })
            .collect(),
        sources: Vec::new(),
        train_test_overlap: overlap,
    };
    if overlap > 0 {
        bail!("{overlap} test URLs also occur in the training split: the test metrics would be inflated");
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::SourceParams;

    #[test]
    fn the_host_drops_scheme_user_port_path_and_www() {
        assert_eq!(
            host_of("https://user@WWW.Example.com:8443/a?b#c"),
            "example.com"
        );
        assert_eq!(
            host_of("paypal.com.verify.tk/signin"),
            "paypal.com.verify.tk"
        );
        assert_eq!(host_of("http://[::1]:8080/x"), "[::1]");
    }

    /// One training URL, one validation URL (`http://b.tk/x`), one test URL (`https://c.org/`),
    /// written to and loaded from `dir`.
    fn three_splits(dir: &Path) -> [Split; 3] {
        std::fs::create_dir_all(dir).unwrap();
        let split = |name: &'static str, rows: &str| {
            std::fs::write(dir.join(format!("{name}.txt")), rows).unwrap();
            load_split(dir, name, 0, 0).unwrap()
        };
        [
            split("train", "legitimate\thttps://a.org/\n"),
            split("val", "phishing\thttp://b.tk/x\n"),
            split("test", "legitimate\thttps://c.org/\n"),
        ]
    }

    #[test]
    fn sources_join_train_or_val_by_host_and_never_repeat_val_or_test() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("data-sources-{}", std::process::id()));
        let mut splits = three_splits(&dir);
        let mut rows = String::from("phishing\thttp://b.tk/x\n");
        for i in 0..200 {
            rows += &format!("phishing\thttp://login{i}.example.tk/verify\n");
        }
        std::fs::write(dir.join("extra.txt"), rows)?;
        std::fs::write(dir.join("domains.txt"), "c.org\nd.org\n# comment\n")?;
        let sources = [
            SourceParams {
                file: dir.join("extra.txt"),
                kind: "urls".into(),
                max_rows: 0,
                skip_hosted: false,
            },
            SourceParams {
                file: dir.join("domains.txt"),
                kind: "domains".into(),
                max_rows: 0,
                skip_hosted: false,
            },
        ];
        let reports = add_sources(&mut splits, &sources, 0)?;
        // b.tk/x is in val, https://c.org/ in test: both left out.
        assert_eq!(reports[0].dropped_in_val_or_test, 1);
        assert_eq!(reports[1].dropped_in_val_or_test, 1);
        let [train, val] = [reports[0].train[1], reports[0].val[1]];
        assert_eq!(train + val, 200);
        // About one host in ten goes to validation.
        assert!((5..=40).contains(&val), "{val} of 200 in validation");
        assert_eq!(reports[1].train[0] + reports[1].val[0], 1);
        for s in &splits[1].samples[1..] {
            assert!(is_validation_host(&host_of(&s.url)), "{}", s.url);
        }
        assert_eq!(splits[0].samples.len() + splits[1].samples.len(), 2 + 201);
        std::fs::remove_dir_all(dir)?;
        Ok(())
    }

    #[test]
    fn a_source_keeps_at_most_max_rows_evenly_spaced() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("data-cap-{}", std::process::id()));
        let mut splits = three_splits(&dir);
        let rows: String = (0..100)
            .map(|i| format!("legitimate\thttps://s{i}.org/\n"))
            .collect();
        std::fs::write(dir.join("big.txt"), rows)?;
        let source = SourceParams {
            file: dir.join("big.txt"),
            kind: "urls".into(),
            max_rows: 10,
            skip_hosted: false,
        };
        let r = add_sources(&mut splits, &[source], 0)?;
        assert_eq!(r[0].train[0] + r[0].val[0], 10);
        let missing = SourceParams {
            file: dir.join("nope.txt"),
            kind: "urls".into(),
            max_rows: 0,
            skip_hosted: false,
        };
        let err = add_sources(&mut splits, &[missing], 0).unwrap_err();
        assert!(
            format!("{err:#}").contains("nope.txt` does not exist"),
            "{err:#}"
        );
        std::fs::remove_dir_all(dir)?;
        Ok(())
    }

    #[test]
    fn skip_hosted_leaves_out_rows_on_hosting_services_only() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("data-hosted-{}", std::process::id()));
        let mut splits = three_splits(&dir);
        let rows = "legitimate\thttps://my-project.github.io/docs/\n\
                    legitimate\thttp://someone.weebly.com/\n\
                    legitimate\thttps://www.example-project.org/\n\
                    legitimate\thttps://github.com/someone/project\n";
        std::fs::write(dir.join("hosted.txt"), rows)?;
        let mut source = SourceParams {
            file: dir.join("hosted.txt"),
            kind: "urls".into(),
            max_rows: 0,
            skip_hosted: true,
        };
        let r = add_sources(&mut splits, std::slice::from_ref(&source), 0)?;
        assert_eq!(r[0].hosted_left_out, 2);
        assert_eq!(r[0].train[0] + r[0].val[0], 2);
        let added: Vec<&str> = splits[0].samples[1..]
            .iter()
            .chain(&splits[1].samples[1..])
            .map(|s| s.url.as_str())
            .collect();
        assert!(
            added
                .iter()
                .all(|u| !u.contains("github.io") && !u.contains("weebly")),
            "{added:?}"
        );
        source.skip_hosted = false;
        let mut splits = three_splits(&dir);
        let r = add_sources(&mut splits, &[source], 0)?;
        assert_eq!((r[0].hosted_left_out, r[0].train[0] + r[0].val[0]), (0, 4));
        std::fs::remove_dir_all(dir)?;
        Ok(())
    }
}
