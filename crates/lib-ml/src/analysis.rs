//! What a person checks before trusting a link, as data: the real site (registrable domain by
//! the Public Suffix List), whether it is a widely used one, a brand's name where it does not
//! belong, lookalike spellings, IP-address hosts, punycode, free hosting.
//!
//! These are inputs of the model (see [`crate::encoder`]), learned from data like every other
//! feature; they are also what explanations quote, so the reasons shown and the score come from
//! the same analysis.
//!
//! ```
//! use lib_ml::analysis::{Brands, KnownDomains, Signal, UrlAnalyzer};
//!
//! let known = KnownDomains::from_ranked(["google.com", "apple.com", "paypal.com"], &[1000]);
//! let brands = Brands::parse("apple\tapple.com\npaypal\tpaypal.com\n").unwrap();
//! let analyzer = UrlAnalyzer::new(known, brands);
//! let a = analyzer.analyze("https://appleid.apple.com.secure-id-check.com/");
//! assert_eq!(a.registrable_domain.as_deref(), Some("secure-id-check.com"));
//! assert_eq!(a.brand_in_subdomain.as_deref(), Some("apple.com"));
//! assert!(a.signals().contains(&Signal::BrandInSubdomain));
//! let a = analyzer.analyze("paypal.com/signin");
//! assert_eq!(a.known_tier, Some(0));
//! ```

use crate::domain::split_host;
use crate::ngrams::fnv1a;
use std::fmt;

/// Registrable domains of widely used sites, by popularity tier, stored as sorted 32-bit hashes
/// (4 bytes a domain; a stranger's domain is taken for a known one with odds of about
/// count / 2^32).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownDomains {
    /// Per tier: the rank it ends at (exclusive) and its sorted hashes.
    tiers: Vec<(u32, Vec<u32>)>,
}

const KNOWN_MAGIC: &[u8; 8] = b"KNOWNDM1";

fn domain_hash(domain: &str) -> u32 {
    let h = fnv1a(domain.as_bytes());
    (h ^ (h >> 32)) as u32
}

/// A known-domains file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownDomainsError(pub String);

impl fmt::Display for KnownDomainsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "known-domains file is invalid: {}", self.0)
    }
}

impl std::error::Error for KnownDomainsError {}

impl KnownDomains {
    /// From domains in rank order (most popular first), cut into tiers ending at `bounds`
    /// (ascending ranks; domains past the last bound are left out). Each domain is reduced to
    /// its registrable domain; a domain already in a higher tier is not repeated.
    pub fn from_ranked<'a>(domains: impl IntoIterator<Item = &'a str>, bounds: &[u32]) -> Self {
        let mut tiers: Vec<(u32, Vec<u32>)> = bounds.iter().map(|&b| (b, Vec::new())).collect();
        let mut seen = std::collections::HashSet::new();
        for (rank, d) in domains.into_iter().enumerate() {
            let Some(tier) = bounds.iter().position(|&b| (rank as u32) < b) else {
                break;
            };
            let d = d.trim().to_ascii_lowercase();
            let reg = split_host(&d).registrable.unwrap_or(&d).to_string();
            let h = domain_hash(&reg);
            if seen.insert(h) {
                tiers[tier].1.push(h);
            }
        }
        for (_, t) in &mut tiers {
            t.sort_unstable();
        }
        KnownDomains { tiers }
    }

    /// The tier `registrable` is in (0 = most popular), if any.
    pub fn tier(&self, registrable: &str) -> Option<usize> {
        let h = domain_hash(registrable);
        self.tiers
            .iter()
            .position(|(_, t)| t.binary_search(&h).is_ok())
    }

    /// The rank each tier ends at.
    pub fn bounds(&self) -> Vec<u32> {
        self.tiers.iter().map(|(b, _)| *b).collect()
    }

    /// Domains stored.
    pub fn len(&self) -> usize {
        self.tiers.iter().map(|(_, t)| t.len()).sum()
    }

    /// No domains.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The file form: magic, tier count, then per tier its bound, count and hashes (u32, LE).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = KNOWN_MAGIC.to_vec();
        out.extend((self.tiers.len() as u32).to_le_bytes());
        for (bound, t) in &self.tiers {
            out.extend(bound.to_le_bytes());
            out.extend((t.len() as u32).to_le_bytes());
            for h in t {
                out.extend(h.to_le_bytes());
            }
        }
        out
    }

    /// Reads [`to_bytes`](Self::to_bytes)' form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KnownDomainsError> {
        let err = |m: &str| KnownDomainsError(m.to_string());
        let rest = bytes
            .strip_prefix(KNOWN_MAGIC)
            .ok_or_else(|| err("wrong magic bytes"))?;
        let mut words = rest.chunks(4).map(|c| c.try_into().map(u32::from_le_bytes));
        let mut next = |what: &str| -> Result<u32, KnownDomainsError> {
            words
                .next()
                .ok_or_else(|| err(&format!("ends before {what}")))?
                .map_err(|_| err("length is not a multiple of 4"))
        };
        let n = next("the tier count")?;
        if n > 16 {
            return Err(err(&format!("{n} tiers (at most 16)")));
        }
        let mut tiers = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let bound = next("a tier's bound")?;
            let count = next("a tier's count")?;
            if count as usize > bytes.len() / 4 {
                return Err(err(&format!(
                    "a tier of {count} domains is longer than the file"
                )));
            }
            let hashes = (0..count)
                .map(|_| next("a hash"))
                .collect::<Result<Vec<u32>, _>>()?;
            if hashes.windows(2).any(|w| w[0] >= w[1]) {
                return Err(err("hashes are not sorted"));
            }
            tiers.push((bound, hashes));
        }
        if next("").is_ok() {
            return Err(err("bytes after the last tier"));
        }
        Ok(KnownDomains { tiers })
    }
}

/// Brands phishers imitate: a name (`paypal`) and the registrable domain it belongs to
/// (`paypal.com`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Brands {
    names: Vec<(String, String)>,
}

impl Brands {
    /// From `name<TAB>domain` lines (`#` comments and empty lines skipped).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut names = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, domain) = line
                .split_once('\t')
                .ok_or_else(|| format!("brands line {}: expected name<TAB>domain", i + 1))?;
            if name.len() < 4
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            {
                return Err(format!(
                    "brands line {}: name {name:?} must be 4+ lower-case letters or digits",
                    i + 1
                ));
            }
            names.push((name.to_string(), domain.to_string()));
        }
        Ok(Brands { names })
    }

    /// The `name<TAB>domain` text.
    pub fn to_text(&self) -> String {
        self.names
            .iter()
            .map(|(n, d)| format!("{n}\t{d}\n"))
            .collect()
    }

    /// From (name, domain) pairs.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Brands {
            names: pairs.into_iter().collect(),
        }
    }

    /// The brands, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.names.iter().map(|(n, d)| (n.as_str(), d.as_str()))
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// None.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    fn domain_of(&self, name: &str) -> Option<&str> {
        self.names
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, d)| d.as_str())
    }
}

/// Registrable domains that give anyone a page of their own but are not in the Public Suffix
/// List's private section (those are caught by it).
pub const FREE_HOSTING: &[&str] = &[
    "000webhostapp.com",
    "weebly.com",
    "weeblysite.com",
    "godaddysites.com",
    "wordpress.com",
    "glitch.me",
    "yolasite.com",
    "jimdosite.com",
    "mystrikingly.com",
    "site123.me",
    "carrd.co",
    "tiiny.site",
    "wix.com",
    "webnode.page",
    "ipfs.io",
    "dweb.link",
    "rf.gd",
    "epizy.com",
    "byethost7.com",
    "infinityfreeapp.com",
    "atwebpages.com",
    "freehostia.com",
    "bit.ly",
    "tinyurl.com",
];

/// The link shorteners among [`FREE_HOSTING`]: their addresses do not show where they lead.
pub const LINK_SHORTENERS: &[&str] = &["bit.ly", "tinyurl.com"];

/// One signal of the analysis: a model input with a fixed index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// The URL could not be split into scheme, host and path.
    Unparsable,
    /// The host is an IP address.
    IpHost,
    /// A host label is punycode (`xn--`).
    Punycode,
    /// The host holds non-ASCII characters as typed.
    NonAsciiHost,
    /// The suffix is in the Public Suffix List's private section (anyone can get a name there).
    PrivateSuffix,
    /// The registrable domain is a free page-hosting or link-shortening service.
    FreeHosting,
    /// The registrable domain is among the most used (tier 0, 1 or 2 of the known domains).
    KnownTier0,
    /// See [`Signal::KnownTier0`].
    KnownTier1,
    /// See [`Signal::KnownTier0`].
    KnownTier2,
    /// A brand's name is a label of the subdomain, and the site is not that brand's.
    BrandInSubdomain,
    /// A brand's name is in the path or query, and the site is not that brand's.
    BrandInPath,
    /// A brand's name is part of the registrable domain's name (`paypal-secure-login.com`).
    BrandInDomain,
    /// The registrable domain's name is a near-spelling of a brand's (`steamcommunlty`).
    Lookalike,
    /// No subdomain (besides `www`).
    Subdomains0,
    /// One subdomain label.
    Subdomains1,
    /// Two.
    Subdomains2,
    /// Three or more.
    Subdomains3Plus,
    /// One hyphen in the registrable domain's name.
    DomainHyphen1,
    /// Two or more.
    DomainHyphens2Plus,
    /// Digits in the registrable domain's name.
    DomainDigits,
    /// A user name before the host (`https://paypal.com@evil.example/`).
    Userinfo,
    /// An explicit port.
    Port,
    /// A host longer than 40 characters.
    LongHost,
    /// The scheme is `http` (not `https`).
    PlainHttp,
    /// The path or query carries a web address on the URL's own site (a sign-in page's
    /// `continue=https://mail.google.com/` on google.com).
    PassesOnSameSite,
    /// ... on another site that is widely used (a link wrapper to a news site, a sign-in
    /// flow's `redirect_uri`).
    PassesOnKnown,
    /// ... on another site that is not (`?url=https://fresh-domain.top/`).
    PassesOnUnknown,
    /// A widely used site passes you on to one that is not: an open redirect or a link
    /// wrapper (`google.com/url?q=https://fresh-domain.top/`). On with
    /// [`Signal::PassesOnUnknown`], so that the model can weigh the two cases apart.
    KnownPassesOnUnknown,
}

impl Signal {
    /// Every signal, in index order.
    pub const ALL: [Signal; 28] = [
        Signal::Unparsable,
        Signal::IpHost,
        Signal::Punycode,
        Signal::NonAsciiHost,
        Signal::PrivateSuffix,
        Signal::FreeHosting,
        Signal::KnownTier0,
        Signal::KnownTier1,
        Signal::KnownTier2,
        Signal::BrandInSubdomain,
        Signal::BrandInPath,
        Signal::BrandInDomain,
        Signal::Lookalike,
        Signal::Subdomains0,
        Signal::Subdomains1,
        Signal::Subdomains2,
        Signal::Subdomains3Plus,
        Signal::DomainHyphen1,
        Signal::DomainHyphens2Plus,
        Signal::DomainDigits,
        Signal::Userinfo,
        Signal::Port,
        Signal::LongHost,
        Signal::PlainHttp,
        Signal::PassesOnSameSite,
        Signal::PassesOnKnown,
        Signal::PassesOnUnknown,
        Signal::KnownPassesOnUnknown,
    ];

    /// Its index in [`Signal::ALL`].
    pub fn index(self) -> usize {
        Signal::ALL
            .iter()
            .position(|&s| s == self)
            .expect("every signal is in ALL")
    }

    /// Its stable snake-case code.
    pub fn code(self) -> &'static str {
        match self {
            Signal::Unparsable => "unparsable",
            Signal::IpHost => "ip_host",
            Signal::Punycode => "punycode",
            Signal::NonAsciiHost => "non_ascii_host",
            Signal::PrivateSuffix => "private_suffix",
            Signal::FreeHosting => "free_hosting",
            Signal::KnownTier0 => "known_domain_tier0",
            Signal::KnownTier1 => "known_domain_tier1",
            Signal::KnownTier2 => "known_domain_tier2",
            Signal::BrandInSubdomain => "brand_in_subdomain",
            Signal::BrandInPath => "brand_in_path",
            Signal::BrandInDomain => "brand_in_domain",
            Signal::Lookalike => "lookalike",
            Signal::Subdomains0 => "subdomains_0",
            Signal::Subdomains1 => "subdomains_1",
            Signal::Subdomains2 => "subdomains_2",
            Signal::Subdomains3Plus => "subdomains_3_plus",
            Signal::DomainHyphen1 => "domain_hyphen_1",
            Signal::DomainHyphens2Plus => "domain_hyphens_2_plus",
            Signal::DomainDigits => "domain_digits",
            Signal::Userinfo => "userinfo",
            Signal::Port => "port",
            Signal::LongHost => "long_host",
            Signal::PlainHttp => "plain_http",
            Signal::PassesOnSameSite => "passes_on_same_site",
            Signal::PassesOnKnown => "passes_on_known",
            Signal::PassesOnUnknown => "passes_on_unknown",
            Signal::KnownPassesOnUnknown => "known_passes_on_unknown",
        }
    }
}

/// Where a URL's parts lie, as byte ranges of the text: the one reading of a URL's boundaries,
/// shared by [`split_url`] (which validates and normalizes the parts) and the explanation (which
/// marks them in the text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlSpans {
    /// The scheme with its `://`, if one was given (letters first, then letters, digits, `+-.`).
    pub scheme: Option<std::ops::Range<usize>>,
    /// `user[:password]` with its `@`.
    pub userinfo: Option<std::ops::Range<usize>>,
    /// The host as typed (a bracketed IPv6 address with its brackets).
    pub host: std::ops::Range<usize>,
    /// The port with its `:` — or, after a bracketed host, whatever text stands before the rest
    /// (no port when it does not start with `:`).
    pub port: Option<std::ops::Range<usize>>,
    /// Where the rest starts: the first `/`, `?`, `#` or `\\` after the host (or the end).
    pub rest: usize,
}

/// The spans of `url`'s parts (see [`UrlSpans`]); `None` for an unclosed `[` in the host. No
/// scheme: a leading `//` is skipped and the host starts after it.
pub fn url_spans(url: &str) -> Option<UrlSpans> {
    let (scheme, start) = match url.find("://") {
        Some(i)
            if i > 0
                && url[..i]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
                && url.as_bytes()[0].is_ascii_alphabetic() =>
        {
            (Some(0..i + 3), i + 3)
        }
        _ => (None, if url.starts_with("//") { 2 } else { 0 }),
    };
    let rest = url[start..]
        .find(['/', '?', '#', '\\'])
        .map_or(url.len(), |i| start + i);
    let (userinfo, host_start) = match url[start..rest].rfind('@') {
        Some(i) => (Some(start..start + i + 1), start + i + 1),
        None => (None, start),
    };
    let hostport = &url[host_start..rest];
    let host_end = if hostport.starts_with('[') {
        host_start + hostport.find(']')? + 1
    } else {
        hostport.rfind(':').map_or(rest, |i| host_start + i)
    };
    let port = (host_end < rest).then_some(host_end..rest);
    Some(UrlSpans {
        scheme,
        userinfo,
        host: host_start..host_end,
        port,
        rest,
    })
}

/// A URL's parts as a browser would take them, without validating more than that.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UrlParts {
    /// Lower-cased scheme, if one was given.
    pub scheme: Option<String>,
    /// `user[:password]` before `@`.
    pub userinfo: Option<String>,
    /// Lower-cased host as typed (may hold non-ASCII), without a trailing dot.
    pub host: String,
    /// The port, if given.
    pub port: Option<String>,
    /// Everything from the first `/`, `?` or `#` after the host.
    pub rest: String,
}

/// Splits `url` into scheme, userinfo, host, port and the rest. A URL without a scheme
/// (`paypal.com/signin`) is parsed as if one came first. `None` when there is no host or
/// the host holds characters no host can (spaces, `<`, quotes, ...).
pub fn split_url(url: &str) -> Option<UrlParts> {
    let url = url.trim();
    let sp = url_spans(url)?;
    let scheme = sp
        .scheme
        .map(|r| url[r.start..r.end - 3].to_ascii_lowercase());
    let userinfo = sp.userinfo.map(|r| url[r.start..r.end - 1].to_string());
    let host = &url[sp.host.clone()];
    let port = sp
        .port
        .and_then(|r| url[r].strip_prefix(':').map(str::to_string));
    let rest = &url[sp.rest..];
    // One trailing dot is the root (`example.com.`); an empty label anywhere else is no host.
    if host.contains("..") {
        return None;
    }
    let host = host.strip_suffix('.').unwrap_or(host).to_lowercase();
    let bad = |c: char| c.is_whitespace() || c.is_control() || "<>\"'`{}|^%@,;=!$&()*+".contains(c);
    if host.is_empty() || host.contains(bad) || host.starts_with('.') {
        return None;
    }
    if port
        .as_deref()
        .is_some_and(|p| !p.is_empty() && !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    Some(UrlParts {
        scheme,
        userinfo,
        host,
        port: port.filter(|p| !p.is_empty()),
        rest: rest.to_string(),
    })
}

/// Why a text is not a web address a person could visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAWebAddress(pub String);

impl fmt::Display for NotAWebAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotAWebAddress {}

/// `url`'s parts if it is a web address: an `http` or `https` URL (or one without a scheme, read
/// as `https://`) whose host is a dotted name or an IP address. Otherwise a message saying why,
/// quoting the text.
pub fn web_address(url: &str) -> Result<UrlParts, NotAWebAddress> {
    let shown: String = url.trim().chars().take(80).collect();
    let more = if shown.len() < url.trim().len() {
        "…"
    } else {
        ""
    };
    let Some(parts) = split_url(url) else {
        return Err(NotAWebAddress(format!(
            "`{shown}{more}` does not look like a web address: it has no valid host name"
        )));
    };
    if let Some(scheme) = parts
        .scheme
        .as_deref()
        .filter(|s| *s != "http" && *s != "https")
    {
        return Err(NotAWebAddress(format!(
            "`{shown}{more}` is a `{scheme}:` address; only http:// and https:// addresses can be checked"
        )));
    }
    let ascii = ascii_host(&parts.host);
    let dotted = ascii.split('.').filter(|l| !l.is_empty()).count() >= 2;
    if !dotted && !is_ip_host(&ascii) {
        return Err(NotAWebAddress(format!(
            "`{shown}{more}` does not look like a web address: `{}` is a single word, not a site name",
            parts.host
        )));
    }
    Ok(parts)
}

/// `url` as the model reads it: trimmed, with `https://` in front when it has no scheme
/// (`paypal.com/signin`, `//cdn.example/x`), as browsers open a typed address (HTTPS first), and an
/// empty path written as `/` (`https://a.com` and `https://a.com?q` are `https://a.com/` and
/// `https://a.com/?q`, as a browser shows them). Which rows of a data set happen to lack a
/// scheme or a trailing slash says more about who collected them than about phishing, so
/// training and serving both read every URL this way, and two spellings of one address get one
/// score.
pub fn normalize_url(url: &str) -> std::borrow::Cow<'_, str> {
    let url = url.trim();
    let Some(parts) = split_url(url) else {
        return std::borrow::Cow::Borrowed(url);
    };
    let (scheme, rest) = match parts.scheme.as_deref() {
        None => ("https://", url.strip_prefix("//").unwrap_or(url)),
        Some(_) => match url.find("://") {
            Some(i) => (&url[..i + 3], &url[i + 3..]),
            None => return std::borrow::Cow::Borrowed(url),
        },
    };
    // Only web schemes have a path that is `/` when empty.
    let web = matches!(parts.scheme.as_deref(), None | Some("http" | "https"));
    let slash_at =
        (web && !parts.rest.starts_with(['/', '\\'])).then(|| rest.len() - parts.rest.len());
    if scheme.len() + rest.len() == url.len() && url.starts_with(scheme) && slash_at.is_none() {
        return std::borrow::Cow::Borrowed(url);
    }
    let mut out = String::with_capacity(scheme.len() + rest.len() + 1);
    out.push_str(scheme);
    match slash_at {
        Some(i) => {
            out.push_str(&rest[..i]);
            out.push('/');
            out.push_str(&rest[i..]);
        }
        None => out.push_str(rest),
    }
    std::borrow::Cow::Owned(out)
}

/// Whether `host` is an IP address as browsers read one: IPv6 in brackets, four decimal
/// parts, or one or more numeric parts in decimal, octal or hex (`0x7f.1`, `3232235777`).
pub fn is_ip_host(host: &str) -> bool {
    if host.starts_with('[') {
        return true;
    }
    let parts: Vec<&str> = host.split('.').collect();
    parts.len() <= 4
        && parts.iter().all(|p| {
            !p.is_empty()
                && (p.bytes().all(|b| b.is_ascii_digit())
                    || p.strip_prefix("0x")
                        .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit())))
        })
}

/// Each label of `host` as ASCII: non-ASCII labels encoded as punycode.
fn ascii_host(host: &str) -> String {
    if host.is_ascii() {
        return host.to_string();
    }
    host.split('.')
        .map(|l| {
            if l.is_ascii() {
                l.to_string()
            } else {
                punycode::encode(l).map_or_else(|_| l.to_string(), |p| format!("xn--{p}"))
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// `s` with look-alike characters replaced by the Latin letters they imitate (Cyrillic and
/// Greek homoglyphs, digits used as letters, `rn` for `m`, `vv` for `w`).
pub fn fold_lookalikes(s: &str) -> String {
    let mapped: String = s
        .chars()
        .map(|c| match c {
            'а' | 'α' | '4' | '@' => 'a',
            'е' | 'ε' | '3' => 'e',
            'о' | 'ο' | '0' => 'o',
            'р' | 'ρ' => 'p',
            'с' | 'ϲ' => 'c',
            'х' | 'χ' => 'x',
            'у' | 'γ' => 'y',
            'і' | 'ι' | '1' | '!' | '|' => 'l',
            'ӏ' | 'ⅼ' => 'l',
            'ѕ' | '5' | '$' => 's',
            'ј' => 'j',
            'һ' => 'h',
            'ԁ' => 'd',
            'ɡ' => 'g',
            'ո' => 'n',
            'ν' => 'v',
            '7' => 't',
            c => c,
        })
        .collect();
    mapped.replace("rn", "m").replace("vv", "w")
}

/// Levenshtein distance, or `None` when it exceeds `max`.
pub fn edit_distance_within(a: &str, b: &str, max: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        let mut row_min = cur[0];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
            row_min = row_min.min(cur[j + 1]);
        }
        if row_min > max {
            return None;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    (prev[b.len()] <= max).then_some(prev[b.len()])
}

/// What the analysis found in one URL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Analysis {
    /// The URL's parts; `None` when it could not be split.
    pub parts: Option<UrlParts>,
    /// The host in ASCII (punycode for non-ASCII labels).
    pub host: Option<String>,
    /// What the URL really points at.
    pub registrable_domain: Option<String>,
    /// Its public suffix.
    pub suffix: Option<String>,
    /// The host is an IP address.
    pub ip_host: bool,
    /// A label is punycode.
    pub punycode: bool,
    /// The host was typed with non-ASCII characters.
    pub non_ascii_host: bool,
    /// The suffix is in the list's private section.
    pub private_suffix: bool,
    /// The registrable domain is a free hosting service ([`FREE_HOSTING`]).
    pub free_hosting: bool,
    /// The known-domains tier of the registrable domain.
    pub known_tier: Option<usize>,
    /// The brand domain whose name is in the subdomain.
    pub brand_in_subdomain: Option<String>,
    /// The brand domain whose name is in the path or query.
    pub brand_in_path: Option<String>,
    /// The brand domain whose name is part of the registrable domain's name.
    pub brand_in_domain: Option<String>,
    /// The brand domain the registrable domain imitates.
    pub lookalike: Option<String>,
    /// Subdomain labels, `www` not counted.
    pub subdomain_labels: usize,
    /// Hyphens in the registrable domain's name.
    pub domain_hyphens: usize,
    /// Digits in the registrable domain's name.
    pub domain_digits: bool,
    /// Where the address passes you on: a web address written in its path or query.
    pub onward: Option<Onward>,
}

/// A web address carried in a URL's path or query (`?url=https://…`, `?continue=https%3A%2F%2F…`,
/// `/RU=https://…/`): where a redirect, a link wrapper or a sign-in page sends you next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Onward {
    /// Its registrable domain (or its IP address).
    pub domain: String,
    /// How it stands to the URL's own site.
    pub kind: OnwardKind,
}

/// How an onward address stands to the URL's own site; ordered by risk, least first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OnwardKind {
    /// The same registrable domain (or the same IP address).
    SameSite,
    /// Another site among the known domains.
    Known,
    /// Another site, not among them (or an IP address).
    Unknown,
}

impl Analysis {
    /// The signals that are on, in index order.
    pub fn signals(&self) -> Vec<Signal> {
        let Some(parts) = &self.parts else {
            return vec![Signal::Unparsable];
        };
        let mut s = Vec::new();
        let mut on = |cond: bool, sig: Signal| {
            if cond {
                s.push(sig);
            }
        };
        on(self.ip_host, Signal::IpHost);
        on(self.punycode, Signal::Punycode);
        on(self.non_ascii_host, Signal::NonAsciiHost);
        on(self.private_suffix, Signal::PrivateSuffix);
        on(self.free_hosting, Signal::FreeHosting);
        on(self.known_tier == Some(0), Signal::KnownTier0);
        on(self.known_tier == Some(1), Signal::KnownTier1);
        on(self.known_tier == Some(2), Signal::KnownTier2);
        on(self.brand_in_subdomain.is_some(), Signal::BrandInSubdomain);
        on(self.brand_in_path.is_some(), Signal::BrandInPath);
        on(self.brand_in_domain.is_some(), Signal::BrandInDomain);
        on(self.lookalike.is_some(), Signal::Lookalike);
        if !self.ip_host {
            on(self.subdomain_labels == 0, Signal::Subdomains0);
            on(self.subdomain_labels == 1, Signal::Subdomains1);
            on(self.subdomain_labels == 2, Signal::Subdomains2);
            on(self.subdomain_labels >= 3, Signal::Subdomains3Plus);
            on(self.domain_hyphens == 1, Signal::DomainHyphen1);
            on(self.domain_hyphens >= 2, Signal::DomainHyphens2Plus);
            on(self.domain_digits, Signal::DomainDigits);
        }
        on(parts.userinfo.is_some(), Signal::Userinfo);
        on(parts.port.is_some(), Signal::Port);
        on(
            self.host.as_ref().is_some_and(|h| h.len() > 40),
            Signal::LongHost,
        );
        on(parts.scheme.as_deref() == Some("http"), Signal::PlainHttp);
        let onward = self.onward.as_ref().map(|o| o.kind);
        on(
            onward == Some(OnwardKind::SameSite),
            Signal::PassesOnSameSite,
        );
        on(onward == Some(OnwardKind::Known), Signal::PassesOnKnown);
        on(onward == Some(OnwardKind::Unknown), Signal::PassesOnUnknown);
        on(
            onward == Some(OnwardKind::Unknown) && self.known_tier.is_some(),
            Signal::KnownPassesOnUnknown,
        );
        s
    }
}

/// The analysis with its lists.
#[derive(Debug, Clone, Default)]
pub struct UrlAnalyzer {
    /// Widely used domains.
    pub known: KnownDomains,
    /// Imitated brands.
    pub brands: Brands,
}

/// Tokens of `s`: runs of ASCII letters and digits, lower-cased.
fn tokens(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
}

impl UrlAnalyzer {
    /// An analyzer over these lists.
    pub fn new(known: KnownDomains, brands: Brands) -> Self {
        UrlAnalyzer { known, brands }
    }

    /// Analyzes `url` (trimmed; a missing scheme is not plain http: see [`normalize_url`]).
    pub fn analyze(&self, url: &str) -> Analysis {
        let Some(parts) = split_url(url) else {
            return Analysis::default();
        };
        let mut a = Analysis {
            non_ascii_host: !parts.host.is_ascii(),
            ..Analysis::default()
        };
        let host = ascii_host(&parts.host);
        a.ip_host = is_ip_host(&host);
        a.punycode = host.split('.').any(|l| l.starts_with("xn--"));
        if !a.ip_host {
            let d = split_host(&host);
            a.suffix = Some(d.suffix.to_string());
            a.private_suffix = d.private;
            if let Some(reg) = d.registrable {
                a.registrable_domain = Some(reg.to_string());
                a.free_hosting = FREE_HOSTING.contains(&reg);
                a.known_tier = self.known.tier(reg);
                let sub = d.subdomain();
                let sub = sub.strip_prefix("www.").unwrap_or(sub);
                a.subdomain_labels = if sub.is_empty() || sub == "www" {
                    0
                } else {
                    sub.split('.').count()
                };
                let name = d.name().unwrap_or("");
                // A punycode name is judged by the letters it shows, not by its encoding.
                let shown = match name.strip_prefix("xn--") {
                    Some(p) => punycode::decode(p).unwrap_or_else(|_| name.to_string()),
                    None => name.to_string(),
                };
                a.domain_hyphens = shown.matches('-').count();
                a.domain_digits = shown.chars().any(|c| c.is_ascii_digit());
                self.brands_in(&mut a, sub, name, &parts.rest);
            }
        }
        let own = a.registrable_domain.as_deref().unwrap_or(&host);
        a.onward = self.onward(&parts.rest, own);
        a.host = Some(host);
        a.parts = Some(parts);
        a
    }

    fn brands_in(&self, a: &mut Analysis, sub: &str, name: &str, rest: &str) {
        let own = |brand: &str| name == brand;
        let domain_of = |brand: &str| self.brands.domain_of(brand).map(str::to_string);
        // The subdomains of one of the 1,000 most used sites are its owner's, unless it lets
        // anyone publish under it (a hosting service, a private suffix): `signin.aws.amazon.com`
        // and `chrome.google.com` name no other site. (In the training sources such rows are 8
        // legitimate and 1 phishing.)
        let owners_subdomains = a.known_tier == Some(0) && !a.free_hosting && !a.private_suffix;
        a.brand_in_subdomain = if owners_subdomains {
            None
        } else {
            tokens(sub)
                .find(|t| !own(t) && self.brands.domain_of(t).is_some())
                .and_then(domain_of)
                .or_else(|| self.known_domain_before(sub, name))
        };
        a.brand_in_path = tokens(rest)
            .map(str::to_ascii_lowercase)
            .find(|t| t.len() >= 5 && !own(t) && self.brands.domain_of(t).is_some())
            .and_then(|t| domain_of(&t));
        if a.known_tier.is_some() {
            // A widely used site is not imitating anyone.
            return;
        }
        // The name is one label; a punycode one is compared as the letters it shows.
        let unicode_name = match name.strip_prefix("xn--") {
            Some(p) => punycode::decode(p).unwrap_or_else(|_| name.to_string()),
            None => name.to_string(),
        };
        for (brand, domain) in self.brands.iter() {
            if own(brand) {
                continue;
            }
            if brand.len() >= 5 && name.contains(brand) {
                a.brand_in_domain.get_or_insert_with(|| domain.to_string());
                continue;
            }
            let candidates = std::iter::once(unicode_name.as_str()).chain(unicode_name.split('-'));
            for c in candidates {
                if c.chars().count() < 4 || c == brand {
                    if c == brand {
                        a.brand_in_domain.get_or_insert_with(|| domain.to_string());
                    }
                    continue;
                }
                let folded = fold_lookalikes(c);
                let max = if brand.len() >= 9 { 2 } else { 1 };
                if folded == brand
                    || (brand.len() >= 5 && edit_distance_within(&folded, brand, max).is_some())
                {
                    a.lookalike.get_or_insert_with(|| domain.to_string());
                }
            }
        }
    }
}

/// At most this many web addresses in one URL's path and query are looked at.
const MAX_ONWARD: usize = 8;

/// `s` with `%XX` escapes decoded, up to three rounds (addresses inside addresses are escaped
/// once per level), invalid UTF-8 replaced.
fn percent_decoded(s: &str) -> std::borrow::Cow<'_, str> {
    let mut out = std::borrow::Cow::Borrowed(s);
    for _ in 0..3 {
        let Some((bytes, _)) = unescape_once(out.as_bytes()) else {
            break;
        };
        out = std::borrow::Cow::Owned(String::from_utf8_lossy(&bytes).into_owned());
    }
    out
}

/// One round of `%XX` decoding of `b`: the bytes, and for each the index in `b` of the byte it
/// comes from (an escape's `%`); `None` when `b` holds no escape.
fn unescape_once(b: &[u8]) -> Option<(Vec<u8>, Vec<usize>)> {
    let hex = |c: u8| (c as char).to_digit(16);
    let escape = |i: usize| match (b[i], b.get(i + 1), b.get(i + 2)) {
        (b'%', Some(&h), Some(&l)) => Some((hex(h)? * 16 + hex(l)?) as u8),
        _ => None,
    };
    if !(0..b.len()).any(|i| escape(i).is_some()) {
        return None;
    }
    let (mut out, mut from) = (Vec::with_capacity(b.len()), Vec::with_capacity(b.len()));
    let mut i = 0;
    while i < b.len() {
        from.push(i);
        match escape(i) {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    Some((out, from))
}

/// `b` after up to three rounds of [`unescape_once`], with for each byte the index in `b` of the
/// byte it comes from.
fn unescape_rounds(b: &[u8]) -> (Vec<u8>, Vec<usize>) {
    let (mut bytes, mut from): (Vec<u8>, Vec<usize>) = (b.to_vec(), (0..b.len()).collect());
    for _ in 0..3 {
        let Some((next, f)) = unescape_once(&bytes) else {
            break;
        };
        from = f.into_iter().map(|k| from[k]).collect();
        bytes = next;
    }
    (bytes, from)
}

/// Where a Proofpoint URL Defense v2 address starts in `b` (lower-case or not): `http-3A__` or
/// `https-3A__` as a parameter's value (`urldefense.proofpoint.com/v2/url?u=https-3A__…&d=…`).
fn proofpoint_v2_start(b: &[u8]) -> Option<usize> {
    let starts = |s: &[u8], p: &[u8]| s.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p));
    (1..b.len()).find(|&i| {
        b[i - 1] == b'=' && (starts(&b[i..], b"http-3a__") || starts(&b[i..], b"https-3a__"))
    })
}

/// A Proofpoint URL Defense v2 address (the parameter's value) decoded: `/` is written `_`,
/// other bytes `-XX`. The bytes, and for each the index in `v` of the byte it comes from.
fn proofpoint_v2_value(v: &[u8]) -> (Vec<u8>, Vec<usize>) {
    let hex = |c: u8| (c as char).to_digit(16);
    let (mut out, mut from) = (Vec::with_capacity(v.len()), Vec::with_capacity(v.len()));
    let mut i = 0;
    while i < v.len() {
        from.push(i);
        let escape = match (v[i], v.get(i + 1), v.get(i + 2)) {
            (b'-', Some(&h), Some(&l)) => hex(h).zip(hex(l)),
            _ => None,
        };
        match (v[i], escape) {
            (_, Some((h, l))) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'_', None) => {
                out.push(b'/');
                i += 1;
            }
            (c, None) => {
                out.push(c);
                i += 1;
            }
        }
    }
    (out, from)
}

/// `b` with its Proofpoint URL Defense v2 address decoded ([`proofpoint_v2_value`], up to the
/// parameter's end, `&` or `#`): the bytes, and for each the index in `b` of the byte it comes
/// from; `None` when `b` holds no such address.
fn proofpoint_v2_once(b: &[u8]) -> Option<(Vec<u8>, Vec<usize>)> {
    let start = proofpoint_v2_start(b)?;
    let end = b[start..]
        .iter()
        .position(|c| b"&#".contains(c))
        .map_or(b.len(), |k| start + k);
    let (value, value_from) = proofpoint_v2_value(&b[start..end]);
    let mut out = b[..start].to_vec();
    out.extend(value);
    out.extend_from_slice(&b[end..]);
    let mut from: Vec<usize> = (0..start).collect();
    from.extend(value_from.into_iter().map(|k| start + k));
    from.extend(end..b.len());
    Some((out, from))
}

/// Where a Proofpoint URL Defense v3 address (`urldefense.com/v3/__https://…__;…!!…$`) ends.
const V3_END: &str = "__;";

/// The host of each web address written in `rest` (a URL's path, query and fragment, decoded):
/// `http://` or `https://` at the start of a parameter's value or a path segment (after `=`,
/// `?`, `&`, `/`, `#` or a Proofpoint v3 `/__`), the host up to the next `/?#&\` or `__;`,
/// without user or port.
fn onward_hosts(rest: &str) -> impl Iterator<Item = String> + '_ {
    let lower = rest.to_ascii_lowercase();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(i) = lower[from..].find("http").map(|i| from + i) {
        from = i + 4;
        let after = &lower[i + 4..];
        let Some(authority) = after
            .strip_prefix("s://")
            .or_else(|| after.strip_prefix("://"))
        else {
            continue;
        };
        if i > 0 && !b"=?&/#".contains(&lower.as_bytes()[i - 1]) && !lower[..i].ends_with("/__") {
            continue;
        }
        let end = authority
            .find(|c: char| "/?#&\\".contains(c) || c.is_whitespace())
            .unwrap_or(authority.len());
        let end = authority[..end].find(V3_END).unwrap_or(end);
        let hostport = &authority[..end];
        let host = hostport.rsplit('@').next().unwrap_or(hostport);
        let host = if host.starts_with('[') {
            host.find(']').map_or(host, |j| &host[..=j])
        } else {
            host.split(':').next().unwrap_or(host)
        };
        found.push(host.strip_suffix('.').unwrap_or(host).to_string());
        if found.len() == MAX_ONWARD {
            break;
        }
    }
    found.into_iter()
}

/// Where the destination's domain starts in a link rewritten by Mimecast
/// (`https://protect-eu.mimecast.com/s/…?domain=example.com`), which carries only that domain
/// as its `domain` parameter: a byte index of `rest` (the URL's path, query and fragment) when
/// `host` is Mimecast's and the value is not empty.
fn mimecast_domain_start(host: &str, rest: &str) -> Option<usize> {
    let host = host.to_ascii_lowercase();
    if !(host == "mimecast.com" || host.ends_with(".mimecast.com")) || !rest.starts_with("/s/") {
        return None;
    }
    let query = rest.find('?')?;
    let lower = rest.to_ascii_lowercase();
    let at = ["?domain=", "&domain="]
        .iter()
        .filter_map(|p| lower[query..].find(p).map(|i| query + i + p.len()))
        .min()?;
    let fragment = rest.find('#').unwrap_or(rest.len());
    (at < fragment && !matches!(rest.as_bytes().get(at), None | Some(b'&' | b'#'))).then_some(at)
}

/// Where the first web address written after the host of `text` (a URL as
/// [`read_text`](crate::ngrams::read_text) gives it, lower-cased) starts: a byte index of
/// `http://` or `https://`, plain or percent-escaped once or twice (`https%3a%2f%2f`,
/// `https%253a%252f%252f`) or as Proofpoint URL Defense v2 writes it (`https-3a__`), at the
/// start of a parameter's value or a path segment (after `=`, `?`, `&`, `/` or `#`, plain or
/// escaped, or Proofpoint v3's `/__`); else where the domain of a Mimecast link starts (its
/// `domain` parameter).
pub fn onward_start(text: &str) -> Option<usize> {
    const SCHEMES: [&str; 8] = [
        "://",
        "s://",
        "%3a%2f%2f",
        "s%3a%2f%2f",
        "%253a%252f%252f",
        "s%253a%252f%252f",
        "-3a__",
        "s-3a__",
    ];
    const BEFORE: [&str; 10] = ["=", "?", "&", "/", "#", "/__", "%3d", "%2f", "%3f", "%26"];
    let host_from = text.find("://").map_or(0, |i| i + 3);
    let path_from = text[host_from..]
        .find(['/', '?', '#', '\\'])
        .map_or(text.len(), |i| host_from + i);
    let mut from = path_from;
    while let Some(i) = text[from..].find("http").map(|i| from + i) {
        from = i + 4;
        let after = &text[i + 4..];
        let before = &text[..i];
        if SCHEMES.iter().any(|s| after.starts_with(s))
            && BEFORE.iter().any(|b| before.ends_with(b))
        {
            return Some(i);
        }
    }
    let host = &text[host_from..path_from];
    let host = host.rsplit('@').next().unwrap_or(host);
    let host = host.split(':').next().unwrap_or(host);
    mimecast_domain_start(host, &text[path_from..]).map(|i| path_from + i)
}

/// The onward address that starts `tail` (a tail of a URL's read text from an
/// [`onward_start`]), as [`normalize_url`] writes it and lower-cased, with the byte of `tail`
/// each of its bytes comes from. Escaped, it is the parameter's value up to the next `&` or `#`,
/// decoded (up to three rounds of `%XX`, or Proofpoint v2's `-XX` and `_`; left escaped if that
/// is not UTF-8); written plainly, the rest of the text (where it ends is not written down) up
/// to a Proofpoint v3 end (`__;`); a bare domain (no scheme: Mimecast's), its home page up to
/// the next `&` or `#`.
pub fn onward_text(tail: &str) -> (String, Vec<usize>) {
    let has_scheme = tail
        .strip_prefix("https")
        .or_else(|| tail.strip_prefix("http"))
        .is_some_and(|r| r.starts_with([':', '%']) || r.starts_with("-3a"));
    if !has_scheme {
        // A bare domain (Mimecast's `domain=`), decoded as the analysis reads it: its home
        // page, `https://` and the `/` drawn from its first and last byte.
        let end = tail.find(['&', '#']).unwrap_or(tail.len());
        let (bytes, from) = unescape_rounds(&tail.as_bytes()[..end]);
        let domain = String::from_utf8(bytes).map(|d| d.to_lowercase());
        let (Ok(domain), Some(&first), Some(&last)) = (domain, from.first(), from.last()) else {
            return (String::new(), Vec::new());
        };
        if domain.len() != from.len() {
            return (String::new(), Vec::new());
        }
        let text = format!("https://{domain}/");
        let mut all = vec![first; "https://".len()];
        all.extend(from);
        all.push(last);
        return (text, all);
    }
    let after_scheme = tail
        .strip_prefix("https")
        .or_else(|| tail.strip_prefix("http"))
        .unwrap_or(tail);
    let escaped = after_scheme.starts_with('%');
    let proofpoint_v2 = after_scheme.starts_with("-3a__");
    let end = if escaped || proofpoint_v2 {
        tail.find(['&', '#']).unwrap_or(tail.len())
    } else {
        tail.find(V3_END).unwrap_or(tail.len())
    };
    let value = &tail.as_bytes()[..end];
    let (bytes, mut from) = if proofpoint_v2 {
        proofpoint_v2_value(value)
    } else if escaped {
        unescape_rounds(value)
    } else {
        (value.to_vec(), (0..end).collect())
    };
    let Ok(text) = String::from_utf8(bytes) else {
        return (tail[..end].to_string(), (0..end).collect());
    };
    let text = text.to_lowercase();
    if text.len() != from.len() {
        // Lower-casing changed a length: keep the bytes of the tail as they are.
        return (tail[..end].to_string(), (0..end).collect());
    }
    let normalized = normalize_url(&text).into_owned();
    if normalized.len() == text.len() + 1 && !from.is_empty() {
        // An empty path written as `/`: the inserted byte comes from the one before it.
        let at = normalized
            .bytes()
            .zip(text.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(text.len());
        let src = from[at.saturating_sub(1).min(from.len().saturating_sub(1))];
        from.insert(at, src);
        return (normalized, from);
    }
    (text, from)
}

/// The onward address that starts `tail` (see [`onward_text`]).
pub fn onward_url(tail: &str) -> String {
    onward_text(tail).0
}

impl UrlAnalyzer {
    /// Where the URL passes you on (see [`Onward`]): of the web addresses in `rest` (read
    /// percent-decoded), the one that stands furthest from `own` (the URL's registrable domain,
    /// or its host when it has none), an unknown site before a known one before its own.
    fn onward(&self, rest: &str, own: &str) -> Option<Onward> {
        let decoded = percent_decoded(rest);
        let decoded = match proofpoint_v2_once(decoded.as_bytes()) {
            Some((b, _)) => std::borrow::Cow::Owned(String::from_utf8_lossy(&b).into_owned()),
            None => decoded,
        };
        let mimecast = mimecast_domain_start(own, rest).map(|at| {
            let value = &rest[at..];
            let end = value.find(['&', '#']).unwrap_or(value.len());
            percent_decoded(&value[..end]).to_ascii_lowercase()
        });
        let mut best: Option<Onward> = None;
        for host in onward_hosts(&decoded).chain(mimecast) {
            let host = ascii_host(&host);
            let valid = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
            let (domain, kind) = if is_ip_host(&host) {
                let kind = if host == own {
                    OnwardKind::SameSite
                } else {
                    OnwardKind::Unknown
                };
                (host, kind)
            } else if host.contains('.') && host.chars().all(valid) && !host.starts_with('.') {
                let Some(reg) = split_host(&host).registrable else {
                    continue;
                };
                let kind = if reg == own {
                    OnwardKind::SameSite
                } else if self.known.tier(reg).is_some() {
                    OnwardKind::Known
                } else {
                    OnwardKind::Unknown
                };
                (reg.to_string(), kind)
            } else {
                continue;
            };
            if best.as_ref().is_none_or(|b| kind > b.kind) {
                best = Some(Onward { domain, kind });
            }
        }
        best
    }

    /// A widely used domain written in front of the URL's own registrable domain, whole labels
    /// from a label's start: inside the subdomain (`paypal.com.account-verify.info`), or ending
    /// at a hyphen in the next label (`usps.com-track.top`, `m.facebook.com-login.example.net`).
    /// Any known domain counts, not only the brands: a host that spells out another site's
    /// address before its own is imitating it. At most three labels before the last part.
    fn known_domain_before(&self, sub: &str, name: &str) -> Option<String> {
        if sub.is_empty() || self.known.is_empty() {
            return None;
        }
        let labels: Vec<&str> = sub.split('.').chain(std::iter::once(name)).collect();
        let own = labels.len() - 1;
        let mut candidate = String::new();
        for start in 0..own {
            for end in start + 1..=(start + 3).min(own) {
                let last = labels[end];
                let before_hyphen = last.split_once('-').map(|(head, _)| head);
                // Inside the subdomain a whole label may end the domain; the registrable
                // domain's own label only up to a hyphen (else it is the URL's own domain).
                let whole = (end < own).then_some(last);
                for tail in [whole, before_hyphen].into_iter().flatten() {
                    if tail.is_empty() {
                        continue;
                    }
                    candidate.clear();
                    for l in &labels[start..end] {
                        candidate.push_str(l);
                        candidate.push('.');
                    }
                    candidate.push_str(tail);
                    if self.known.tier(&candidate).is_some() {
                        return Some(candidate);
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analyzer() -> UrlAnalyzer {
        let known = KnownDomains::from_ranked(
            [
                "google.com",
                "facebook.com",
                "apple.com",
                "paypal.com",
                "steamcommunity.com",
                "000webhostapp.com",
                "microsoftonline.com",
            ],
            &[3, 6, 100],
        );
        let brands = Brands::parse(
            "apple\tapple.com\npaypal\tpaypal.com\nsteamcommunity\tsteamcommunity.com\n\
             microsoft\tmicrosoft.com\namazon\tamazon.com\nfacebook\tfacebook.com\n\
             chase\tchase.com\n",
        )
        .unwrap();
        UrlAnalyzer::new(known, brands)
    }

    #[test]
    fn an_address_in_the_path_or_query_is_where_the_url_passes_you_on() {
        let a = analyzer();
        let onward = |url: &str| a.analyze(url).onward.map(|o| (o.domain, o.kind));
        use OnwardKind::*;
        // Escaped once or twice, raw, in a path segment; the riskiest of several wins.
        assert_eq!(
            onward("https://www.google.com/url?q=https%3A%2F%2Fmail.fresh-site.top%2Flogin&sa=D"),
            Some(("fresh-site.top".into(), Unknown))
        );
        assert_eq!(
            onward("https://x.example/r?u=https%253A%252F%252Fpaypal.com%252F"),
            Some(("paypal.com".into(), Known))
        );
        assert_eq!(
            onward("https://r.example.net/RU=http://user@10.0.0.1:8080/x/RK=2"),
            Some(("10.0.0.1".into(), Unknown))
        );
        assert_eq!(
            onward("https://accounts.google.com/signin?continue=https://mail.google.com/&x=https://apple.com/"),
            Some(("apple.com".into(), Known))
        );
        assert_eq!(
            onward("https://accounts.google.com/ServiceLogin?continue=https%3A%2F%2Fmail.google.com%2F"),
            Some(("google.com".into(), SameSite))
        );
        // Proofpoint URL Defense: v3 writes the address plainly after `/__` and ends it with
        // `__;`, v2 writes `/` as `_` and other bytes as `-XX`.
        assert_eq!(
            onward("https://urldefense.com/v3/__https://mail.fresh-site.top/login__;!!G3vK!x1$"),
            Some(("fresh-site.top".into(), Unknown))
        );
        assert_eq!(
            onward("https://urldefense.com/v3/__https://fresh-site.top__;!!G3vK!x1$"),
            Some(("fresh-site.top".into(), Unknown))
        );
        assert_eq!(
            onward("https://urldefense.proofpoint.com/v2/url?u=https-3A__my-2Dfresh-2Dsite.top_a-5Fb&d=Dw"),
            Some(("my-fresh-site.top".into(), Unknown))
        );
        assert_eq!(
            onward("https://urldefense.proofpoint.com/v2/url?u=http-3A__www.paypal.com_&d=Dw"),
            Some(("paypal.com".into(), Known))
        );
        // Mimecast carries only the domain, as `domain=`; elsewhere that parameter is no address.
        assert_eq!(
            onward("https://protect-eu.mimecast.com/s/AbC12?domain=mail.fresh-site.top"),
            Some(("fresh-site.top".into(), Unknown))
        );
        assert_eq!(
            onward("https://protect-us.mimecast.com/s/AbC12?domain=www.paypal.com&x=1"),
            Some(("paypal.com".into(), Known))
        );
        assert_eq!(
            onward("https://protect-eu.mimecast.com/s/AbC12?domain="),
            None
        );
        assert_eq!(
            onward("https://protect-eu.mimecast.com/x?domain=fresh-site.top"),
            None
        );
        assert_eq!(
            onward("https://whois.example/s/x?domain=fresh-site.top"),
            None
        );
        // Not an address: inside a word, no host, a bare word, one underscore.
        assert_eq!(onward("https://a.example/x_https://b.example/"), None);
        assert_eq!(onward("https://a.example/?u=https-3a-2f-2fb.example"), None);
        assert_eq!(onward("https://a.example/xhttps://b.example/"), None);
        assert_eq!(onward("https://a.example/?u=https://"), None);
        assert_eq!(onward("https://a.example/?u=https://localhost/"), None);
        assert_eq!(onward("https://a.example/about-http"), None);
        let signals = |url: &str| a.analyze(url).signals();
        let s = signals("https://www.google.com/url?q=https://fresh-site.top/");
        assert!(s.contains(&Signal::PassesOnUnknown) && s.contains(&Signal::KnownPassesOnUnknown));
        let s = signals("https://fresh-site.top/go?to=https://other-site.top/");
        assert!(s.contains(&Signal::PassesOnUnknown) && !s.contains(&Signal::KnownPassesOnUnknown));
        assert!(signals("https://www.google.com/url?q=https://apple.com/")
            .contains(&Signal::PassesOnKnown));
        assert!(
            signals("https://accounts.google.com/signin?continue=https://mail.google.com/")
                .contains(&Signal::PassesOnSameSite)
        );
    }

    #[test]
    fn the_onward_address_starts_after_the_host() {
        fn at(t: &str) -> Option<&str> {
            onward_start(t).map(|i| &t[i..])
        }
        assert_eq!(
            at("https://www.google.com/url?q=https://b.top/x"),
            Some("https://b.top/x")
        );
        assert_eq!(
            at("https://l.example/l.php?u=https%3a%2f%2fb.top%2f&h=1"),
            Some("https%3a%2f%2fb.top%2f&h=1")
        );
        assert_eq!(
            at("https://x.example/u%3dhttp%253a%252f%252fb.top"),
            Some("http%253a%252f%252fb.top")
        );
        assert_eq!(
            at("https://r.example/ru=http://b.top/"),
            Some("http://b.top/")
        );
        assert_eq!(
            at("https://urldefense.com/v3/__https://b.top/x__;!!g3vk!x1$"),
            Some("https://b.top/x__;!!g3vk!x1$")
        );
        assert_eq!(
            at("https://urldefense.proofpoint.com/v2/url?u=https-3a__b.top_x&d=dw"),
            Some("https-3a__b.top_x&d=dw")
        );
        assert_eq!(at("https://a.example/x_https://b.top/"), None);
        assert_eq!(
            at("https://protect-eu.mimecast.com/s/abc?x=1&domain=b.top&y=2"),
            Some("b.top&y=2")
        );
        assert_eq!(
            at("https://protect-eu.mimecast.com/s/abc?domain=&y=2"),
            None
        );
        assert_eq!(
            at("https://protect-eu.mimecast.com/s/abc#?domain=b.top"),
            None
        );
        assert_eq!(at("https://mimecast.example/s/abc?domain=b.top"), None);
        assert_eq!(at("https://httpbin.org/get"), None);
        assert_eq!(at("https://a.example/xhttps://b.top/"), None);
        assert_eq!(at("https://a.example/"), None);
        assert_eq!(at(""), None);
    }

    #[test]
    fn the_onward_address_is_read_decoded_with_where_each_byte_comes_from() {
        // Percent-escaped: the parameter's value, decoded.
        let (t, from) = onward_text("https%3a%2f%2fb.top%2fx&h=1");
        assert_eq!(t, "https://b.top/x");
        assert_eq!((from[5], from[6], from[8]), (5, 8, 14));
        // Proofpoint v2: `_` is `/`, `-XX` a byte; the value ends at `&`.
        let tail = "https-3a__my-2dsite.top_a-5fb-3fq-3d1&d=dw";
        let (t, from) = onward_text(tail);
        assert_eq!(t, "https://my-site.top/a_b?q=1");
        assert_eq!(&tail[from[5]..from[5] + 3], "-3a");
        assert_eq!(&tail[from[10]..from[10] + 3], "-2d");
        assert_eq!(&tail[from[19]..=from[19]], "_");
        // Proofpoint v3: written plainly up to `__;`; an empty path is `/`.
        assert_eq!(
            onward_text("https://b.top/x__;!!g3vk!x1$").0,
            "https://b.top/x"
        );
        let (t, from) = onward_text("https://b.top__;!!g3vk!x1$");
        assert_eq!((t.as_str(), from.len()), ("https://b.top/", 14));
        // A bare domain (Mimecast's): its home page, up to the parameter's end.
        let (t, from) = onward_text("b.top&y=2");
        assert_eq!(t, "https://b.top/");
        assert_eq!((from[0], from[8], from[12], from[13]), (0, 0, 4, 4));
        assert_eq!(onward_text("&y=2"), (String::new(), Vec::new()));
        let (t, from) = onward_text("%e2%80%aepaypal.com");
        assert_eq!(t, "https://\u{202e}paypal.com/");
        assert_eq!((from[8], from[11], from[12]), (0, 9, 10));
        // Plain, with no end written down: the rest of the text.
        assert_eq!(onward_text("https://b.top/x&y=2").0, "https://b.top/x&y=2");
    }

    #[test]
    fn urls_split_like_a_browser_reads_them() {
        let p = split_url(" HTTPS://User@Www.Example.COM.:8443/a?b#c ").unwrap();
        assert_eq!(p.scheme.as_deref(), Some("https"));
        assert_eq!(p.userinfo.as_deref(), Some("User"));
        assert_eq!(p.host, "www.example.com");
        assert_eq!(p.port.as_deref(), Some("8443"));
        assert_eq!(p.rest, "/a?b#c");
        let p = split_url("paypal.com/signin").unwrap();
        assert_eq!((p.scheme, p.host.as_str()), (None, "paypal.com"));
        assert_eq!(
            normalize_url(" paypal.com/signin "),
            "https://paypal.com/signin"
        );
        assert_eq!(normalize_url("//cdn.example/x"), "https://cdn.example/x");
        assert_eq!(normalize_url("https://a.com "), "https://a.com/");
        assert_eq!(normalize_url("www.a.com"), "https://www.a.com/");
        assert_eq!(normalize_url("not a url"), "not a url");
        // An empty path is `/`, also before a query or fragment, with a port or a user.
        assert_eq!(normalize_url("https://a.com/"), "https://a.com/");
        assert_eq!(normalize_url("https://a.com?q=1"), "https://a.com/?q=1");
        assert_eq!(normalize_url("HTTPS://A.com#top"), "HTTPS://A.com/#top");
        assert_eq!(normalize_url("a.com:8080"), "https://a.com:8080/");
        assert_eq!(normalize_url("http://u:p@a.com"), "http://u:p@a.com/");
        assert_eq!(normalize_url("https://a.com\\x"), "https://a.com\\x");
        // Other schemes' paths are theirs.
        assert_eq!(normalize_url("ftp://a.com"), "ftp://a.com");
        assert_eq!(split_url("http://[::1]:80/").unwrap().host, "[::1]");
        for bad in [
            "",
            "not a url at all",
            "http://",
            "http://exa mple.com/",
            "http://a..b/",
            "http://a.com:x/",
            "1@\u{fffd}2.2..",
        ] {
            assert_eq!(split_url(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn web_addresses_are_told_from_other_text() {
        for ok in [
            "paypal.com/signin",
            "https://a.b.co.uk/x",
            "http://192.168.0.1/",
            "http://[::1]/",
            "HTTPS://Example.COM",
        ] {
            assert!(web_address(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("not a url at all", "no valid host name"),
            ("hello", "single word"),
            ("http://localhost/", "single word"),
            ("ftp://files.example.com/", "`ftp:` address"),
            ("javascript:alert(1)", "no valid host name"),
            ("", "no valid host name"),
        ] {
            let e = web_address(bad).unwrap_err().to_string();
            assert!(
                e.contains(why) && e.contains(&format!("`{bad}")),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn ip_hosts_in_every_notation() {
        for ip in ["192.168.1.1", "3232235777", "0x7f.0.0.1", "[::1]"] {
            assert!(is_ip_host(ip), "{ip}");
        }
        for not in ["example.com", "1.2.3.4.5", "123.com"] {
            assert!(!is_ip_host(not), "{not}");
        }
    }

    #[test]
    fn known_domains_round_trip_and_refuse_garbage() {
        let k = analyzer().known;
        assert_eq!(k.tier("google.com"), Some(0));
        assert_eq!(k.tier("paypal.com"), Some(1));
        assert_eq!(k.tier("microsoftonline.com"), Some(2));
        assert_eq!(k.tier("secure-id-check.com"), None);
        let bytes = k.to_bytes();
        assert_eq!(KnownDomains::from_bytes(&bytes).unwrap(), k);
        assert!(KnownDomains::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        assert!(KnownDomains::from_bytes(&bytes[..bytes.len() - 4]).is_err());
        assert!(KnownDomains::from_bytes(b"KNOWNDM1\xff\xff\xff\xff").is_err());
        assert!(KnownDomains::from_bytes(b"nope").is_err());
    }

    #[test]
    fn the_classic_tricks_are_seen() {
        let an = analyzer();
        let a = an.analyze("https://appleid.apple.com.secure-id-check.com/");
        assert_eq!(a.brand_in_subdomain.as_deref(), Some("apple.com"));
        assert_eq!(a.subdomain_labels, 3);
        assert!(a.signals().contains(&Signal::Subdomains3Plus));
        let a = an.analyze("https://steamcommunlty.com/tradeoffer/new/?partner=123");
        assert_eq!(a.lookalike.as_deref(), Some("steamcommunity.com"));
        let a = an.analyze("https://micros0ft-login.com/");
        assert_eq!(a.lookalike.as_deref(), Some("microsoft.com"));
        assert_eq!(a.domain_hyphens, 1);
        let a = an.analyze("https://xn--pypal-4ve.com/signin");
        assert!(a.punycode);
        assert_eq!(a.lookalike.as_deref(), Some("paypal.com"));
        let a = an.analyze("https://pаypal.com/signin");
        assert!(a.non_ascii_host && a.punycode);
        assert_eq!(a.host.as_deref(), Some("xn--pypal-4ve.com"));
        assert_eq!(a.lookalike.as_deref(), Some("paypal.com"));
        let a = an.analyze("http://45.137.21.9/www.chase.com/auth/");
        assert!(a.ip_host && a.registrable_domain.is_none());
        assert!(a.signals().contains(&Signal::IpHost));
        let a = an.analyze("https://paypal-secure-login.000webhostapp.com/");
        assert!(a.free_hosting);
        assert_eq!(a.brand_in_subdomain.as_deref(), Some("paypal.com"));
        let a = an.analyze("https://chase-verify.github.io/");
        assert!(a.private_suffix);
        assert_eq!(
            a.registrable_domain.as_deref(),
            Some("chase-verify.github.io")
        );
        let a = an.analyze("https://paypal-account-verify.com/");
        assert_eq!(a.brand_in_domain.as_deref(), Some("paypal.com"));
    }

    #[test]
    fn a_known_domain_spelled_out_before_the_real_one_is_a_brand_in_the_subdomain() {
        let an = analyzer();
        // Not in the brand list, but a known domain: written inside the subdomain, or running
        // into the registrable domain up to a hyphen.
        for (url, shown) in [
            ("https://google.com.gift-trade.ru/", "google.com"),
            ("https://accounts.google.com-gift.ru/signin", "google.com"),
            ("https://m.google.com-----login.example.net/", "google.com"),
            (
                "https://a.b.microsoftonline.com-x.top/",
                "microsoftonline.com",
            ),
            (
                "https://000webhostapp.com.verify.example/",
                "000webhostapp.com",
            ),
        ] {
            let a = an.analyze(url);
            assert_eq!(a.brand_in_subdomain.as_deref(), Some(shown), "{url}");
            assert!(a.signals().contains(&Signal::BrandInSubdomain), "{url}");
        }
        // The URL's own domain, a known domain under a country's suffix, a name that only
        // starts like a known domain, and a label that is not the start of one are not.
        for url in [
            "https://www.google.com/",
            "https://google.com.au/",
            "https://www.google.co.uk/maps",
            "https://news.google-analytics.example/",
            "https://mygoogle.com.example.net/",
            "https://google.community.example/",
        ] {
            let a = an.analyze(url);
            assert_eq!(a.brand_in_subdomain, None, "{url}");
        }
    }

    #[test]
    fn a_top_sites_subdomains_are_its_owners_unless_anyone_can_publish_there() {
        let brands = Brands::parse("paypal\tpaypal.com\nchrome\tchrome.com\n").unwrap();
        let analyzer_with = |ranked: &[&str]| {
            UrlAnalyzer::new(
                KnownDomains::from_ranked(ranked.iter().copied(), &[2, 3, 100]),
                brands.clone(),
            )
        };
        // `signin.aws` is a known domain of its own (on Amazon's TLD), `chrome` a brand.
        let an = analyzer_with(&[
            "amazon.com",
            "google.com",
            "signin.aws",
            "000webhostapp.com",
        ]);
        for url in [
            "https://signin.aws.amazon.com/signin?redirect_uri=https%3A%2F%2Fconsole.aws.amazon.com%2F",
            "https://chrome.google.com/webstore/detail/x",
            "https://paypal.google.com/",
        ] {
            assert_eq!(an.analyze(url).brand_in_subdomain, None, "{url}");
        }
        // A hosting service among the top sites, and a site below them, still raise it.
        let a = an.analyze("https://paypal.000webhostapp.com/");
        assert_eq!(a.brand_in_subdomain.as_deref(), Some("paypal.com"));
        let an = analyzer_with(&["google.com", "signin.aws", "amazon.com"]);
        let a = an.analyze("https://signin.aws.amazon.com/signin");
        assert_eq!(a.known_tier, Some(1));
        assert_eq!(a.brand_in_subdomain.as_deref(), Some("signin.aws"));
    }

    #[test]
    fn real_pages_of_known_sites_raise_no_brand_signal() {
        let an = analyzer();
        for url in [
            "https://www.facebook.com/login.php",
            "https://appleid.apple.com/sign-in",
            "https://www.paypal.com/signin",
            "https://steamcommunity.com/login/home/",
            "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        ] {
            let a = an.analyze(url);
            assert!(a.known_tier.is_some(), "{url}");
            assert_eq!(a.brand_in_subdomain, None, "{url}");
            assert_eq!(a.lookalike, None, "{url}");
            assert_eq!(a.brand_in_domain, None, "{url}");
        }
    }

    #[test]
    fn signals_have_distinct_codes_and_indices() {
        let codes: std::collections::HashSet<_> = Signal::ALL.iter().map(|s| s.code()).collect();
        assert_eq!(codes.len(), Signal::ALL.len());
        for (i, s) in Signal::ALL.iter().enumerate() {
            assert_eq!(s.index(), i);
        }
        assert_eq!(
            analyzer().analyze("not a url").signals(),
            vec![Signal::Unparsable]
        );
    }

    #[test]
    fn edit_distance_is_bounded() {
        assert_eq!(edit_distance_within("kitten", "sitting", 3), Some(3));
        assert_eq!(edit_distance_within("kitten", "sitting", 2), None);
        assert_eq!(edit_distance_within("", "abc", 3), Some(3));
        assert_eq!(fold_lookalikes("arnazon"), "amazon");
    }
}
