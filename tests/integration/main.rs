//! End-to-end tests: the real fintors binary, a real STS emulator, real AWS clients.
//! One test binary (not one per file) so the AWS SDK is linked once.

mod support;

mod admin;
mod aws_profiles;
mod base_credentials;
mod client_commands;
mod console;
mod container;
mod contract;
mod demo;
mod discovery;
mod doctor;
mod errors;
mod faults;
mod guard;
mod imds;
mod install;
mod limits;
mod metadata;
mod mfa;
mod network;
mod other_users;
mod permission_sets;
mod picker;
mod process_roles;
mod real_clients;
mod reload;
mod roles_api;
mod secrets;
mod several_roles;
mod shell_helpers;
mod simulated_events;
mod squatters;
mod sso;
mod sso_login;
mod startup;
