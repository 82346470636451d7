/// What `bench/layout.order`'s symbol names depend on, as 16 hex digits: the lock file (a
/// dependency added, removed or updated renames the functions of fintors and of the crates that
/// changed) and the compiler's version. Shared by the bench tool, which writes it into the
/// list, and build.rs, which compares (`include!`d by both).
pub fn layout_fingerprint(lock: &[u8], rustc_version: &str) -> String {
    // FNV-1a: stable across releases and platforms, which std's hashers do not promise.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in lock.iter().chain(rustc_version.trim().as_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The fingerprint line of a list, as it starts.
pub const FINGERPRINT_LINE: &str = "# fingerprint: ";
