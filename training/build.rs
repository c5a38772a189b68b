//! Records the versions of the ML frameworks in use (from Cargo.lock) for the model card.
fn main() {
    let lock = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    for (krate, var) in [
        ("candle-core", "CANDLE_VERSION"),
        ("tract-onnx", "TRACT_VERSION"),
    ] {
        let needle = format!("name = \"{krate}\"\nversion = \"");
        let v = text
            .find(&needle)
            .map(|i| {
                text[i + needle.len()..]
                    .split('"')
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .unwrap_or_else(|| "unknown".into());
        println!("cargo:rustc-env={var}={v}");
    }
}
