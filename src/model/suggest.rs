//! "Did you mean ...?": the known name nearest to one that was mistyped (a profile, a role), so
//! an error names the fix rather than only the mistake.

/// The candidate nearest to `typed`, if one is near enough to be what was meant: at most two
/// edits away (a swap of neighbours is one) and fewer edits than `typed` has characters, ignoring
/// case. Ties go to the first candidate.
pub fn closest<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let typed = typed.to_lowercase();
    let limit = 2.min(typed.chars().count().saturating_sub(1));
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let distance = strsim::damerau_levenshtein(&typed, &candidate.to_lowercase());
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn a_dropped_letter_is_found() {
        assert_eq!(
            closest("identiy", ["default", "identity"]),
            Some("identity")
        );
    }

    #[test]
    fn swapped_neighbours_are_one_mistake() {
        assert_eq!(closest("idnetity", ["identity"]), Some("identity"));
    }

    #[test]
    fn case_is_not_a_mistake() {
        assert_eq!(closest("Prod", ["dev", "prod"]), Some("prod"));
    }

    #[test]
    fn the_nearest_of_several_wins() {
        assert_eq!(closest("stagin", ["stage", "staging"]), Some("staging"));
    }

    #[test]
    fn nothing_near_is_no_suggestion() {
        assert_eq!(closest("identity", ["default", "work"]), None);
        assert_eq!(closest("ab", ["xy"]), None);
    }

    #[test]
    fn a_one_letter_name_is_never_corrected() {
        assert_eq!(closest("a", ["b"]), None);
    }
}
