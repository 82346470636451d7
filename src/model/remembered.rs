//! Secrets recently found valid, each with what it opens, so that the next request carrying one
//! is admitted by a constant-time comparison instead of a MAC.
//!
//! A MAC (four SHA-256 blocks, in software where the CPU has no SHA instructions) was most of
//! what a cached credential cost to serve, and clients
//! present the same few secrets over and over: an SDK process reuses its IMDS token for hours, a
//! pinned shell its container token for its whole life. The table has a fixed number of slots,
//! holds only secrets a MAC has vouched for, and never grows; a slot is chosen by the secret's
//! last bytes (MAC output, so evenly spread). A forgery never enters it; a client minting many
//! valid secrets can only evict the others' entries, which then cost a MAC again.

use std::fmt;
use std::sync::{Mutex, MutexGuard};

use subtle::ConstantTimeEq;

/// Slots: more than the clients of one workstation present at once.
pub const SLOTS: usize = 32;

pub struct Remembered<T> {
    slots: Mutex<[Option<Slot<T>>; SLOTS]>,
}

struct Slot<T> {
    secret: Box<[u8]>,
    opens: T,
}

impl<T> Remembered<T> {
    pub fn new() -> Self {
        Remembered {
            slots: Mutex::new(std::array::from_fn(|_| None)),
        }
    }

    fn slots(&self) -> MutexGuard<'_, [Option<Slot<T>>; SLOTS]> {
        // Each slot is replaced whole, so a lock poisoned by a panic elsewhere still guards
        // sound contents.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What `read` makes of what `given` opens, if it is a remembered secret. The comparison
    /// takes the same time however much of `given` matches: a client must not learn a secret
    /// byte by byte.
    pub fn recall<R>(&self, given: &[u8], read: impl FnOnce(&T) -> R) -> Option<R> {
        let slots = self.slots();
        match &slots[index(given)] {
            Some(slot) => same(&slot.secret, given).then(|| read(&slot.opens)),
            // Compared all the same, so that timing does not tell which slots are filled.
            None => {
                same(given, given);
                None
            }
        }
    }

    /// Remembers `secret`, which a MAC has just vouched for, as opening `opens`.
    pub fn remember(&self, secret: &[u8], opens: T) {
        self.slots()[index(secret)] = Some(Slot {
            secret: secret.into(),
            opens,
        });
    }

    /// The remembered secret that opens what `wanted` accepts, if any.
    pub fn find(&self, wanted: impl Fn(&T) -> bool) -> Option<Box<[u8]>> {
        self.slots()
            .iter()
            .flatten()
            .find(|slot| wanted(&slot.opens))
            .map(|slot| slot.secret.clone())
    }
}

impl<T> Default for Remembered<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether `a` and `b` are equal, in time that depends only on their lengths. The differences
/// are gathered without a branch (which the compiler vectorizes: a few instructions for a token,
/// where `subtle`'s byte-by-byte comparison took 700) and only their sum is compared, behind
/// `black_box` and through `subtle`, so that the optimizer cannot add an early exit.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y));
    std::hint::black_box(difference).ct_eq(&0).into()
}

/// A secret's slot, from its last four bytes (a token's last base64 character alone carries only
/// four bits).
fn index(secret: &[u8]) -> usize {
    let tail = &secret[secret.len().saturating_sub(4)..];
    tail.iter().fold(0usize, |h, &b| {
        h.wrapping_mul(31).wrapping_add(usize::from(b))
    }) % SLOTS
}

impl<T> fmt::Debug for Remembered<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Remembered(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_secret_is_recalled_with_what_it_opens() {
        let table = Remembered::new();
        table.remember(b"0123456789abcdef", "ops");
        assert_eq!(table.recall(b"0123456789abcdef", |&o| o), Some("ops"));
    }

    #[test]
    fn a_secret_differing_anywhere_is_not_recalled() {
        let table = Remembered::new();
        let secret = b"0123456789abcdef";
        table.remember(secret, ());
        for i in 0..secret.len() {
            let mut other = *secret;
            other[i] ^= 1;
            assert_eq!(table.recall(&other, |_| ()), None, "byte {i}");
        }
        assert_eq!(table.recall(b"0123456789abcde", |_| ()), None);
        assert_eq!(table.recall(b"0123456789abcdef0", |_| ()), None);
        assert_eq!(table.recall(b"", |_| ()), None);
    }

    #[test]
    fn same_is_equality() {
        assert!(same(b"", b""));
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"bbc"));
        assert!(!same(b"abc", b"abcd"));
        assert!(!same(&[0x80; 64], &[0x00; 64]));
    }

    #[test]
    fn the_table_never_grows_past_its_slots() {
        let table = Remembered::new();
        for i in 0..10 * SLOTS {
            table.remember(format!("secret-{i:08}").as_bytes(), i);
        }
        let kept = (0..10 * SLOTS)
            .filter(|i| {
                table
                    .recall(format!("secret-{i:08}").as_bytes(), |_| ())
                    .is_some()
            })
            .count();
        assert!(kept <= SLOTS, "{kept}");
        assert!(kept > 0);
    }

    #[test]
    fn find_returns_the_secret_that_opens_what_is_wanted() {
        let table = Remembered::new();
        table.remember(b"first-token", 10);
        table.remember(b"other-token", 20);
        assert_eq!(
            table.find(|&e| e == 20).as_deref(),
            Some(&b"other-token"[..])
        );
        assert_eq!(table.find(|&e| e == 30), None);
    }

    #[test]
    fn debug_shows_no_secret() {
        let table = Remembered::new();
        table.remember(b"hunter2hunter2", ());
        assert_eq!(format!("{table:?}"), "Remembered(<redacted>)");
    }
}
