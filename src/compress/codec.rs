//! Streaming coders: each body chunk in, what the coder has for it out. A compressor flushes
//! at every chunk (a sync flush: its history is kept, so the ratio barely changes), so a
//! streamed response reaches the client as it streams and a coder holds at most its window.

use super::Encoding;
use bytes::Bytes;
use std::io::{self, Write};

/// Compress or decompress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Compress,
    Decompress,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Compress => "compress",
            Op::Decompress => "decompress",
        }
    }
}

/// One response's coder, with the bytes it took and gave.
pub struct Coder {
    pub op: Op,
    pub encoding: Encoding,
    pub bytes_in: u64,
    pub bytes_out: u64,
    inner: Inner,
}

enum Inner {
    GzipIn(flate2::write::GzEncoder<Vec<u8>>),
    BrIn(Option<Box<brotli::CompressorWriter<Vec<u8>>>>),
    ZstdIn(Option<zstd::stream::write::Encoder<'static, Vec<u8>>>),
    GzipOut(flate2::write::MultiGzDecoder<Vec<u8>>),
    BrOut(Option<Box<brotli::DecompressorWriter<Vec<u8>>>>),
    ZstdOut(zstd::stream::write::Decoder<'static, Vec<u8>>),
    Done,
}

/// brotli's window (log2): its default, 4 MiB.
const BR_WINDOW: u32 = 22;
const BR_BUFFER: usize = 4096;

impl Coder {
    pub fn compressor(encoding: Encoding, level: u32) -> io::Result<Coder> {
        let inner = match encoding {
            Encoding::Gzip => Inner::GzipIn(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(level.min(9)),
            )),
            Encoding::Br => Inner::BrIn(Some(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                BR_BUFFER,
                level.min(11),
                BR_WINDOW,
            )))),
            Encoding::Zstd => Inner::ZstdIn(Some(zstd::stream::write::Encoder::new(
                Vec::new(),
                level as i32,
            )?)),
        };
        Ok(Coder::new(Op::Compress, encoding, inner))
    }

    pub fn decompressor(encoding: Encoding) -> io::Result<Coder> {
        let inner = match encoding {
            Encoding::Gzip => Inner::GzipOut(flate2::write::MultiGzDecoder::new(Vec::new())),
            Encoding::Br => Inner::BrOut(Some(Box::new(brotli::DecompressorWriter::new(
                Vec::new(),
                BR_BUFFER,
            )))),
            Encoding::Zstd => {
                let mut d = zstd::stream::write::Decoder::new(Vec::new())?;
                // What a browser accepts (RFC 8878 §3.1.1.1.2 recommends 8 MiB), not zstd's
                // 128 MiB default: a window is memory held per response.
                d.window_log_max(23)?;
                Inner::ZstdOut(d)
            }
        };
        Ok(Coder::new(Op::Decompress, encoding, inner))
    }

    fn new(op: Op, encoding: Encoding, inner: Inner) -> Coder {
        Coder {
            op,
            encoding,
            bytes_in: 0,
            bytes_out: 0,
            inner,
        }
    }

    /// Codes `input`; with `end`, finishes the stream. What is ready goes out now.
    pub fn feed(&mut self, input: &[u8], end: bool) -> io::Result<Bytes> {
        self.bytes_in += input.len() as u64;
        let out = match &mut self.inner {
            Inner::GzipIn(w) => step(w, input, end, |w| w.try_finish())?,
            Inner::GzipOut(w) => step(w, input, end, |w| w.try_finish())?,
            Inner::ZstdOut(w) => step(w, input, end, |w| w.do_finish())?,
            Inner::BrIn(w) => {
                let mut out = match w.as_mut() {
                    Some(w) => step(w.as_mut(), input, false, |_| Ok(()))?,
                    None => Vec::new(),
                };
                if end {
                    if let Some(w) = w.take() {
                        out.extend_from_slice(&w.into_inner());
                    }
                }
                out
            }
            Inner::BrOut(w) => {
                let mut out = match w.as_mut() {
                    Some(w) => step(w.as_mut(), input, false, |_| Ok(()))?,
                    None => Vec::new(),
                };
                if end {
                    if let Some(w) = w.take() {
                        let rest = w.into_inner().map_err(|_| truncated("br"))?;
                        out.extend_from_slice(&rest);
                    }
                }
                out
            }
            Inner::ZstdIn(w) => {
                let mut out = match w.as_mut() {
                    Some(w) => step(w, input, false, |_| Ok(()))?,
                    None => Vec::new(),
                };
                if end {
                    if let Some(w) = w.take() {
                        out.extend_from_slice(&w.finish()?);
                    }
                }
                out
            }
            Inner::Done => Vec::new(),
        };
        if end {
            self.inner = Inner::Done;
        }
        self.bytes_out += out.len() as u64;
        Ok(Bytes::from(out))
    }
}

/// A writer whose sink is a `Vec` it owns.
trait Sink: Write {
    fn sink(&mut self) -> &mut Vec<u8>;
}

macro_rules! sink {
    ($($t:ty),*) => {$(
        impl Sink for $t {
            fn sink(&mut self) -> &mut Vec<u8> {
                self.get_mut()
            }
        }
    )*};
}

sink!(
    flate2::write::GzEncoder<Vec<u8>>,
    flate2::write::MultiGzDecoder<Vec<u8>>,
    brotli::CompressorWriter<Vec<u8>>,
    brotli::DecompressorWriter<Vec<u8>>,
    zstd::stream::write::Encoder<'static, Vec<u8>>,
    zstd::stream::write::Decoder<'static, Vec<u8>>
);

/// Writes `input`, then flushes (or, at the end, `finish`es), and takes what came out.
fn step<W: Sink + ?Sized>(
    w: &mut W,
    input: &[u8],
    end: bool,
    finish: impl FnOnce(&mut W) -> io::Result<()>,
) -> io::Result<Vec<u8>> {
    w.write_all(input)?;
    if end {
        finish(w)?;
    } else {
        w.flush()?;
    }
    Ok(std::mem::take(w.sink()))
}

fn truncated(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("{what} stream ends early"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text() -> Vec<u8> {
        (0..20_000)
            .flat_map(|i| format!("<li>item {i} of the list</li>\n").into_bytes())
            .collect()
    }

    #[test]
    fn every_coding_round_trips_in_chunks() {
        let body = text();
        for e in Encoding::ALL {
            let mut c = Coder::compressor(e, 5).unwrap();
            let mut packed = Vec::new();
            for chunk in body.chunks(7000) {
                packed.extend_from_slice(&c.feed(chunk, false).unwrap());
            }
            packed.extend_from_slice(&c.feed(&[], true).unwrap());
            assert!(packed.len() * 4 < body.len(), "{e:?}: {}", packed.len());
            assert_eq!(c.bytes_out, packed.len() as u64);
            let mut d = Coder::decompressor(e).unwrap();
            let mut back = Vec::new();
            for chunk in packed.chunks(333) {
                back.extend_from_slice(&d.feed(chunk, false).unwrap());
            }
            back.extend_from_slice(&d.feed(&[], true).unwrap());
            assert!(back == body, "{e:?} round trip");
        }
    }

    #[test]
    fn a_flushed_chunk_decodes_before_the_end() {
        for e in Encoding::ALL {
            let mut c = Coder::compressor(e, 5).unwrap();
            let first = c.feed(b"data: one event\n\n", false).unwrap();
            let mut d = Coder::decompressor(e).unwrap();
            assert_eq!(&d.feed(&first, false).unwrap()[..], b"data: one event\n\n");
        }
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        for e in Encoding::ALL {
            let mut d = Coder::decompressor(e).unwrap();
            let bad = d
                .feed(b"this is not compressed data at all", false)
                .and_then(|_| d.feed(&[], true));
            assert!(bad.is_err(), "{e:?} took garbage");
            let mut c = Coder::compressor(e, 5).unwrap();
            let mut packed = c.feed(&text(), true).unwrap().to_vec();
            packed.truncate(packed.len() / 2);
            let mut d = Coder::decompressor(e).unwrap();
            let cut = d.feed(&packed, false).and_then(|_| d.feed(&[], true));
            assert!(cut.is_err(), "{e:?} took a truncated stream");
        }
    }
}
