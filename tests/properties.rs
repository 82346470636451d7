//! Property tests for the validation and token code: what holds for every input, not just the
//! ones a person thought of.

use fintors::ec2::tokens::{TokenError, Tokens};
use fintors::model::{Alias, RoleArn, SessionName};
use proptest::prelude::*;

proptest! {
    #[test]
    fn aliases_of_legal_characters_and_length_are_accepted(s in "[A-Za-z0-9_+=,.@-]{1,64}") {
        let alias = Alias::parse(&s).unwrap();
        prop_assert_eq!(alias.as_str(), s.as_str());
    }

    #[test]
    fn aliases_with_any_other_character_are_refused(
        prefix in "[A-Za-z0-9_+=,.@-]{0,10}",
        bad in "[^A-Za-z0-9_+=,.@-]",
        suffix in "[A-Za-z0-9_+=,.@-]{0,10}",
    ) {
        let s = format!("{prefix}{bad}{suffix}");
        prop_assert!(Alias::parse(&s).is_err());
    }

    #[test]
    fn overlong_names_are_refused(s in "[A-Za-z0-9_+=,.@-]{65,80}") {
        prop_assert!(Alias::parse(&s).is_err());
        prop_assert!(SessionName::parse(&s).is_err());
    }

    #[test]
    fn session_names_need_two_characters(s in "[A-Za-z0-9_+=,.@-]{0,1}") {
        prop_assert!(SessionName::parse(&s).is_err());
    }

    #[test]
    fn well_formed_role_arns_parse_into_their_parts(
        partition in "aws|aws-cn|aws-us-gov",
        account in "[0-9]{12}",
        path in "(/[a-z0-9]{1,8}){0,3}/",
        name in "[A-Za-z0-9_+=,.@-]{1,64}",
    ) {
        let arn = format!("arn:{partition}:iam::{account}:role{path}{name}");
        let parsed = RoleArn::parse(&arn).unwrap();
        prop_assert_eq!(parsed.partition(), partition.as_str());
        prop_assert_eq!(parsed.account_id(), account.as_str());
        prop_assert_eq!(parsed.role_name(), name.as_str());
        prop_assert_eq!(parsed.as_str(), arn.as_str());
    }

    #[test]
    fn arns_with_a_wrong_account_are_refused(account in "[0-9]{0,11}|[0-9]{13,14}|[0-9]{5}[a-z][0-9]{6}") {
        let arn = format!("arn:aws:iam::{account}:role/name");
        prop_assert!(RoleArn::parse(&arn).is_err());
    }

    #[test]
    fn arbitrary_text_never_panics_the_validators(s in ".{0,300}") {
        let _ = Alias::parse(&s);
        let _ = SessionName::parse(&s);
        let _ = RoleArn::parse(&s);
    }

    #[test]
    fn tokens_verify_with_their_remaining_lifetime(
        key in any::<[u8; 32]>(),
        ttl in 1u32..=21_600,
        now in 0i64..4_000_000_000,
        elapsed in 0u32..=21_600,
    ) {
        let token = Tokens::from_key(key).issue(ttl, now);
        let later = now + i64::from(elapsed);
        // A daemon that issued the token remembers it; one restarted since checks its MAC:
        // both must agree.
        let issuer = Tokens::from_key(key);
        issuer.issue(ttl, now);
        for tokens in [issuer, Tokens::from_key(key)] {
            if elapsed < ttl {
                prop_assert_eq!(tokens.verify(&token, later), Ok(ttl - elapsed));
            } else {
                prop_assert_eq!(tokens.verify(&token, later), Err(TokenError::Expired));
            }
        }
    }

    #[test]
    fn any_altered_token_is_refused(
        key in any::<[u8; 32]>(),
        index in any::<prop::sample::Index>(),
        replacement in "[A-Za-z0-9_-]",
    ) {
        // The issuer remembers the token: a forgery must fail beside it as well as alone.
        let tokens = Tokens::from_key(key);
        let token = tokens.issue(600, 1_000);
        let i = index.index(token.len());
        let mut altered: Vec<char> = token.chars().collect();
        prop_assume!(altered[i].to_string() != replacement);
        altered[i] = replacement.chars().next().unwrap();
        let altered: String = altered.into_iter().collect();
        prop_assert!(tokens.verify(&altered, 1_000).is_err());
        prop_assert!(Tokens::from_key(key).verify(&altered, 1_000).is_err());
    }

    #[test]
    fn tokens_from_another_key_are_refused(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
        prop_assume!(a != b);
        let token = Tokens::from_key(a).issue(600, 1_000);
        prop_assert_eq!(Tokens::from_key(b).verify(&token, 1_000), Err(TokenError::BadSignature));
    }
}
