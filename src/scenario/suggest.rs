//! "Did you mean ...?": the closest known word by edit distance.

/// Levenshtein distance, on chars.
pub(crate) fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a plausible typo.
pub(crate) fn closest<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let limit = (word.chars().count() / 3).clamp(1, 3);
    let lower = word.to_lowercase();
    let strip = |s: &str| s.replace(['_', '-', '.'], "");
    candidates
        .into_iter()
        .map(|c| {
            let cl = c.to_lowercase();
            let d = distance(&lower, &cl);
            // A missing or extra `_` is a typo too: `thinktime` ~ `think_time`.
            let d2 = distance(&strip(&lower), &strip(&cl));
            (d.min(d2), d, c)
        })
        .filter(|&(score, _, _)| score <= limit)
        .min_by_key(|&(score, d, _)| (score, d))
        .map(|(_, _, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("same", "same"), 0);
    }

    #[test]
    fn suggestions() {
        let keys = ["think_time", "timeout", "stages", "model"];
        assert_eq!(closest("thinktime", keys), Some("think_time"));
        assert_eq!(closest("think-time", keys), Some("think_time"));
        assert_eq!(closest("stage", keys), Some("stages"));
        assert_eq!(closest("timeot", keys), Some("timeout"));
        assert_eq!(closest("zzzzzz", keys), None);
    }
}
