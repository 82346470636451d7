//! `"aws_profiles": true`: any ~/.aws/config (and ~/.aws/credentials) text, read by the SDK's
//! profile parser from an in-memory file system, then turned into roles and merged into a
//! fintors config. Nothing may panic, and every imported role must be a valid one named after
//! its profile.
//!
//! Input: the config file; if it contains a NUL byte, what follows the first one is the
//! credentials file.

#![no_main]

use std::collections::HashMap;
use std::path::Path;
use std::sync::LazyLock;

use aws_types::os_shim_internal::{Env, Fs};
use fintors::config::Config;
use fintors::config::aws_profiles::{load_from, roles_from};
use fintors::model::RoleArn;
use libfuzzer_sys::fuzz_target;

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime")
});

/// fintors configs that import: one with nothing but the import, one whose explicit role must
/// win over an imported one of the same name.
const CONFIGS: [&str; 2] = [
    r#"{"aws_profiles": true, "default_role": "dev"}"#,
    r#"{"aws_profiles": true, "roles": {"dev": "arn:aws:iam::123456789012:role/explicit"}}"#,
];

fuzz_target!(
    init: fintors_fuzz::no_imds(),
    |data: &[u8]| {
        let (config, credentials) = match data.iter().position(|&b| b == 0) {
            Some(i) => (&data[..i], Some(&data[i + 1..])),
            None => (data, None),
        };
        let mut files = HashMap::from([("/home/fuzz/.aws/config".to_owned(), config.to_vec())]);
        if let Some(credentials) = credentials {
            files.insert("/home/fuzz/.aws/credentials".to_owned(), credentials.to_vec());
        }
        let fs = Fs::from_map(files);
        let env = Env::from_slice(&[("HOME", "/home/fuzz")]);
        let profiles = match RUNTIME.block_on(load_from(&fs, &env)) {
            Ok(profiles) => profiles,
            Err(_) => return,
        };
        let imported = roles_from(&profiles);
        let names: Vec<&str> = profiles.profiles().collect();
        assert!(imported.roles.len() + imported.skipped.len() <= names.len());
        for role in &imported.roles {
            assert!(names.contains(&role.alias.as_str()), "{} is no profile", role.alias);
            if let Some(arn) = &role.arn {
                assert!(RoleArn::parse(arn.as_str()).is_ok());
            }
            if let Some(region) = &role.region {
                // What the metadata tree makes of it while this role is active.
                let _ = fintors::ec2::instance::zone_id(region.as_str(), "a");
            }
        }
        for text in CONFIGS {
            let mut config = Config::parse(Path::new("/fuzz/fintorc.json"), text)
                .expect("the harness configs are valid");
            let explicit = config.roles.clone();
            match config.finish_import(imported.roles.clone()) {
                Ok(()) => {
                    assert!(!config.roles.is_empty());
                    for (alias, role) in &explicit {
                        assert_eq!(&config.roles[alias], role, "an import replaced an explicit role");
                    }
                    if let Some(default) = &config.default_role {
                        assert!(config.roles.contains_key(default));
                    }
                }
                Err(e) => {
                    let _ = e.to_string();
                }
            }
        }
    }
);
