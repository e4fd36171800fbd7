//! Session tickets (RFC 5077 for TLS 1.2, RFC 8446 §4.6.1 for TLS 1.3): the server's session
//! state, sealed with a key only gatehouse holds, kept by the client. Resumption then costs no
//! server memory, so it survives any number of other clients, a config reload, and — with a
//! shared key file — a move to another node.
//!
//! A ticket is `key name (16 bytes) ‖ nonce (12) ‖ ChaCha20-Poly1305(state)`. Keys are either
//! made at random and rotated every `ticket_rotation` (the previous key still opens tickets for
//! one more period), or read from `ticket_key_file`, HAProxy's format: one base64 key of 48 or
//! 80 bytes per line, `openssl rand -base64 80` each; the first line seals, every line opens.
//! A key's name is its first 16 bytes, its AEAD key the SHA-256 of the rest. Rotating a shared
//! file is the operator's: prepend a new line on every node, reload, drop the last line later.
//!
//! Written here rather than taken from rustls: rustls' own ticketer makes its keys itself and
//! cannot be given them, so it could neither share keys between nodes nor keep them across a
//! listener rebuild.

use arc_swap::ArcSwap;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const NAME_LEN: usize = 16;

/// One ticket key: its public name and its sealing key.
struct Key {
    name: [u8; NAME_LEN],
    aead: LessSafeKey,
}

impl Key {
    /// From the bytes of one key-file line (48 or 80 bytes).
    fn from_bytes(bytes: &[u8]) -> Key {
        let mut name = [0u8; NAME_LEN];
        name.copy_from_slice(&bytes[..NAME_LEN]);
        let digest = ring::digest::digest(&ring::digest::SHA256, &bytes[NAME_LEN..]);
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, digest.as_ref()).expect("32-byte key");
        Key {
            name,
            aead: LessSafeKey::new(unbound),
        }
    }

    fn random(rng: &SystemRandom) -> Option<Key> {
        let mut bytes = [0u8; 80];
        rng.fill(&mut bytes).ok()?;
        Some(Key::from_bytes(&bytes))
    }
}

/// The keys in use: the first seals, all open.
struct Ring {
    keys: Vec<Key>,
    made: Instant,
}

/// Where the keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Random keys, a new one every period.
    Rotating(Duration),
    /// The keys of a file (each 48 or 80 bytes), first one sealing.
    Shared(Vec<Vec<u8>>),
}

pub struct Tickets {
    ring: ArcSwap<Ring>,
    /// Zero when the keys come from a file (no automatic rotation).
    rotation: Duration,
    lifetime: Duration,
    rng: SystemRandom,
    rotating: Mutex<()>,
}

impl std::fmt::Debug for Tickets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tickets")
            .field("keys", &self.ring.load().keys.len())
            .field("rotation", &self.rotation)
            .finish()
    }
}

impl Tickets {
    /// `lifetime` is the hint sent to clients (at most 7 days, TLS 1.3's limit).
    pub fn new(source: &KeySource, lifetime: Duration) -> Option<Tickets> {
        let rng = SystemRandom::new();
        let (keys, rotation) = match source {
            KeySource::Rotating(every) => (vec![Key::random(&rng)?], *every),
            KeySource::Shared(list) => (keys_of(list)?, Duration::ZERO),
        };
        Some(Tickets {
            ring: ArcSwap::from_pointee(Ring {
                keys,
                made: Instant::now(),
            }),
            rotation,
            lifetime: lifetime.min(Duration::from_secs(7 * 86_400)),
            rng,
            rotating: Mutex::new(()),
        })
    }

    /// A reload brought a new key file: tickets sealed from now on use its first key.
    pub fn set_shared_keys(&self, list: &[Vec<u8>]) {
        if let Some(keys) = keys_of(list) {
            self.ring.store(std::sync::Arc::new(Ring {
                keys,
                made: Instant::now(),
            }));
        }
    }

    /// Starts a new random key when the current one is a period old; the previous one keeps
    /// opening tickets for one more period.
    fn rotate_if_due(&self) {
        if self.rotation.is_zero() || self.ring.load().made.elapsed() < self.rotation {
            return;
        }
        let _one_at_a_time = self.rotating.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.ring.load();
        if current.made.elapsed() < self.rotation {
            return;
        }
        let Some(fresh) = Key::random(&self.rng) else {
            return;
        };
        let previous = &current.keys[0];
        let kept = Key {
            name: previous.name,
            aead: previous.aead.clone(),
        };
        self.ring.store(std::sync::Arc::new(Ring {
            keys: vec![fresh, kept],
            made: Instant::now(),
        }));
    }
}

fn keys_of(list: &[Vec<u8>]) -> Option<Vec<Key>> {
    let keys: Vec<Key> = list
        .iter()
        .filter(|b| b.len() == 48 || b.len() == 80)
        .map(|b| Key::from_bytes(b))
        .collect();
    (!keys.is_empty()).then_some(keys)
}

impl rustls::server::ProducesTickets for Tickets {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        self.lifetime.as_secs() as u32
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.rotate_if_due();
        let ring = self.ring.load();
        let key = ring.keys.first()?;
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
        let mut sealed = plain.to_vec();
        key.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(key.name),
                &mut sealed,
            )
            .ok()?;
        let mut out = Vec::with_capacity(NAME_LEN + NONCE_LEN + sealed.len());
        out.extend_from_slice(&key.name);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Some(out)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        if cipher.len() < NAME_LEN + NONCE_LEN {
            return None;
        }
        let (name, rest) = cipher.split_at(NAME_LEN);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let ring = self.ring.load();
        let key = ring.keys.iter().find(|k| k.name == name)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = sealed.to_vec();
        let plain = key
            .aead
            .open_in_place(nonce, Aad::from(key.name), &mut buf)
            .ok()?;
        let n = plain.len();
        buf.truncate(n);
        Some(buf)
    }
}
