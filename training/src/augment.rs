//! Meaning-preserving rewrites of a URL, used to augment training data.
//!
//! [`wrap`] puts a URL inside a link wrapper or open redirect of a widely used site, as mail
//! filters, social networks and search engines rewrite links, and as phishing mails hide theirs:
//! the wrapped URL keeps its label, so a model learns that such an address is what its target is.
//!
//! The shared data has a scheme bias (36% of legitimate vs 2% of phishing URLs use https), and
//! its legitimate URLs often end in `/`: a model can learn those as cues. Training on rewritten
//! copies (same label) teaches it that they do not change what a URL is. `tests/quality.rs`
//! measures how often these rewrites flip the released model's verdict.

use rand::Rng;

/// `http://` <-> `https://`; `None` for other schemes.
pub fn toggle_scheme(url: &str) -> Option<String> {
    if let Some(rest) = url.strip_prefix("https://") {
        Some(format!("http://{rest}"))
    } else {
        url.strip_prefix("http://")
            .map(|rest| format!("https://{rest}"))
    }
}

/// Adds `www.` after the scheme, or removes it; `None` without a scheme.
pub fn toggle_www(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    Some(match rest.strip_prefix("www.") {
        Some(bare) => format!("{scheme}://{bare}"),
        None => format!("{scheme}://www.{rest}"),
    })
}

/// Adds a trailing `/`, or removes it.
pub fn toggle_trailing_slash(url: &str) -> String {
    url.strip_suffix('/')
        .map_or_else(|| format!("{url}/"), str::to_string)
}

/// Real link-wrapper and redirect formats of widely used sites (all in the Tranco top 100k),
/// `{raw}` for the target as written, `{enc}` for it percent-encoded. None of them is a site of
/// `model/checks/redirects.txt` or `redirect-tricks.txt`, which stay unseen.
pub const WRAPPERS: [&str; 17] = [
    "https://href.li/?{raw}",
    "https://www.pinterest.com/offsite/?token=512-883&url={enc}&pin=10492",
    "https://steamcommunity.com/linkfilter/?url={raw}",
    "https://duckduckgo.com/l/?uddg={enc}&rut=4f1c",
    "https://medium.com/r/?url={enc}",
    "https://link.zhihu.com/?target={enc}",
    "https://deref-gmx.net/mail/client/q8s2/dereferrer/?redirectUrl={enc}",
    "https://protect2.fireeye.com/v1/url?k=3c1d&q=9b2e&e=71fa&u={enc}",
    "https://slack-redir.net/link?url={enc}",
    "https://click.linksynergy.com/deeplink?id=Qz8&mid=2149&murl={enc}",
    "https://go.redirectingat.com/?id=921X15&xs=1&url={enc}",
    "https://ok.ru/dk?st.cmd=outLinkWarning&st.rfn={enc}",
    "https://www.jdoqocy.com/click-1003-2041?url={enc}",
    "https://disq.us/url?url={enc}%3AxQ2&cuid=3811",
    "https://go.skimresources.com/?id=3301X95&xs=1&url={enc}",
    "https://nam.safelink.emails.azure.net/redirect/?destination={enc}&p=bT0x",
    "https://www.anrdoezrs.net/links/9911/type/dlg/{raw}",
];

/// `s` percent-encoded: every byte but `A-Z a-z 0-9 - . _ ~` as `%XX`.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `url` (given a scheme, see [`lib_ml::analysis::normalize_url`]) inside wrapper `which` of
/// [`WRAPPERS`].
pub fn wrap(url: &str, which: usize) -> String {
    let url = lib_ml::analysis::normalize_url(url);
    let template = WRAPPERS[which % WRAPPERS.len()];
    template
        .replace("{raw}", &url)
        .replace("{enc}", &percent_encode(&url))
}

/// With probability `p`, one of the rewrites above chosen uniformly (`None`: keep the URL).
pub fn maybe_rewrite(url: &str, p: f64, rng: &mut impl Rng) -> Option<String> {
    if p <= 0.0 || !rng.gen_bool(p.min(1.0)) {
        return None;
    }
    match rng.gen_range(0..3) {
        0 => toggle_scheme(url),
        1 => toggle_www(url),
        _ => Some(toggle_trailing_slash(url)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn rewrites_toggle_both_ways() {
        assert_eq!(toggle_scheme("http://a.b/").unwrap(), "https://a.b/");
        assert_eq!(toggle_scheme("https://a.b/").unwrap(), "http://a.b/");
        assert_eq!(toggle_scheme("ftp://a.b/"), None);
        assert_eq!(toggle_www("http://a.b").unwrap(), "http://www.a.b");
        assert_eq!(toggle_www("http://www.a.b").unwrap(), "http://a.b");
        assert_eq!(toggle_www("a.b"), None);
        assert_eq!(toggle_trailing_slash("a.b/c"), "a.b/c/");
        assert_eq!(toggle_trailing_slash("a.b/c/"), "a.b/c");
    }

    #[test]
    fn wrapped_urls_pass_on_to_their_target() {
        let analyzer = lib_ml::analysis::UrlAnalyzer::default();
        for which in 0..WRAPPERS.len() {
            let w = wrap("paypal-verify.example.top/signin?a=1&b=2", which);
            let a = analyzer.analyze(&w);
            let onward = a
                .onward
                .as_ref()
                .unwrap_or_else(|| panic!("{w}: no onward address"));
            assert_eq!(onward.domain, "example.top", "{w}");
            assert!(w.starts_with("https://"), "{w}");
        }
        assert_eq!(
            percent_encode("https://a.b/c?d=e f"),
            "https%3A%2F%2Fa.b%2Fc%3Fd%3De%20f"
        );
    }

    #[test]
    fn rewrite_rate_follows_p() {
        let mut rng = StdRng::seed_from_u64(1);
        let n = 10_000;
        let changed = (0..n)
            .filter(|_| maybe_rewrite("http://a.b/", 0.3, &mut rng).is_some())
            .count();
        assert!((2700..3300).contains(&changed), "{changed} of {n}");
        assert!(maybe_rewrite("http://a.b/", 0.0, &mut rng).is_none());
    }
}
