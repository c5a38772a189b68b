//! Dataset reader tests on real rows of the REMLA dataset and on crafted broken files.

use lib_ml::{parse_dataset_bytes, read_dataset, DatasetError, Label, ReadMode, RowError};

#[test]
fn malformed_row_in_real_remla_sample_is_reported_not_mislabelled() -> anyhow::Result<()> {
    let Some(dir) = test_support::shared_path("PHISHING_DATA_DIR", "data/phishing") else {
        return Ok(());
    };
    let path = dir.join("remla-samples/team10/val.txt");
    // Two records glued on one line: strict mode must stop there and name the line.
    let err = read_dataset(&path, ReadMode::Strict).unwrap_err();
    let DatasetError::BadRow { line, error, .. } = &err else {
        panic!("expected a bad row, got {err}");
    };
    assert_eq!((*line, error), (75, &RowError::FieldCount(3)));
    assert!(err.to_string().contains("team10/val.txt"), "{err}");
    assert!(err.to_string().contains("line 75"), "{err}");

    let ds = read_dataset(&path, ReadMode::SkipBadRows)?;
    assert_eq!(ds.skipped.len(), 1);
    assert_eq!(ds.skipped[0].line, 75);
    assert_eq!(ds.samples.len(), 99);
    assert!(ds.samples.iter().all(|s| !s.url.contains('\t')));
    Ok(())
}

#[test]
fn real_remla_samples_read_cleanly() -> anyhow::Result<()> {
    let Some(dir) = test_support::shared_path("PHISHING_DATA_DIR", "data/phishing") else {
        return Ok(());
    };
    for file in [
        "team3/sample_train.txt",
        "team3/sample_val.txt",
        "team10/train.txt",
    ] {
        let ds = read_dataset(dir.join("remla-samples").join(file), ReadMode::Strict)?;
        assert_eq!(ds.samples.len(), 100, "{file}");
        let [legit, phish] = ds.class_counts();
        assert!(legit > 0 && phish > 0, "{file}: both classes expected");
    }
    Ok(())
}

#[test]
fn row_errors_name_the_line_and_the_problem() {
    let cases: [(&[u8], usize, RowError); 5] = [
        (
            b"phishing\thttp://a\nlegitimate\n",
            2,
            RowError::FieldCount(1),
        ),
        (
            b"spam\thttp://a\n",
            1,
            RowError::Label(lib_ml::LabelError::UnknownName("spam".into())),
        ),
        (
            b"phishing\thttp://a\n\nphishing\t  \n",
            3,
            RowError::EmptyUrl,
        ),
        (b"phishing\thttp://\xff\n", 1, RowError::InvalidUtf8(16)),
        (b"phishing\ta\tb\n", 1, RowError::FieldCount(3)),
    ];
    for (bytes, want_line, want_error) in cases {
        match parse_dataset_bytes(bytes, "x.txt", ReadMode::Strict) {
            Err(DatasetError::BadRow { line, error, path }) => {
                assert_eq!((line, &error), (want_line, &want_error));
                assert_eq!(path.to_str(), Some("x.txt"));
            }
            other => panic!(
                "expected a bad row for {:?}, got {other:?}",
                String::from_utf8_lossy(bytes)
            ),
        }
    }
}

#[test]
fn field_count_message_gives_the_expected_format() {
    let err = parse_dataset_bytes(b"a\tb\tc", "val.txt", ReadMode::Strict).unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 1 of `val.txt` has 3 tab-separated fields, expected 2 (label<TAB>url)"
    );
}

#[test]
fn crlf_line_endings_and_blank_lines_are_accepted() -> anyhow::Result<()> {
    let ds = parse_dataset_bytes(
        b"phishing\thttp://a.tk\r\n\r\nlegitimate\thttp://b.com\r\n",
        "x",
        ReadMode::Strict,
    )?;
    assert_eq!(ds.samples.len(), 2);
    assert_eq!(ds.samples[0].url, "http://a.tk");
    assert_eq!(ds.samples[1].label, Label::Legitimate);
    Ok(())
}

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    let err = read_dataset("/no/such/train.txt", ReadMode::Strict).unwrap_err();
    assert!(matches!(err, DatasetError::Io { .. }));
    assert!(err.to_string().contains("/no/such/train.txt"));
}
