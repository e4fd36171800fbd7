//! The cache across a stop and start, or a binary upgrade: at a graceful stop (or hand-off)
//! every object still within its life is written to `<state_dir>/cache.snapshot`, within a
//! deadline; at start it is read back in the background while gatehouse already serves.
//! Stored times are absolute, so age and freshness carry over exactly; an object whose life
//! ended meanwhile is not restored, and one no longer fresh is restored stale.
//!
//! The file: a header (magic, format, the key layout's fingerprint, the writer's version),
//! then records (length, the object, its CRC-32), then a trailer (the record count and a
//! CRC-32 over the record CRCs). A file that is partial, corrupt, of another format or of
//! another key layout is refused whole, with one warning: nothing of it is served.

use super::store::{Entry, EntryParts, KeyOrigin, MokaStorage};
use super::Cache;
use bytes::Bytes;
use pingora::cache::key::HashBinary;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const MAGIC: &[u8; 8] = b"GHCACHE\x01";
/// Bumped whenever a record's layout or the cache key's computation changes.
const FORMAT: u32 = 1;
/// A record length that marks the trailer.
const TRAILER: u32 = u32::MAX;
/// Room in a record beside its body (header fields, times, keys).
const RECORD_SLACK: u64 = 1 << 20;

/// What a write or a read did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    pub objects: u64,
    pub bytes: u64,
    pub millis: u64,
}

/// Writes every object of `storage` still alive to `path` (through a temporary file renamed
/// over it), stopping at `deadline` with what is written by then.
pub fn write(
    storage: &MokaStorage,
    path: &Path,
    layout: u32,
    deadline: Instant,
) -> io::Result<Done> {
    let started = Instant::now();
    let tmp = path.with_extension("snapshot.tmp");
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
    out.write_all(MAGIC)?;
    out.write_all(&FORMAT.to_le_bytes())?;
    out.write_all(&layout.to_le_bytes())?;
    put_bytes(&mut out, env!("CARGO_PKG_VERSION").as_bytes())?;
    let now = SystemTime::now();
    let (mut done, mut crcs) = (Done::default(), crc32fast::Hasher::new());
    let mut record = Vec::new();
    for (key, entry) in storage.entries.iter() {
        if Instant::now() >= deadline {
            tracing::warn!("cache snapshot cut at its deadline");
            break;
        }
        if entry.end_of_life <= now {
            continue;
        }
        record.clear();
        encode(&key, &entry, &mut record);
        let crc = crc32fast::hash(&record);
        out.write_all(&(record.len() as u32).to_le_bytes())?;
        out.write_all(&record)?;
        out.write_all(&crc.to_le_bytes())?;
        crcs.update(&crc.to_le_bytes());
        done.objects += 1;
        done.bytes += entry.body().len() as u64;
    }
    out.write_all(&TRAILER.to_le_bytes())?;
    out.write_all(&done.objects.to_le_bytes())?;
    out.write_all(&crcs.finalize().to_le_bytes())?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    done.millis = started.elapsed().as_millis() as u64;
    Ok(done)
}

/// Reads `path` whole and checks it; restores its live objects into `cache` only then. The
/// file is taken away first: read once, even if this process dies reading it.
pub fn read(cache: &Cache, path: &Path, layout: u32) -> Result<Done, String> {
    let started = Instant::now();
    let reading = path.with_extension("snapshot.reading");
    std::fs::rename(path, &reading).map_err(|e| e.to_string())?;
    let file = std::fs::File::open(&reading).map_err(|e| e.to_string());
    let _ = std::fs::remove_file(&reading);
    let file = file?;
    let max_record = cache.config.max_object_size + RECORD_SLACK;
    let mut total = 0u64;
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)
        .map_err(|_| "too short for a snapshot")?;
    if &magic != MAGIC {
        return Err("not a gatehouse cache snapshot".into());
    }
    let format = u32_of(&mut r)?;
    let their_layout = u32_of(&mut r)?;
    let version = bytes_of(&mut r, 256)?;
    let version = String::from_utf8_lossy(&version).to_string();
    if format != FORMAT {
        return Err(format!(
            "format {format} (written by {version}); this one reads {FORMAT}"
        ));
    }
    if their_layout != layout {
        return Err(format!(
            "written for another cache key layout (by {version}): the routes' key rules changed"
        ));
    }
    let mut entries = Vec::new();
    let mut crcs = crc32fast::Hasher::new();
    loop {
        let len = u32_of(&mut r)?;
        if len == TRAILER {
            break;
        }
        total += u64::from(len);
        if u64::from(len) > max_record {
            return Err("corrupt, or for a larger max_object_size: a record too long".into());
        }
        if total > cache.config.max_size + RECORD_SLACK {
            return Err("larger than max_size: written for a larger cache".into());
        }
        let mut record = vec![0u8; len as usize];
        r.read_exact(&mut record).map_err(|_| "truncated")?;
        let crc = u32_of(&mut r)?;
        if crc32fast::hash(&record) != crc {
            return Err(format!(
                "corrupt: record {} fails its checksum",
                entries.len()
            ));
        }
        crcs.update(&crc.to_le_bytes());
        entries.push(decode(Bytes::from(record)).ok_or("corrupt: a record does not parse")?);
    }
    let count = u64_of(&mut r)?;
    if count != entries.len() as u64 || u32_of(&mut r)? != crcs.finalize() {
        return Err("corrupt: the trailer does not match the records".into());
    }
    let now = SystemTime::now();
    let mut done = Done::default();
    for (key, entry) in entries {
        if entry.end_of_life <= now {
            continue; // its life ended while gatehouse was down
        }
        let size = entry.body().len() as u64;
        if cache.restore(key, entry) {
            done.objects += 1;
            done.bytes += size;
        }
    }
    done.millis = started.elapsed().as_millis() as u64;
    Ok(done)
}

/// One object as a record (also what a peer receives, `super::peers`).
pub(super) fn encode(key: &HashBinary, entry: &Entry, out: &mut Vec<u8>) {
    let p = entry.parts();
    out.extend_from_slice(key);
    out.extend_from_slice(&p.primary);
    match p.variance {
        Some(v) => {
            out.push(1);
            out.extend_from_slice(&v);
        }
        None => out.push(0),
    }
    for t in [p.fresh_until, p.created, p.epoch, p.end_of_life] {
        let nanos = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
        out.extend_from_slice(&(nanos.min(u64::MAX as u128) as u64).to_le_bytes());
    }
    out.extend_from_slice(&p.stale_while_revalidate.to_le_bytes());
    out.extend_from_slice(&p.stale_if_error.to_le_bytes());
    match &p.origin {
        Some(o) => {
            out.push(1);
            let _ = put_bytes(out, o.host.as_bytes());
            let _ = put_bytes(out, o.path.as_bytes());
        }
        None => out.push(0),
    }
    out.extend_from_slice(&p.header.status.as_u16().to_le_bytes());
    out.extend_from_slice(&(p.header.headers.len() as u32).to_le_bytes());
    for (name, value) in &p.header.headers {
        let _ = put_bytes(out, name.as_str().as_bytes());
        let _ = put_bytes(out, value.as_bytes());
    }
    let _ = put_bytes(out, &p.body);
}

pub(super) fn decode(record: Bytes) -> Option<(HashBinary, Entry)> {
    let mut c = Cursor { buf: record, at: 0 };
    let key = c.hash()?;
    let primary = c.hash()?;
    let variance = match c.u8()? {
        0 => None,
        _ => Some(c.hash()?),
    };
    let mut times = [UNIX_EPOCH; 4];
    for t in &mut times {
        *t = UNIX_EPOCH + Duration::from_nanos(c.u64()?);
    }
    let [fresh_until, created, epoch, end_of_life] = times;
    let stale_while_revalidate = c.u32()?;
    let stale_if_error = c.u32()?;
    let origin = match c.u8()? {
        0 => None,
        _ => Some(KeyOrigin {
            host: std::str::from_utf8(&c.bytes()?).ok()?.into(),
            path: std::str::from_utf8(&c.bytes()?).ok()?.into(),
        }),
    };
    let status = c.u16()?;
    let fields = c.u32()?;
    let mut header = pingora::http::ResponseHeader::build(status, Some(fields as usize)).ok()?;
    for _ in 0..fields {
        let name = c.bytes()?;
        let value = c.bytes()?;
        let name = http::HeaderName::from_bytes(&name).ok()?;
        let value = http::HeaderValue::from_bytes(&value).ok()?;
        header.append_header(name, value).ok()?;
    }
    let body = c.bytes()?;
    if c.at != c.buf.len() {
        return None;
    }
    // A length that is not the body's would frame the response wrong.
    if let Some(v) = header.headers.get(http::header::CONTENT_LENGTH) {
        if std::str::from_utf8(v.as_bytes())
            .ok()?
            .trim()
            .parse::<usize>()
            .ok()?
            != body.len()
        {
            return None;
        }
    }
    let parts = EntryParts {
        header,
        fresh_until,
        created,
        epoch,
        stale_while_revalidate,
        stale_if_error,
        variance,
        body,
        primary,
        origin,
        end_of_life,
    };
    Some((key, Entry::from_parts(parts)))
}

fn put_bytes(out: &mut impl Write, b: &[u8]) -> io::Result<()> {
    out.write_all(&(b.len() as u32).to_le_bytes())?;
    out.write_all(b)
}

fn u32_of(r: &mut impl Read) -> Result<u32, String> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b).map_err(|_| "truncated")?;
    Ok(u32::from_le_bytes(b))
}

fn u64_of(r: &mut impl Read) -> Result<u64, String> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b).map_err(|_| "truncated")?;
    Ok(u64::from_le_bytes(b))
}

fn bytes_of(r: &mut impl Read, max: u32) -> Result<Vec<u8>, String> {
    let len = u32_of(r)?;
    if len > max {
        return Err("corrupt header".into());
    }
    let mut b = vec![0u8; len as usize];
    r.read_exact(&mut b).map_err(|_| "truncated")?;
    Ok(b)
}

/// Reads a record's fields in place (the body is a slice of the record, not a copy).
struct Cursor {
    buf: Bytes,
    at: usize,
}

impl Cursor {
    fn take(&mut self, n: usize) -> Option<Bytes> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.buf.len())?;
        let out = self.buf.slice(self.at..end);
        self.at = end;
        Some(out)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?[..].try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?[..].try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?[..].try_into().ok()?))
    }

    fn hash(&mut self) -> Option<HashBinary> {
        self.take(std::mem::size_of::<HashBinary>())?[..]
            .try_into()
            .ok()
    }

    fn bytes(&mut self) -> Option<Bytes> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

/// The fingerprint of how keys are made: the routes' rules that enter a key, in order.
pub fn layout(config: &crate::config::Config) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for r in &config.routes {
        if let Some(c) = &r.cache {
            h.update(
                format!(
                    "{}|{:?}|{:?};",
                    c.ignore_query, c.ignore_params, c.ignore_cookies
                )
                .as_bytes(),
            );
        }
    }
    h.finalize()
}

/// The snapshot of the instance whose state lives in `state_dir`.
pub fn path(state_dir: &Path) -> std::path::PathBuf {
    state_dir.join("cache.snapshot")
}

/// Reads the snapshot into `cache` on a thread of its own (gatehouse serves meanwhile). After
/// a binary upgrade, the old process writes it as it hands over: the read waits (up to
/// `wait`) for a file newer than this process.
pub fn load_in_background(
    cache: Arc<super::Cache>,
    path: std::path::PathBuf,
    layout: u32,
    wait: Duration,
) {
    let started = SystemTime::now();
    let _ = std::thread::Builder::new()
        .name("cache-snapshot".into())
        .spawn(move || {
            let deadline = Instant::now() + wait;
            let newer = || {
                std::fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t >= started)
            };
            while !wait.is_zero() && !newer() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if !wait.is_zero() && !newer() {
                // The old process wrote none in time: an older file is a previous run's.
                let _ = std::fs::remove_file(&path);
                return;
            }
            if !path.exists() {
                return;
            }
            match read(&cache, &path, layout) {
                Ok(done) => {
                    tracing::info!(
                        objects = done.objects,
                        bytes = done.bytes,
                        ms = done.millis,
                        "cache snapshot read"
                    );
                    cache.counters.snapshot.loaded(done);
                }
                Err(why) => {
                    tracing::warn!("cache snapshot {} ignored: {why}", path.display());
                    cache
                        .counters
                        .snapshot
                        .refused
                        .store(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
}
