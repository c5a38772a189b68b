//! The label encoding: `legitimate` = 0, `phishing` = 1 (as the original `LabelEncoder` fitted on
//! the two class names, which sorts them alphabetically).

use std::fmt;
use std::str::FromStr;

/// The class of a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Label {
    /// A legitimate URL, encoded as 0.
    Legitimate,
    /// A phishing URL, encoded as 1.
    Phishing,
}

/// Errors from decoding a label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    /// Occurs when a label name is neither `legitimate` nor `phishing`.
    #[error("unknown label `{0}`, expected `legitimate` or `phishing`")]
    UnknownName(String),
    /// Occurs when a class index is neither 0 nor 1.
    #[error("unknown label index {0}, expected 0 (legitimate) or 1 (phishing)")]
    UnknownIndex(u32),
}

impl Label {
    /// Both labels, in index order.
    pub const ALL: [Label; 2] = [Label::Legitimate, Label::Phishing];

    /// The class index the model uses: 0 for legitimate, 1 for phishing.
    ///
    /// ```
    /// assert_eq!(lib_ml::Label::Phishing.index(), 1);
    /// ```
    pub fn index(self) -> u32 {
        match self {
            Label::Legitimate => 0,
            Label::Phishing => 1,
        }
    }

    /// The label for a class index.
    ///
    /// ```
    /// assert_eq!(lib_ml::Label::from_index(0), Ok(lib_ml::Label::Legitimate));
    /// assert!(lib_ml::Label::from_index(2).is_err());
    /// ```
    pub fn from_index(index: u32) -> Result<Label, LabelError> {
        match index {
            0 => Ok(Label::Legitimate),
            1 => Ok(Label::Phishing),
            other => Err(LabelError::UnknownIndex(other)),
        }
    }

    /// The label a sigmoid score stands for: phishing when `score >= threshold`.
    ///
    /// ```
    /// use lib_ml::Label;
    /// assert_eq!(Label::from_score(0.7, 0.5), Label::Phishing);
    /// assert_eq!(Label::from_score(0.2, 0.5), Label::Legitimate);
    /// ```
    pub fn from_score(score: f32, threshold: f32) -> Label {
        if score >= threshold {
            Label::Phishing
        } else {
            Label::Legitimate
        }
    }

    /// The label's name as it appears in dataset files and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Legitimate => "legitimate",
            Label::Phishing => "phishing",
        }
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Label {
    type Err = LabelError;

    /// Parses `legitimate` or `phishing` exactly (the dataset files use lowercase names).
    fn from_str(s: &str) -> Result<Label, LabelError> {
        match s {
            "legitimate" => Ok(Label::Legitimate),
            "phishing" => Ok(Label::Phishing),
            other => Err(LabelError::UnknownName(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_indices_round_trip() -> anyhow::Result<()> {
        for label in Label::ALL {
            assert_eq!(label.as_str().parse::<Label>()?, label);
            assert_eq!(Label::from_index(label.index())?, label);
        }
        Ok(())
    }

    #[test]
    fn legitimate_is_zero_and_phishing_is_one() {
        assert_eq!(Label::Legitimate.index(), 0);
        assert_eq!(Label::Phishing.index(), 1);
    }

    #[test]
    fn unknown_label_is_a_typed_error_quoting_the_value() {
        let err = "Phishing ".parse::<Label>().unwrap_err();
        assert_eq!(err, LabelError::UnknownName("Phishing ".into()));
        assert!(err.to_string().contains("`Phishing `"), "{err}");
    }

    #[test]
    fn score_at_threshold_is_phishing() {
        assert_eq!(Label::from_score(0.5, 0.5), Label::Phishing);
        assert_eq!(Label::from_score(0.4999, 0.5), Label::Legitimate);
    }
}
