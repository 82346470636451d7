//! The fintors JSON config: `Config::parse` on any UTF-8 text must return a config or an error,
//! never panic; an accepted config must keep the promises the daemon relies on; and the start-up
//! checks that follow (`instance` section, the import's late checks) must not panic either.

#![no_main]

use std::path::Path;

use fintors::config::Config;
use fintors::ec2::instance::{Instance, zone_id};
use fintors::model::{
    Alias, MAX_DURATION_SECONDS, MIN_DURATION_SECONDS, MfaSerial, Region, RoleArn, SessionName,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: fintors_fuzz::no_imds(),
    |data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let config = match Config::parse(Path::new("/fuzz/fintorc.json"), text) {
            Ok(config) => config,
            Err(e) => {
                let _ = e.to_string();
                return;
            }
        };
        // Roles may come from ~/.aws/config or from Identity Center discovery later.
        if !config.aws_profiles && config.identity_center.is_empty() {
            assert!(!config.roles.is_empty(), "accepted a config without roles");
        }
        if let Some(default) = &config.default_role {
            assert!(config.roles.contains_key(default), "default role {default} is not a role");
        }
        for (alias, role) in &config.roles {
            assert_eq!(alias, &role.alias);
            // Whatever was accepted must pass its own validation again.
            assert!(Alias::parse(alias.as_str()).is_ok());
            if let Some(arn) = &role.arn {
                assert!(RoleArn::parse(arn.as_str()).is_ok());
                let _ = (arn.partition(), arn.account_id(), arn.role_name());
            }
            assert!(SessionName::parse(role.session_name.as_str()).is_ok());
            assert!((MIN_DURATION_SECONDS..=MAX_DURATION_SECONDS).contains(&role.duration_seconds));
            if let Some(region) = &role.region {
                assert!(Region::parse(region.as_str()).is_ok());
            }
            if let Some(serial) = &role.mfa_serial {
                assert!(MfaSerial::parse(serial.as_str()).is_ok());
            }
        }
        // The daemon's next steps with the file: the instance section, then (with aws_profiles)
        // the import's checks, here with nothing imported.
        // The metadata tree names the zone of the instance's region, or of the active role's.
        let instance = Instance::from_config(
            &config.instance,
            b"fintors-fuzz",
            &Region::parse("us-east-1").unwrap(),
            chrono::DateTime::UNIX_EPOCH,
        );
        let _ = zone_id(instance.region.as_str(), &instance.zone_suffix);
        for region in config.roles.values().filter_map(|r| r.region.as_ref()) {
            let _ = zone_id(region.as_str(), &instance.zone_suffix);
        }
        let mut config = config;
        if let Err(e) = config.finish_import(Vec::new()) {
            let _ = e.to_string();
        }
    }
);
