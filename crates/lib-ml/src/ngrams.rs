//! Hashed character n-grams: a URL as the counts of its character 1- to 5-grams, hashed into
//! 2^bits buckets (the hashing trick), scaled to unit length.
//!
//! The URL is trimmed, lower-cased and framed by `^` and `$`, so its two ends are n-grams of
//! their own. The hash is FNV-1a over the n-gram's bytes mixed with its length: stable across
//! platforms, builds and runs.
//!
//! ```
//! use lib_ml::ngrams::{ngram_features, NgramSpec};
//!
//! let spec = NgramSpec { bits: 18, min_n: 1, max_n: 5, max_chars: 400 };
//! let f = ngram_features("http://a.com", &spec);
//! let norm: f32 = f.iter().map(|(_, v)| v * v).sum();
//! assert!((norm - 1.0).abs() < 1e-5);
//! assert!(f.iter().all(|&(i, _)| i < 1 << 18));
//! ```

use serde::{Deserialize, Serialize};

/// Which n-grams, into how many buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NgramSpec {
    /// log2 of the number of buckets.
    pub bits: u32,
    /// Shortest n-gram.
    pub min_n: usize,
    /// Longest n-gram.
    pub max_n: usize,
    /// Characters of the URL used, from its start (0 = all).
    pub max_chars: usize,
}

impl NgramSpec {
    /// The most distinct buckets one URL can fill.
    pub fn max_features(&self) -> usize {
        let framed = self.max_chars + 2;
        (self.min_n..=self.max_n)
            .map(|n| framed.saturating_sub(n - 1))
            .sum()
    }

    /// Whether the numbers make sense (bits 8..=26, 1 <= min_n <= max_n <= 8).
    pub fn validate(&self) -> Result<(), String> {
        if !(8..=26).contains(&self.bits) {
            return Err(format!("n-gram bits {} is outside 8..=26", self.bits));
        }
        if self.min_n == 0 || self.min_n > self.max_n || self.max_n > 8 {
            return Err(format!(
                "n-gram range {}..={} is invalid (1 <= min <= max <= 8)",
                self.min_n, self.max_n
            ));
        }
        Ok(())
    }
}

/// FNV-1a, 64 bits.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The bucket of one n-gram.
pub fn bucket(gram: &[u8], bits: u32) -> u32 {
    salted_bucket(gram, bits, 0)
}

/// The bucket of one n-gram in namespace `salt` (0 is the plain one): the same n-gram lands in
/// another bucket in every namespace.
pub fn salted_bucket(gram: &[u8], bits: u32, salt: u64) -> u32 {
    let mask = (1u64 << bits) - 1;
    // The length goes into the hash so a 2-gram and a 3-gram never share a bucket by design.
    let h = fnv1a(gram) ^ (gram.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ((h ^ salt.wrapping_mul(0xd6e8_feb8_6659_fd93)).wrapping_mul(if salt == 0 {
        1
    } else {
        0xff51_afd7_ed55_8ccd
    }) & mask) as u32
}

/// The sparse, unit-length n-gram vector of `url`: (bucket, value) pairs, buckets sorted and
/// distinct.
pub fn ngram_features(url: &str, spec: &NgramSpec) -> Vec<(u32, f32)> {
    salted_ngram_features(url, spec, 0)
}

/// The text the n-grams of `url` are read from: trimmed, lower-cased, cut at a character
/// boundary at or before `max_chars` bytes.
pub fn read_text(url: &str, spec: &NgramSpec) -> String {
    let mut lower = url.trim().to_lowercase();
    if spec.max_chars > 0 && lower.len() > spec.max_chars {
        let mut cut = spec.max_chars;
        while !lower.is_char_boundary(cut) {
            cut -= 1;
        }
        lower.truncate(cut);
    }
    lower
}

/// Calls `each(bucket, start, n)` for every n-gram of `text` (as [`read_text`] gives it) framed
/// by `^` and `$`: its bucket in namespace `salt`, its start in the framed text, its length;
/// shortest n first.
pub fn for_each_window(
    text: &str,
    spec: &NgramSpec,
    salt: u64,
    mut each: impl FnMut(u32, usize, usize),
) {
    let framed: Vec<u8> = std::iter::once(b'^')
        .chain(text.bytes())
        .chain(std::iter::once(b'$'))
        .collect();
    for n in spec.min_n..=spec.max_n {
        for (start, w) in framed.windows(n).enumerate() {
            each(salted_bucket(w, spec.bits, salt), start, n);
        }
    }
}

/// [`ngram_features`] in namespace `salt` (see [`salted_bucket`]).
pub fn salted_ngram_features(url: &str, spec: &NgramSpec, salt: u64) -> Vec<(u32, f32)> {
    text_ngram_features(&read_text(url, spec), spec, salt)
}

/// The unit-length n-gram vector of `text` (as [`read_text`] gives it, or a tail of that) in
/// namespace `salt`.
pub fn text_ngram_features(text: &str, spec: &NgramSpec, salt: u64) -> Vec<(u32, f32)> {
    let mut idx: Vec<u32> = Vec::with_capacity((text.len() + 2) * (spec.max_n - spec.min_n + 1));
    for_each_window(text, spec, salt, |b, _, _| idx.push(b));
    idx.sort_unstable();
    let mut out: Vec<(u32, f32)> = Vec::with_capacity(idx.len());
    for i in idx {
        match out.last_mut() {
            Some((j, c)) if *j == i => *c += 1.0,
            _ => out.push((i, 1.0)),
        }
    }
    let norm = out
        .iter()
        .map(|(_, c)| c * c)
        .sum::<f32>()
        .sqrt()
        .max(1e-12);
    for (_, c) in &mut out {
        *c /= norm;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: NgramSpec = NgramSpec {
        bits: 20,
        min_n: 1,
        max_n: 5,
        max_chars: 0,
    };

    #[test]
    fn features_are_sorted_distinct_unit_length_and_case_blind() {
        let f = ngram_features("http://a.com/aa", &SPEC);
        assert!(f.windows(2).all(|w| w[0].0 < w[1].0));
        let norm: f32 = f.iter().map(|(_, v)| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-5, "found {norm} vs expected 1");
        assert_eq!(ngram_features("  HTTP://A.com/aa", &SPEC), f);
    }

    #[test]
    fn max_chars_cuts_at_a_character_boundary_and_bounds_the_count() {
        let spec = NgramSpec {
            max_chars: 10,
            ..SPEC
        };
        let long = format!("http://{}.com", "é".repeat(50));
        let f = ngram_features(&long, &spec);
        assert!(f.len() <= spec.max_features(), "{}", f.len());
        assert_eq!(spec.max_features(), 12 + 11 + 10 + 9 + 8);
        assert_eq!(
            ngram_features(&long, &spec),
            ngram_features(&long[..long.len() - 2], &spec)
        );
    }

    #[test]
    fn the_hash_is_pinned() {
        // Changing the hash silently would change every trained model's inputs.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(bucket(b"^http", 20), bucket(b"^http", 26) & 0xf_ffff);
    }
}
