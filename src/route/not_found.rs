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

    /// The patterns one segment away from `path`, in registration order, at most [`MAX_NEAR`].
    pub fn nearest(&self, path: &str) -> Vec<Near> {
        let request: Vec<&str> = path.split('/').collect();
        let mut out = Vec::new();
        for (segs, entry) in &self.patterns {
            if out.len() == MAX_NEAR {
                break;
            }
            if let Some(why) = one_off(&request, segs) {
                out.push(Near { entry: *entry, why });
            }
        }
        out
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

/// A typo: equal but for letter case, or an edit distance of at most a third of the length (at least 1).
fn similar(a: &str, b: &str) -> bool {
    if a.eq_ignore_ascii_case(b) {
        return true;
    }
    let longest = a.chars().count().max(b.chars().count());
    if longest > 64 {
        return false;
    }
    levenshtein(a, b) <= (longest / 3).max(1)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb { prev } else { 1 + prev.min(cur).min(row[j]) };
            prev = cur;
        }
    }
    row[b.len()]
}

/// Says how `request` is one segment away from `pattern`, or none when it is not.
fn one_off(request: &[&str], pattern: &[Seg]) -> Option<String> {
    // A catch-all takes the rest of the path: compare the segments before it.
    if let Some(Seg::CatchAll(_)) = pattern.last() {
        let fixed = &pattern[..pattern.len() - 1];
        let head = &request[..request.len().min(fixed.len())];
        let exact = head.len() == fixed.len() && head.iter().zip(fixed).all(|(g, w)| fit(g, w) == Fit::Same);
        let rest_empty = request.len() <= fixed.len() || request[fixed.len()..].iter().all(|s| s.is_empty());
        if exact && rest_empty {
            let prefix: Vec<String> = fixed.iter().map(Seg::show).collect();
            return Some(format!("the route wants more after `{}/`", prefix.join("/")));
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
            Seg::Literal(w) => format!("the path has `{}` where the route has `{w}`", request[i]),
            p => format!("the path has an empty segment where the route has `{}`", p.show()),
        });
    }
    // One segment more or less: find the one place where skipping it makes the rest line up.
    let (long, short_is_request) = if n > m { (n, false) } else { (m, true) };
    for skip in 0..long {
        let lines_up = if short_is_request {
            (0..n).all(|i| fit(request[i], &pattern[if i < skip { i } else { i + 1 }]) == Fit::Same)
        } else {
            (0..m).all(|i| fit(request[if i < skip { i } else { i + 1 }], &pattern[i]) == Fit::Same)
        };
        if lines_up {
            let trailing = skip == long - 1;
            return Some(match (short_is_request, trailing) {
                (false, true) if request[skip].is_empty() => "the path ends with `/`, the route does not".to_owned(),
                (true, true) if matches!(&pattern[skip], Seg::Literal(s) if s.is_empty()) => {
                    "the route ends with `/`, the path does not".to_owned()
                }
                (false, _) => format!("the path has an extra segment `{}`", request[skip]),
                (true, _) => format!("the path lacks the segment `{}`", pattern[skip].show()),
            });
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
        assert_eq!(near(&["/users/{id}"], "/users/")[0].1, "the path has an empty segment where the route has `{id}`");
        assert_eq!(near(&["/users"], "/users/")[0].1, "the path ends with `/`, the route does not");
        assert_eq!(near(&["/users/"], "/users")[0].1, "the route ends with `/`, the path does not");
        assert_eq!(near(&["/api/users"], "/users")[0].1, "the path lacks the segment `api`");
        assert_eq!(near(&["/users"], "/v1/users")[0].1, "the path has an extra segment `v1`");
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
