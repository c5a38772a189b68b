//! Route matching as Spin's HTTP trigger does it: exact routes, and `/prefix/...` wildcards that
//! match the prefix itself and everything below it; an exact route beats a wildcard, a longer
//! prefix beats a shorter one.

/// A matched route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// The component id.
    pub component: String,
    /// The route as written in `spin.toml`.
    pub route: String,
    /// The part of the path the route fixed (without `/...`).
    pub base: String,
    /// The rest of the path after `base` (Spin's `spin-path-info`).
    pub path_info: String,
}

/// The routing table.
#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<(String, String)>,
}

impl Router {
    /// A router over `(route, component)` pairs.
    pub fn new(routes: impl IntoIterator<Item = (String, String)>) -> Router {
        Router {
            routes: routes.into_iter().collect(),
        }
    }

    /// The component serving `path`, if any.
    pub fn route(&self, path: &str) -> Option<Match> {
        let mut best: Option<(usize, Match)> = None;
        for (route, component) in &self.routes {
            let (score, m) = if let Some(prefix) = route.strip_suffix("/...") {
                let rest = if prefix.is_empty() {
                    Some(path)
                } else {
                    path.strip_prefix(prefix)
                };
                match rest {
                    Some(rest) if rest.is_empty() || rest.starts_with('/') || prefix.is_empty() => {
                        (2 * prefix.len(), (prefix.to_string(), rest.to_string()))
                    }
                    _ => continue,
                }
            } else if path == route || path.strip_suffix('/') == Some(route.as_str()) {
                (2 * route.len() + 1, (route.clone(), String::new()))
            } else {
                continue;
            };
            if best.as_ref().is_none_or(|(s, _)| score > *s) {
                let (base, path_info) = m;
                best = Some((
                    score,
                    Match {
                        component: component.clone(),
                        route: route.clone(),
                        base,
                        path_info,
                    },
                ));
            }
        }
        best.map(|(_, m)| m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        Router::new(
            [
                ("/...", "app"),
                ("/predict", "ms"),
                ("/predict/...", "ms"),
                ("/v2/...", "ms"),
                ("/api/...", "app"),
            ]
            .map(|(r, c)| (r.to_string(), c.to_string())),
        )
    }

    #[test]
    fn exact_route_beats_wildcards() {
        assert_eq!(router().route("/predict").unwrap().route, "/predict");
    }

    #[test]
    fn wildcard_matches_prefix_and_below_with_path_info() {
        let m = router().route("/v2/models/phishing").unwrap();
        assert_eq!(
            (m.component.as_str(), m.base.as_str(), m.path_info.as_str()),
            ("ms", "/v2", "/models/phishing")
        );
        assert_eq!(router().route("/v2").unwrap().component, "ms");
    }

    #[test]
    fn wildcard_does_not_match_a_longer_segment() {
        // `/api/...` must not catch `/apiary`: it falls through to the root wildcard.
        assert_eq!(router().route("/apiary").unwrap().route, "/...");
    }

    #[test]
    fn root_wildcard_catches_the_rest_and_no_route_is_none() {
        assert_eq!(router().route("/index.html").unwrap().component, "app");
        assert_eq!(
            Router::new([("/a".to_string(), "x".to_string())]).route("/b"),
            None
        );
    }
}
