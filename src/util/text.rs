//! Words for messages: how far apart two names are, and which known name a typo meant.

/// The edit distance between `a` and `b` counting a swap of two neighbouring characters as one edit (optimal string
/// alignment), so that `usres` is one edit from `users`, as a reader sees it. Characters, not bytes.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // Three rows: the one before the previous is what a transposition looks back to.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            cur[j] = d;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Whether `got` is a likely typo of `want`: equal but for letter case, or at most a third of the length apart
/// (at least one edit). Names longer than 64 characters are compared only for case, to bound the work.
pub(crate) fn is_typo_of(got: &str, want: &str) -> bool {
    if got.eq_ignore_ascii_case(want) {
        return true;
    }
    let longest = got.chars().count().max(want.chars().count());
    longest <= 64 && edit_distance(got, want) <= (longest / 3).max(1)
}

/// The known name nearest to `got`, if it is a likely typo of one (see [`is_typo_of`]).
pub(crate) fn did_you_mean<'a>(got: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known.into_iter().filter(|k| is_typo_of(got, k)).min_by_key(|k| edit_distance(&got.to_ascii_lowercase(), k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_swap_is_one_edit() {
        assert_eq!(edit_distance("usres", "users"), 1);
        assert_eq!(edit_distance("stauts", "status"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("é", "e"), 1);
    }

    #[test]
    fn the_nearest_known_name_is_suggested() {
        assert_eq!(did_you_mean("stauts", ["path", "status", "headers"]), Some("status"));
        assert_eq!(did_you_mean("routes", ["include", "server", "route"]), Some("route"));
        assert_eq!(did_you_mean("zzz", ["path", "status"]), None);
    }
}
