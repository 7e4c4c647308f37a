//! The near-miss 404: when no route answers, say which routes came nearest and why they did not match.
//!
//! A route is near when its path is one segment away from the request's: one segment differs by a typo (a small
//! edit distance or only in case), one segment is missing or extra, or only a trailing slash differs. The method of
//! such a route may differ too; that is said as well. Routes whose path matched but whose `match` conditions failed
//! are listed by the router with the condition that failed.

/// One segment of a route pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Literal(String),
    /// `{name}`, or a segment mixing text and a parameter: matches any non-empty segment.
    Param(String),
    /// `{*name}`: matches the rest of the path.
    CatchAll(String),
}

impl Seg {
    fn show(&self) -> String {
        match self {
            Seg::Literal(s) => s.clone(),
            Seg::Param(s) | Seg::CatchAll(s) => s.clone(),
        }
    }
}

/// The patterns of a router, split into segments once, for near-miss search.
#[derive(Debug, Default)]
pub struct NearMiss {
    patterns: Vec<(Vec<Seg>, usize)>,
}

/// A route pattern near a request's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Near {
    /// The value the pattern was registered with (the router's entry index).
    pub entry: usize,
    /// How the path differs, in words.
    pub why: String,
}

/// The most near routes a 404 lists.
pub const MAX_NEAR: usize = 5;

impl NearMiss {
    /// Splits every `(pattern, entry)` into segments.
    pub fn new<'a>(patterns: impl IntoIterator<Item = (&'a str, usize)>) -> Self {
        NearMiss { patterns: patterns.into_iter().map(|(p, e)| (split_pattern(p), e)).collect() }
    }

    /// The patterns one segment away from `path`, at most [`MAX_NEAR`]: the closest first (letter case only, then
    /// a typo, then a segment more or less), in registration order among equals.
    pub fn nearest(&self, path: &str) -> Vec<Near> {
        let request: Vec<&str> = path.split('/').collect();
        let mut found: Vec<(u8, Near)> = Vec::new();
        for (segs, entry) in &self.patterns {
            if let Some((rank, why)) = one_off(&request, segs) {
                found.push((rank, Near { entry: *entry, why }));
                // Nothing ranks before a letter-case miss: enough of those end the search.
                if found.iter().filter(|(r, _)| *r == 0).count() == MAX_NEAR {
                    break;
                }
            }
        }
        found.sort_by_key(|(rank, _)| *rank);
        found.into_iter().take(MAX_NEAR).map(|(_, near)| near).collect()
    }
}

fn split_pattern(pattern: &str) -> Vec<Seg> {
    pattern
        .split('/')
        .map(|s| {
            let unescaped = s.replace("{{", "\u{0}").replace("}}", "\u{1}");
            if let Some(name) = unescaped.strip_prefix("{*").and_then(|n| n.strip_suffix('}')) {
                Seg::CatchAll(format!("{{*{name}}}"))
            } else if unescaped.contains('{') {
                Seg::Param(s.to_owned())
            } else {
                Seg::Literal(unescaped.replace('\u{0}', "{").replace('\u{1}', "}"))
            }
        })
        .collect()
}

/// How a request segment compares with a pattern segment.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fit {
    Same,
    /// Differs a little (a typo, letter case, an empty value for a parameter): one edit.
    Close,
    Different,
}

fn fit(got: &str, want: &Seg) -> Fit {
    match want {
        Seg::Literal(w) if w == got => Fit::Same,
        Seg::Literal(w) if similar(got, w) => Fit::Close,
        Seg::Literal(_) => Fit::Different,
        Seg::Param(_) | Seg::CatchAll(_) if got.is_empty() => Fit::Close,
        Seg::Param(_) | Seg::CatchAll(_) => Fit::Same,
    }
}

/// A typo: equal but for letter case, or a small edit distance counting a swap of two letters as one edit.
fn similar(a: &str, b: &str) -> bool {
    crate::util::text::is_typo_of(a, b)
}

/// Says how `request` is one segment away from `pattern`, with a rank (0 nearest), or none when it is not.
fn one_off(request: &[&str], pattern: &[Seg]) -> Option<(u8, String)> {
    // A catch-all takes the rest of the path: compare the segments before it.
    if let Some(Seg::CatchAll(_)) = pattern.last() {
        let fixed = &pattern[..pattern.len() - 1];
        let head = &request[..request.len().min(fixed.len())];
        let exact = head.len() == fixed.len() && head.iter().zip(fixed).all(|(g, w)| fit(g, w) == Fit::Same);
        let rest_empty = request.len() <= fixed.len() || request[fixed.len()..].iter().all(|s| s.is_empty());
        if exact && rest_empty {
            let prefix: Vec<String> = fixed.iter().map(Seg::show).collect();
            return Some((2, format!("the route wants more after `{}/`", prefix.join("/"))));
        }
        return if request.len() > fixed.len() { one_off(head, fixed) } else { one_off(request, fixed) };
    }
    let (n, m) = (request.len(), pattern.len());
    if n.abs_diff(m) > 1 {
        return None;
    }
    if n == m {
        let mut off = None;
        for (i, (got, want)) in request.iter().zip(pattern).enumerate() {
            match fit(got, want) {
                Fit::Same => {}
                Fit::Different => return None,
                Fit::Close if off.is_some() => return None,
                Fit::Close => off = Some(i),
            }
        }
        let i = off?;
        return Some(match &pattern[i] {
            Seg::Literal(w) if w.eq_ignore_ascii_case(request[i]) => {
                (0, format!("the path has `{}` where the route has `{w}`: letter case differs", request[i]))
            }
            Seg::Literal(w) => (1, format!("the path has `{}` where the route has `{w}`", request[i])),
            p => (1, format!("the path has an empty segment where the route has `{}`", p.show())),
        });
    }
    // One segment more or less: find the one place where skipping it makes the rest line up.
    let (long, short_is_request) = if n > m { (n, false) } else { (m, true) };
    // From the end: when a parameter could take either of two segments, the later one is the extra (or missing)
    // one, as in `/users/7/extra` against `/users/{id}`.
    for skip in (0..long).rev() {
        let lines_up = if short_is_request {
            (0..n).all(|i| fit(request[i], &pattern[if i < skip { i } else { i + 1 }]) == Fit::Same)
        } else {
            (0..m).all(|i| fit(request[if i < skip { i } else { i + 1 }], &pattern[i]) == Fit::Same)
        };
        if lines_up {
            let trailing = skip == long - 1;
            return Some((
                2,
                match (short_is_request, trailing) {
                    (false, true) if request[skip].is_empty() => {
                        "the path ends with `/`, the route does not".to_owned()
                    }
                    (true, true) if matches!(&pattern[skip], Seg::Literal(s) if s.is_empty()) => {
                        "the route ends with `/`, the path does not".to_owned()
                    }
                    (false, _) if request[skip].is_empty() => "the path has a double `/` (an empty segment)".to_owned(),
                    (true, _) if matches!(&pattern[skip], Seg::Literal(s) if s.is_empty()) => {
                        "the route has a double `/` (an empty segment), the path does not".to_owned()
                    }
                    (false, _) => format!("the path has an extra segment `{}`", request[skip]),
                    (true, _) => format!("the path lacks the segment `{}`", pattern[skip].show()),
                },
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn near(patterns: &[&str], path: &str) -> Vec<(usize, String)> {
        let nm = NearMiss::new(patterns.iter().enumerate().map(|(i, p)| (*p, i)));
        nm.nearest(path).into_iter().map(|n| (n.entry, n.why)).collect()
    }

    #[test]
    fn typos_case_and_missing_or_extra_segments_are_near() {
        assert_eq!(
            near(&["/users/{id}"], "/user/7"),
            vec![(0, "the path has `user` where the route has `users`".into())]
        );
        assert_eq!(near(&["/Users"], "/users")[0].0, 0);
        assert_eq!(near(&["/users/{id}"], "/usres/7")[0].1, "the path has `usres` where the route has `users`");
        assert_eq!(near(&["/users/{id}"], "/users/7/extra")[0].1, "the path has an extra segment `extra`");
        assert_eq!(
            near(&["/user", "/Users"], "/users"),
            vec![
                (1, "the path has `users` where the route has `Users`: letter case differs".into()),
                (0, "the path has `users` where the route has `user`".into()),
            ]
        );
        assert_eq!(near(&["/users/{id}"], "/users/")[0].1, "the path has an empty segment where the route has `{id}`");
        assert_eq!(near(&["/users"], "/users/")[0].1, "the path ends with `/`, the route does not");
        assert_eq!(near(&["/users/"], "/users")[0].1, "the route ends with `/`, the path does not");
        assert_eq!(near(&["/api/users"], "/users")[0].1, "the path lacks the segment `api`");
        assert_eq!(near(&["/users"], "/v1/users")[0].1, "the path has an extra segment `v1`");
        assert_eq!(near(&["/users"], "//users")[0].1, "the path has a double `/` (an empty segment)");
        assert_eq!(near(&["/a//b"], "/a/b")[0].1, "the route has a double `/` (an empty segment), the path does not");
        assert_eq!(near(&["/files/{*rest}"], "/file/a/b")[0].1, "the path has `file` where the route has `files`");
        assert_eq!(near(&["/files/{*rest}"], "/files/")[0].1, "the route wants more after `/files/`");
        assert_eq!(near(&["/files/{*rest}"], "/files")[0].1, "the route wants more after `/files/`");
    }

    #[test]
    fn unrelated_paths_are_not_near() {
        assert!(near(&["/hello", "/about"], "/nope").is_empty());
        assert!(near(&["/users/{id}/posts"], "/orders/7/items").is_empty());
        assert!(near(&["/a/b/c"], "/a").is_empty());
    }
}
