//! What a host really is: its public suffix and registrable domain by the Public Suffix List.
//!
//! The list (`data/public-suffix-list.txt`, its version in the file's header and in
//! [`PSL_VERSION`]) is built in as sorted text and binary-searched in place: no index, no
//! allocation, nothing to initialize. Hosts are expected in ASCII (internationalized labels as
//! punycode), as the `url` crate gives them.
//!
//! ```
//! use lib_ml::domain::split_host;
//!
//! let d = split_host("appleid.apple.com.secure-id-check.com");
//! assert_eq!(d.registrable, Some("secure-id-check.com"));
//! assert_eq!(d.suffix, "com");
//! assert_eq!(d.subdomain(), "appleid.apple.com");
//! let d = split_host("my-shop.github.io");
//! assert_eq!((d.registrable, d.private), (Some("my-shop.github.io"), true));
//! ```

/// The built-in list: a header, an empty line, then one rule per line, sorted; `\tp` after a
/// rule marks the list's private section.
const LIST: &str = include_str!("../data/public-suffix-list.txt");

/// The list's `VERSION` line, as published.
pub const PSL_VERSION: &str = "2026-10-22_08-36-41_UTC";

/// A host split by the Public Suffix List.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DomainParts<'a> {
    /// The host as given (lower-cased ASCII expected).
    pub host: &'a str,
    /// The public suffix (`com`, `co.uk`, `github.io`); a host with no rule falls back to its
    /// last label, as the list's algorithm says.
    pub suffix: &'a str,
    /// The suffix plus one label: what the URL really points at. `None` when the host is only
    /// a suffix.
    pub registrable: Option<&'a str>,
    /// The suffix comes from the list's private section (hosting, dynamic DNS, app platforms:
    /// anyone can get a name under it).
    pub private: bool,
}

impl<'a> DomainParts<'a> {
    /// The labels before the registrable domain (`""` when there are none).
    pub fn subdomain(&self) -> &'a str {
        match self.registrable {
            Some(r) if self.host.len() > r.len() => &self.host[..self.host.len() - r.len() - 1],
            _ => "",
        }
    }

    /// The registrable domain's own label (`apple` for `apple.com`, `bbc` for `bbc.co.uk`).
    pub fn name(&self) -> Option<&'a str> {
        self.registrable
            .map(|r| &r[..r.len().saturating_sub(self.suffix.len() + 1)])
    }
}

/// The rule lines (after the header).
fn rules() -> &'static str {
    let start = LIST.find("\n\n").map_or(0, |i| i + 2);
    &LIST[start..]
}

/// Whether `rule` is in the list: `Some(private)` if so.
fn lookup(rule: &str) -> Option<bool> {
    let text = rules().as_bytes();
    let (mut lo, mut hi) = (0usize, text.len());
    // Binary search over byte offsets; each probe reads the line the offset falls in.
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let start = text[..mid]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let end = text[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(text.len(), |i| start + i);
        let line = &text[start..end];
        let key_end = line.iter().position(|&b| b == b'\t').unwrap_or(line.len());
        match line[..key_end].cmp(rule.as_bytes()) {
            std::cmp::Ordering::Equal => return Some(line.len() > key_end),
            std::cmp::Ordering::Less => lo = end + 1,
            std::cmp::Ordering::Greater => hi = start,
        }
    }
    None
}

/// Splits `host` (lower-case ASCII, no trailing dot) by the Public Suffix List's algorithm:
/// the longest matching rule wins, exception rules (`!`) beat wildcards (`*.`), and a host no
/// rule matches has its last label as the suffix.
pub fn split_host(host: &str) -> DomainParts<'_> {
    let host = host.strip_suffix('.').unwrap_or(host);
    // Candidate suffixes, longest first: the host, then without its first label, and so on.
    let starts: Vec<usize> = std::iter::once(0)
        .chain(host.match_indices('.').map(|(i, _)| i + 1))
        .collect();
    let mut found: Option<(usize, bool)> = None;
    let mut scratch = String::new();
    for (k, &at) in starts.iter().enumerate() {
        let candidate = &host[at..];
        if candidate.is_empty() {
            continue;
        }
        scratch.clear();
        scratch.push('!');
        scratch.push_str(candidate);
        if let Some(private) = lookup(&scratch) {
            // An exception: the suffix is the candidate without its first label.
            found = starts.get(k + 1).map(|&next| (next, private));
            break;
        }
        if let Some(private) = lookup(candidate) {
            found = Some((at, private));
            break;
        }
        if let Some(&next) = starts.get(k + 1) {
            scratch.clear();
            scratch.push_str("*.");
            scratch.push_str(&host[next..]);
            if let Some(private) = lookup(&scratch) {
                found = Some((at, private));
                break;
            }
        }
    }
    let (suffix_at, private) = found.unwrap_or((*starts.last().unwrap_or(&0), false));
    let suffix = &host[suffix_at..];
    // The registrable domain: one more label to the left of the suffix.
    let registrable = starts
        .iter()
        .position(|&s| s == suffix_at)
        .and_then(|k| k.checked_sub(1))
        .map(|k| &host[starts[k]..]);
    DomainParts {
        host,
        suffix,
        registrable,
        private,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(host: &str) -> Option<&str> {
        split_host(host).registrable
    }

    #[test]
    fn the_list_is_sorted_and_its_version_matches_the_header() {
        let lines: Vec<&str> = rules().lines().collect();
        assert!(lines.len() > 9000, "{} rules", lines.len());
        for w in lines.windows(2) {
            assert!(w[0] < w[1], "not sorted: {:?} then {:?}", w[0], w[1]);
        }
        assert!(LIST.contains(&format!("VERSION: {PSL_VERSION}")));
    }

    #[test]
    fn every_rule_is_found() {
        for line in rules().lines() {
            let (rule, private) = match line.split_once('\t') {
                Some((r, _)) => (r, true),
                None => (line, false),
            };
            assert_eq!(lookup(rule), Some(private), "{rule}");
        }
        assert_eq!(lookup("no-such-suffix-here"), None);
        assert_eq!(lookup(""), None);
    }

    #[test]
    fn registrable_domains_follow_the_list() {
        assert_eq!(reg("www.facebook.com"), Some("facebook.com"));
        assert_eq!(reg("a.b.bbc.co.uk"), Some("bbc.co.uk"));
        assert_eq!(reg("co.uk"), None);
        assert_eq!(reg("com"), None);
        assert_eq!(reg("x.y.github.io"), Some("y.github.io"));
        assert!(split_host("y.github.io").private);
        assert!(!split_host("www.paypal.com").private);
        // Wildcard and exception rules (`*.ck`, `!www.ck`).
        assert_eq!(reg("a.b.ck"), Some("a.b.ck"));
        assert_eq!(reg("www.ck"), Some("www.ck"));
        assert_eq!(reg("x.www.ck"), Some("www.ck"));
        // No rule: the last label is the suffix.
        assert_eq!(reg("host.unknown-tld"), Some("host.unknown-tld"));
        assert_eq!(reg("localhost"), None);
        assert_eq!(reg("www.example.com."), Some("example.com"));
        let d = split_host("login.example.co.uk");
        assert_eq!((d.subdomain(), d.name()), ("login", Some("example")));
        let d = split_host("example.com");
        assert_eq!((d.subdomain(), d.name()), ("", Some("example")));
    }
}
