//! Preprocessing shared by model training (native) and the model-service (wasm), so both turn a URL
//! into exactly the same ids.
//!
//! It reproduces the original Keras pipeline: `Tokenizer(lower=True, char_level=True,
//! oov_token='-n-')` followed by `pad_sequences(maxlen=200)` with its defaults (pre-padding and
//! pre-truncation), the label encoding (`legitimate` = 0, `phishing` = 1) and a reader for
//! `label<TAB>url` dataset files.
//!
//! ```
//! use lib_ml::{Label, Tokenizer};
//!
//! let tokenizer = Tokenizer::fit(["http://a.com", "https://b.org"]);
//! let ids = tokenizer.encode("HTTP://x.com");
//! assert_eq!(ids.len(), 200);
//! assert_eq!(ids[0], 0); // short URLs are padded at the front
//! assert_eq!(ids[199], tokenizer.id_of('m').unwrap());
//! assert_eq!(ids[195], 1); // `x` was never seen: the out-of-vocabulary id
//! assert_eq!("phishing".parse::<Label>()?, Label::Phishing);
//! # Ok::<(), lib_ml::LabelError>(())
//! ```
#![deny(missing_docs)]

pub mod analysis;
mod dataset;
pub mod domain;
pub mod encoder;
pub mod explain;
mod label;
pub mod ngrams;
mod tokenizer;

pub use dataset::{
    class_counts, parse_dataset_bytes, read_dataset, BadRow, Dataset, DatasetError, ReadMode,
    RowError, Sample,
};
pub use label::{Label, LabelError};
pub use tokenizer::{
    Tokenizer, TokenizerError, DEFAULT_MAX_LEN, MAX_SEQUENCE_LEN, OOV_ID, OOV_TOKEN, PAD_ID,
};
