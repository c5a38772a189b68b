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
    assert_eq!(card["input"]["shape"], serde_json::json!(["batch", 200]));
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
