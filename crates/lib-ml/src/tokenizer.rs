//! The character tokenizer with the original Keras semantics.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// The out-of-vocabulary token, always at index [`OOV_ID`].
pub const OOV_TOKEN: &str = "-n-";
/// The id of every character the tokenizer was not fitted on.
pub const OOV_ID: u32 = 1;
/// The id used for padding.
pub const PAD_ID: u32 = 0;
/// The sequence length of the original model.
pub const DEFAULT_MAX_LEN: usize = 200;
/// The longest sequence a tokenizer file may ask for. Every encoded URL takes `max_len` ids, so
/// a file with an absurd `max_len` is refused when loaded instead of exhausting memory later.
pub const MAX_SEQUENCE_LEN: usize = 1 << 16;

/// The `format` field of a tokenizer file.
const FORMAT: &str = "phishing-char-tokenizer";
/// The newest `format_version` this crate reads and the one it writes.
const FORMAT_VERSION: u32 = 1;

/// Errors from loading or saving a tokenizer.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// Occurs when a tokenizer file cannot be read or written.
    #[error("failed to access tokenizer file `{path}`")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Occurs when the JSON is malformed or lacks a field.
    #[error("invalid tokenizer JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Occurs when the file is JSON but not a tokenizer of this project.
    #[error("not a tokenizer file: `format` is `{0}`, expected `phishing-char-tokenizer`")]
    WrongFormat(String),
    /// Occurs when the file was written by a newer, incompatible version.
    #[error("tokenizer format version {found} is not supported (this build reads version {supported}); upgrade lib-ml")]
    UnsupportedVersion {
        /// The version in the file.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// Occurs when the vocabulary breaks an invariant (OOV first, single characters, no duplicates).
    #[error("invalid tokenizer vocabulary: {0}")]
    InvalidVocabulary(String),
}

/// A character-level tokenizer: `Tokenizer(lower=True, char_level=True, oov_token='-n-')` followed by
/// `pad_sequences(maxlen)` with Keras defaults.
///
/// Ids: 0 is padding, 1 is the OOV token `-n-`, then characters by descending frequency in the texts
/// it was fitted on (ties in order of first appearance).
#[derive(Debug, Clone, PartialEq)]
pub struct Tokenizer {
    /// Characters in id order starting at id 2.
    chars: Vec<char>,
    /// Ids of ASCII characters, [`OOV_ID`] where unknown: the fast path, URLs are nearly all ASCII.
    ascii: [u32; 128],
    /// Ids of non-ASCII characters.
    other: HashMap<char, u32>,
    max_len: usize,
}

/// The JSON form of a tokenizer (the vocabulary file that ships beside the model).
#[derive(Serialize, Deserialize)]
struct TokenizerFile {
    format: String,
    format_version: u32,
    lower: bool,
    char_level: bool,
    oov_token: String,
    max_len: usize,
    padding: String,
    truncating: String,
    /// Tokens in id order, starting at id 1 (the OOV token).
    vocabulary: Vec<String>,
}

impl Tokenizer {
    /// Fits a tokenizer on `texts` with the default sequence length (200).
    ///
    /// ```
    /// let t = lib_ml::Tokenizer::fit(["aab", "bc"]);
    /// // `a` and `b` both occur twice; `a` came first.
    /// assert_eq!(t.id_of('a'), Some(2));
    /// assert_eq!(t.id_of('b'), Some(3));
    /// assert_eq!(t.id_of('c'), Some(4));
    /// ```
    pub fn fit<I, S>(texts: I) -> Tokenizer
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Tokenizer::fit_with_max_len(texts, DEFAULT_MAX_LEN)
    }

    /// Fits a tokenizer on `texts`, producing sequences of `max_len` ids.
    ///
    /// # Panics
    /// When `max_len` is 0.
    pub fn fit_with_max_len<I, S>(texts: I, max_len: usize) -> Tokenizer
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        assert!(max_len > 0, "max_len must be positive");
        // (count, first appearance) per character, like Keras' OrderedDict of word counts.
        let mut counts: HashMap<char, (u64, usize)> = HashMap::new();
        for text in texts {
            for c in lowercase(text.as_ref()).chars() {
                let next = counts.len();
                counts.entry(c).or_insert((0, next)).0 += 1;
            }
        }
        let mut chars: Vec<(char, u64, usize)> = counts
            .into_iter()
            .map(|(c, (n, first))| (c, n, first))
            .collect();
        chars.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
        Tokenizer::from_chars(chars.into_iter().map(|(c, _, _)| c).collect(), max_len)
    }

    fn from_chars(chars: Vec<char>, max_len: usize) -> Tokenizer {
        let mut ascii = [OOV_ID; 128];
        let mut other = HashMap::new();
        for (i, &c) in chars.iter().enumerate() {
            let id = i as u32 + 2;
            if c.is_ascii() {
                ascii[c as usize] = id;
            } else {
                other.insert(c, id);
            }
        }
        Tokenizer {
            chars,
            ascii,
            other,
            max_len,
        }
    }

    /// The length of every encoded sequence.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The number of ids in use, padding and OOV included: the embedding table needs this many rows.
    ///
    /// ```
    /// assert_eq!(lib_ml::Tokenizer::fit(["ab"]).vocab_size(), 4); // pad, OOV, a, b
    /// ```
    pub fn vocab_size(&self) -> usize {
        self.chars.len() + 2
    }

    /// The id of a character (after lowercasing it), `None` when the tokenizer has not seen it.
    pub fn id_of(&self, c: char) -> Option<u32> {
        let id = if c.is_ascii() {
            self.ascii[c.to_ascii_lowercase() as usize]
        } else {
            let mut lower = c.to_lowercase();
            match (lower.next(), lower.next()) {
                (Some(l), None) if l.is_ascii() => self.ascii[l as usize],
                (Some(l), None) => *self.other.get(&l).unwrap_or(&OOV_ID),
                _ => OOV_ID,
            }
        };
        (id != OOV_ID).then_some(id)
    }

    /// The token for an id: `None` for padding and unknown ids.
    pub fn token_of(&self, id: u32) -> Option<String> {
        match id {
            PAD_ID => None,
            OOV_ID => Some(OOV_TOKEN.to_string()),
            id => self.chars.get(id as usize - 2).map(|c| c.to_string()),
        }
    }

    /// Encodes one text into a new vector of exactly [`max_len`](Self::max_len) ids.
    ///
    /// ```
    /// let t = lib_ml::Tokenizer::fit_with_max_len(["abc"], 4);
    /// assert_eq!(t.encode("AB"), vec![0, 0, 2, 3]);     // pre-padding
    /// assert_eq!(t.encode("abcab"), vec![3, 4, 2, 3]);  // pre-truncation keeps the end
    /// assert_eq!(t.encode("x"), vec![0, 0, 0, 1]);      // unknown character
    /// ```
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = vec![PAD_ID; self.max_len];
        self.encode_into(text, &mut out);
        out
    }

    /// Encodes one text into `out`, which must hold exactly [`max_len`](Self::max_len) ids.
    ///
    /// ASCII text (nearly every URL) is encoded without allocating.
    ///
    /// # Panics
    /// When `out.len() != self.max_len()`.
    pub fn encode_into(&self, text: &str, out: &mut [u32]) {
        assert_eq!(
            out.len(),
            self.max_len,
            "output slice must hold max_len ids"
        );
        if text.is_ascii() {
            let bytes = text.as_bytes();
            let kept = &bytes[bytes.len().saturating_sub(self.max_len)..];
            let (pad, body) = out.split_at_mut(self.max_len - kept.len());
            pad.fill(PAD_ID);
            for (slot, b) in body.iter_mut().zip(kept) {
                *slot = self.ascii[b.to_ascii_lowercase() as usize];
            }
        } else {
            // Lowercasing a whole string (as Python's `str.lower`) can change its length and is
            // context-sensitive (final sigma), so it is done before truncation.
            let lowered = lowercase(text);
            let n = lowered.chars().count();
            let kept = n.min(self.max_len);
            let (pad, body) = out.split_at_mut(self.max_len - kept);
            pad.fill(PAD_ID);
            for (slot, c) in body.iter_mut().zip(lowered.chars().skip(n - kept)) {
                *slot = if c.is_ascii() {
                    self.ascii[c as usize]
                } else {
                    *self.other.get(&c).unwrap_or(&OOV_ID)
                };
            }
        }
    }

    /// Encodes a batch into a flat row-major buffer of `texts.len() * max_len` ids, ready to become
    /// a `[N, max_len]` tensor. `out` is cleared first and reused, so a caller can keep one buffer.
    ///
    /// ```
    /// let t = lib_ml::Tokenizer::fit_with_max_len(["ab"], 3);
    /// let mut buf = Vec::new();
    /// t.encode_batch(&["a", "b"], &mut buf);
    /// assert_eq!(buf, vec![0, 0, 2, 0, 0, 3]);
    /// ```
    pub fn encode_batch<S: AsRef<str>>(&self, texts: &[S], out: &mut Vec<u32>) {
        out.clear();
        out.resize(texts.len() * self.max_len, PAD_ID);
        for (text, row) in texts.iter().zip(out.chunks_exact_mut(self.max_len)) {
            self.encode_into(text.as_ref(), row);
        }
    }

    /// Serializes the tokenizer as JSON (the vocabulary file shipped with the model).
    pub fn to_json(&self) -> String {
        let file = TokenizerFile {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            lower: true,
            char_level: true,
            oov_token: OOV_TOKEN.into(),
            max_len: self.max_len,
            padding: "pre".into(),
            truncating: "pre".into(),
            vocabulary: std::iter::once(OOV_TOKEN.to_string())
                .chain(self.chars.iter().map(|c| c.to_string()))
                .collect(),
        };
        serde_json::to_string_pretty(&file).expect("a tokenizer always serializes")
    }

    /// Reads a tokenizer from JSON written by [`to_json`](Self::to_json), checking its format,
    /// version and vocabulary.
    ///
    /// ```
    /// let t = lib_ml::Tokenizer::fit(["abc"]);
    /// assert_eq!(lib_ml::Tokenizer::from_json(&t.to_json())?, t);
    /// assert!(lib_ml::Tokenizer::from_json("{}").is_err());
    /// # Ok::<(), lib_ml::TokenizerError>(())
    /// ```
    pub fn from_json(json: &str) -> Result<Tokenizer, TokenizerError> {
        // Check format and version before the rest, so a newer file gets the helpful error.
        #[derive(Deserialize)]
        struct Header {
            format: String,
            format_version: u32,
        }
        let header: Header = serde_json::from_str(json)?;
        if header.format != FORMAT {
            return Err(TokenizerError::WrongFormat(header.format));
        }
        if header.format_version != FORMAT_VERSION {
            return Err(TokenizerError::UnsupportedVersion {
                found: header.format_version,
                supported: FORMAT_VERSION,
            });
        }
        let file: TokenizerFile = serde_json::from_str(json)?;
        let invalid = |m: String| Err(TokenizerError::InvalidVocabulary(m));
        if !file.lower || !file.char_level || file.padding != "pre" || file.truncating != "pre" {
            return invalid(
                "only lower=true, char_level=true, padding=pre, truncating=pre are supported"
                    .into(),
            );
        }
        if file.max_len == 0 || file.max_len > MAX_SEQUENCE_LEN {
            return invalid(format!(
                "`max_len` is {}; it must be 1 to {MAX_SEQUENCE_LEN}",
                file.max_len
            ));
        }
        if file.oov_token != OOV_TOKEN
            || file.vocabulary.first().map(String::as_str) != Some(OOV_TOKEN)
        {
            return invalid(format!(
                "the first token must be the OOV token `{OOV_TOKEN}`"
            ));
        }
        let mut chars = Vec::with_capacity(file.vocabulary.len() - 1);
        let mut seen = std::collections::HashSet::new();
        for (i, token) in file.vocabulary.iter().enumerate().skip(1) {
            let mut it = token.chars();
            let c = match (it.next(), it.next()) {
                (Some(c), None) => c,
                _ => {
                    return invalid(format!(
                        "token `{token}` at id {} is not one character",
                        i + 1
                    ))
                }
            };
            if !seen.insert(c) {
                return invalid(format!("token `{token}` appears twice"));
            }
            chars.push(c);
        }
        Ok(Tokenizer::from_chars(chars, file.max_len))
    }

    /// Reads a tokenizer file.
    pub fn load(path: impl AsRef<Path>) -> Result<Tokenizer, TokenizerError> {
        let path = path.as_ref();
        let json = std::fs::read_to_string(path).map_err(|source| TokenizerError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Tokenizer::from_json(&json)
    }

    /// Writes the tokenizer file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), TokenizerError> {
        let path = path.as_ref();
        std::fs::write(path, self.to_json() + "\n").map_err(|source| TokenizerError::Io {
            path: path.display().to_string(),
            source,
        })
    }
}

/// Lowercases like Python's `str.lower` (full Unicode mapping, final sigma included).
fn lowercase(text: &str) -> std::borrow::Cow<'_, str> {
    if text.is_ascii() && !text.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(text.to_lowercase())
    }
}
