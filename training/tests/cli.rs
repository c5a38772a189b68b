//! The CLI end to end on a tiny configuration, and its errors on bad input.

use std::path::PathBuf;
use std::process::{Command, Output};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_model-training"))
        .args(args)
        .env_remove("PHISHING_DATA_DIR")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("model-training-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A data dir with `rows` good rows per split, plus `extra` appended to train.txt.
fn data_dir(name: &str, rows: usize, extra: &str) -> PathBuf {
    let d = scratch(name);
    for split in ["train", "val", "test"] {
        let mut text = String::new();
        for i in 0..rows {
            let (label, url) = if i % 2 == 0 {
                (
                    "phishing",
                    format!("http://login-{split}{i}.verify.tk/account"),
                )
            } else {
                ("legitimate", format!("https://www.{split}{i}.org/about"))
            };
            text += &format!("{label}\t{url}\n");
        }
        if split == "train" {
            text += extra;
        }
        std::fs::write(d.join(format!("{split}.txt")), text).unwrap();
    }
    d
}

/// Runs the `check` stage with the tiny params on `data`, writing to `out`.
fn check(data: &str, out: &str) -> Output {
    cli(&[
        "--params",
        &tiny_params(),
        "--data-dir",
        data,
        "--out",
        out,
        "check",
    ])
}

fn tiny_params() -> String {
    manifest_dir()
        .join("params-tiny.toml")
        .display()
        .to_string()
}

#[test]
fn tiny_pipeline_writes_every_artifact() -> anyhow::Result<()> {
    let Some(data) = test_support::shared_path("PHISHING_DATA_DIR", "data/phishing") else {
        return Ok(());
    };
    let out = scratch("all");
    // A log left by an earlier model: training starts it over.
    std::fs::write(out.join("training.log"), "a line of an earlier model\n")?;
    let o = cli(&[
        "--params",
        &tiny_params(),
        "--data-dir",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
        "all",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "data-report.json",
        "weights.safetensors",
        "tokenizer.json",
        "training.json",
        "training.log",
        "metrics.json",
        "model.onnx",
        "model.nnef.tar",
        "model-card.json",
        "plots/history.svg",
        "plots/roc.svg",
        "plots/confusion-matrix.svg",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("model-card.json"))?)?;
    assert_eq!(card["name"], "phishing-char-cnn");
    assert_eq!(
        card["inputs"][0]["shape"],
        serde_json::json!(["batch", 200])
    );
    assert_eq!(card["preprocessing"], serde_json::json!(["tokenizer.json"]));
    assert_eq!(card["labels"]["1"], "phishing");
    assert_eq!(
        card["data"]["train"]["sha256"].as_str().map(str::len),
        Some(64)
    );
    assert!(card["export_parity"]["max_abs_diff"].as_f64().unwrap() <= 1e-4);
    for split in ["train", "val", "test"] {
        let auc = card["metrics"][split]["roc_auc"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&auc), "{split}: {auc}");
    }
    let log = std::fs::read_to_string(out.join("training.log"))?;
    assert!(log.contains("epoch  1:"), "{log}");
    assert!(!log.contains("an earlier model"), "{log}");

    // The evaluation protocol: both models on the test split and every held-out source.
    let Some(extra) = test_support::shared_path("PHISHING_EXTRA_DIR", "data/phishing-extra") else {
        return Ok(());
    };
    let o = cli(&[
        "--params",
        &tiny_params(),
        "--data-dir",
        data.to_str().unwrap(),
        "--extra-dir",
        extra.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
        "holdout",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The protocol adds to the log of the model it evaluates.
    let log = std::fs::read_to_string(out.join("training.log"))?;
    assert!(
        log.contains("epoch  1:") && log.contains("n-gram baseline:"),
        "{log}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("holdout.json"))?)?;
    let sets: Vec<&str> = report["sets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        sets,
        [
            "test",
            "hannousse-2021",
            "jpcert-2025",
            "phishtank-2020-2021",
            "remla-samples"
        ]
    );
    let models = report["models"].as_object().unwrap();
    assert_eq!(models.len(), 2, "{:?}", models.keys());
    for (model, per_set) in models {
        // Both labels: ranking and calibration figures; one label: detection only.
        assert!(
            per_set["hannousse-2021"]["roc_auc"].as_f64().is_some(),
            "{model}"
        );
        assert!(
            per_set["hannousse-2021"]["ece"].as_f64().is_some(),
            "{model}"
        );
        assert!(per_set["jpcert-2025"]["roc_auc"].is_null(), "{model}");
        let det = per_set["jpcert-2025"]["detection_rate"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&det), "{model}: {det}");
    }
    // The baseline is a real model: trained on the tiny run's 600 rows it already ranks the test
    // split far better than chance.
    let auc = models["ngram-baseline"]["test"]["roc_auc"]
        .as_f64()
        .unwrap();
    assert!(auc > 0.85, "n-gram baseline test ROC-AUC {auc}");
    assert!(out.join("plots/reliability-hannousse-2021.svg").is_file());
    std::fs::remove_dir_all(out)?;
    Ok(())
}

#[test]
fn stages_run_one_by_one() {
    let data = data_dir("stages", 40, "");
    let out = scratch("stages-out");
    let common = [
        "--params",
        &tiny_params(),
        "--data-dir",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ];
    let run = |stage: &str| cli(&[&common[..], &[stage]].concat());
    // Evaluating before training names the missing stage.
    let early = run("evaluate");
    assert!(!early.status.success());
    assert!(
        stderr(&early).contains("run the `train` stage first"),
        "{}",
        stderr(&early)
    );
    for stage in ["check", "train", "evaluate", "export"] {
        let o = run(stage);
        assert!(o.status.success(), "{stage}: {}", stderr(&o));
    }
    assert!(out.join("model-card.json").is_file());
}

#[test]
fn missing_data_directory_is_a_clear_error() {
    let o = check("/no/such/dir", scratch("nodata").to_str().unwrap());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("data directory `/no/such/dir` does not exist"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn missing_split_file_is_named() {
    let data = data_dir("nosplit", 10, "");
    std::fs::remove_file(data.join("val.txt")).unwrap();
    let o = check(
        data.to_str().unwrap(),
        scratch("nosplit-out").to_str().unwrap(),
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("missing val split"), "{}", stderr(&o));
}

#[test]
fn too_many_malformed_rows_fail_with_line_numbers() {
    // params-tiny allows 10 bad rows; 11 fail the run, and the report names lines.
    let bad: String = (0..11)
        .map(|i| format!("phishing\thttp://x{i}\textra\n"))
        .collect();
    let data = data_dir("bad", 10, &bad);
    let o = check(data.to_str().unwrap(), scratch("bad-out").to_str().unwrap());
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("11 malformed rows, more than max_bad_rows = 10"),
        "{e}"
    );
    assert!(e.contains("line 11 has 3 tab-separated fields"), "{e}");
}

#[test]
fn a_few_malformed_rows_are_skipped_and_reported() {
    let data = data_dir("fewbad", 10, "spam\thttp://x\n");
    let out = scratch("fewbad-out");
    let o = check(data.to_str().unwrap(), out.to_str().unwrap());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("skipped line 11 unknown label `spam`"),
        "{}",
        stderr(&o)
    );
    let report = std::fs::read_to_string(out.join("data-report.json")).unwrap();
    assert!(report.contains("unknown label `spam`"));
}

#[test]
fn empty_split_is_an_error() {
    let data = data_dir("empty", 10, "");
    std::fs::write(data.join("test.txt"), "").unwrap();
    let o = check(
        data.to_str().unwrap(),
        scratch("empty-out").to_str().unwrap(),
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("the test split"), "{}", stderr(&o));
    assert!(stderr(&o).contains("has no rows"), "{}", stderr(&o));
}

#[test]
fn unwritable_output_is_an_error() {
    let data = data_dir("unwritable", 10, "");
    let o = check(data.to_str().unwrap(), "/proc/version/out");
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("cannot create output directory `/proc/version/out`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bad_params_file_is_named() {
    let o = cli(&["--params", "/no/params.toml", "check"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("failed to read params file `/no/params.toml`"));
}

/// The released architecture end to end on a tiny run: `ngram-url` trains, exports an ONNX graph
/// tract agrees with, writes the preprocessing files the model-service builds in, scores URLs
/// from the command line, and the evaluation protocol adds the ablation without URL signals.
#[test]
fn tiny_ngram_pipeline_exports_what_the_service_reads() -> anyhow::Result<()> {
    let Some(data) = test_support::shared_path("PHISHING_DATA_DIR", "data/phishing") else {
        return Ok(());
    };
    let Some(extra) = test_support::shared_path("PHISHING_EXTRA_DIR", "data/phishing-extra") else {
        return Ok(());
    };
    let out = scratch("ngram");
    let params = out.join("params.toml");
    std::fs::write(
        &params,
        format!(
            r#"[data]
dir = "{data}"
max_bad_rows = 10
limit = 600

[model]
architecture = "ngram-url"
version = "0.0.0-tiny-ngram"

[ngram]
bits = 16
min_n = 1
max_n = 4
max_chars = 200
signals = true
known_namespace = true
known_domains = "{extra}/tranco-top100k-domains.txt"
known_tiers = [1000, 10000]
brand_pool = 2000
brand_min_rows = 2
epochs = 5
learning_rate = 0.2
l2 = 1e-7
calibrate = true
weights = "codebook8"

[train]
epochs = 1
batch_size = 128
learning_rate = 0.001
patience = 1
seed = 42
threshold = 0.5
"#,
            data = data.display(),
            extra = extra.display()
        ),
    )?;
    let params = params.to_str().unwrap().to_string();
    let o = cli(&[
        "--params",
        &params,
        "--out",
        out.to_str().unwrap(),
        "--quiet",
        "all",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "features.json",
        "known-domains.bin",
        "brands.txt",
        "ngram-weights.bin",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("model-card.json"))?)?;
    assert_eq!(card["name"], "phishing-url-ngram");
    assert_eq!(card["inputs"][0]["name"], "feature_ids");
    assert_eq!(card["inputs"][1]["dtype"], "float32");
    assert_eq!(
        card["preprocessing"],
        serde_json::json!(["features.json", "known-domains.bin", "brands.txt"])
    );
    assert!(card["url_signals"]["known_domains"].as_u64().unwrap() > 9000);
    assert!(card["export_parity"]["max_abs_diff"].as_f64().unwrap() <= 1e-4);
    assert!(card["training"]["calibration"].is_array());
    // One byte a weight: the weights file holds the codes, 256 values and the bias, and the
    // export check above ran the graph that gathers codes.
    assert_eq!(card["training"]["quantization"]["levels"], 256);
    // Ids: 2^16 buckets, the signals, the pad.
    let ids = (1usize << 16) + card["url_signals"]["signals"].as_array().unwrap().len() + 1;
    assert_eq!(
        std::fs::metadata(out.join("ngram-weights.bin"))?.len() as usize,
        ids + 4 * 257
    );

    // `score`: one line per URL with the real site and the signals.
    let mut child = Command::new(env!("CARGO_BIN_EXE_model-training"))
        .args(["--out", out.to_str().unwrap(), "score"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"https://appleid.apple.com.secure-id-check.com/\nnot a url\n")?;
    let o = child.wait_with_output()?;
    assert!(o.status.success());
    let text = String::from_utf8(o.stdout)?;
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0][1], "secure-id-check.com", "{text}");
    assert!(lines[0][2].contains("subdomains_3_plus"), "{text}");
    assert_eq!((lines[1][1], lines[1][2]), ("-", "unparsable"), "{text}");

    let o = cli(&[
        "--params",
        &params,
        "--extra-dir",
        extra.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
        "holdout",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The protocol adds to the log of the model it evaluates.
    let log = std::fs::read_to_string(out.join("training.log"))?;
    assert!(
        log.contains("epoch  1:") && log.contains("n-gram baseline:"),
        "{log}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("holdout.json"))?)?;
    let models: Vec<&String> = report["models"].as_object().unwrap().keys().collect();
    assert_eq!(
        models,
        [
            "ngram-baseline",
            "url-ngram 0.0.0-tiny-ngram",
            "url-ngram 0.0.0-tiny-ngram without url signals"
        ]
    );
    std::fs::remove_dir_all(out)?;
    Ok(())
}
