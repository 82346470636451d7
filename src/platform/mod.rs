//! What fintors asks of the operating system beyond what std offers: who owns a TCP socket of
//! this machine ([`sockets`]), a user's uid by name ([`users`]), and stopping a command with
//! what it started ([`processes`]), files only their owner reads, replaced whole
//! ([`files`]), a desktop notification ([`notify`]), word that the network changed
//! ([`network`]). All of fintors's FFI is
//! here. Both sides of fintors need it: the daemon, to answer
//! only its own user's connections, and the client, to send a secret only to a daemon of its own
//! user. It sits at the bottom beside `model` and imports nothing of fintors.
//!
//! Platform code is chosen at compile time: each function has a Linux body and, beside it, the
//! answer for every other system ("cannot tell").

pub mod files;
pub mod network;
pub mod notify;
pub mod processes;
pub mod sockets;
pub mod users;
