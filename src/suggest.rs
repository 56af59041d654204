//! "Did you mean ...?": the closest known word by edit distance (Levenshtein, from
//! `strsim`). Shared by the scenario checks and the criteria parser.

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
            let d = strsim::levenshtein(&lower, &cl);
            // A missing or extra `_` is a typo too: `thinktime` ~ `think_time`.
            let d2 = strsim::levenshtein(&strip(&lower), &strip(&cl));
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
    fn suggestions() {
        let keys = ["think_time", "timeout", "stages", "model"];
        assert_eq!(closest("thinktime", keys), Some("think_time"));
        assert_eq!(closest("think-time", keys), Some("think_time"));
        assert_eq!(closest("stage", keys), Some("stages"));
        assert_eq!(closest("timeot", keys), Some("timeout"));
        assert_eq!(closest("zzzzzz", keys), None);
    }
}
