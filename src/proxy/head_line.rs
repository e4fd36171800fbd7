//! Header lines as the proxy writes them in HTTP/1 heads: `put_line` writes `name: value`, as
//! every head the proxy writes as bytes has it (the request to a server, `forward`; the
//! response to a client, `client_wire`), and `RawLines` copies lines parsed in place from the
//! buffer they came in, consecutive ones in one copy, as they came.

use bytes::{BufMut, BytesMut};
use std::ops::Range;

/// One header line, `name: value`, as both heads the direct exchange writes have them.
pub fn put_line(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

/// Lines of a head parsed in place (httparse) copied from its buffer: a line whose bytes in
/// the buffer are `name`, the colon and whitespace, `value`, then CRLF goes as it came, and
/// the lines that follow each other there go in one copy; any other line (a bare LF, trailing
/// whitespace the parser left out) is written with `put_line`. A head of eight lines is then
/// one or two copies rather than thirty-two.
pub struct RawLines<'b> {
    buf: &'b [u8],
    /// The lines gathered and not yet written: a range of `buf`, empty when none.
    run: Range<usize>,
}

impl<'b> RawLines<'b> {
    pub fn new(buf: &'b [u8]) -> RawLines<'b> {
        RawLines { buf, run: 0..0 }
    }

    /// Starts the copy with `buf`'s first `len` bytes, when they are `expected` (the status
    /// line as the writer would write it, CRLF included); false when they are not.
    pub fn lead(&mut self, expected: &[&[u8]]) -> bool {
        let len = expected.iter().map(|p| p.len()).sum();
        let mut at = 0;
        let same = self.buf.len() >= len
            && expected.iter().all(|p| {
                at += p.len();
                &self.buf[at - p.len()..at] == *p
            });
        if same {
            self.run = 0..len;
        }
        same
    }

    /// One line, `name` and `value` slices of the buffer (else written with `put_line`).
    pub fn line(&mut self, out: &mut BytesMut, name: &[u8], value: &[u8]) {
        match self.span(name, value) {
            Some(line) if line.start == self.run.end && !self.run.is_empty() => {
                self.run.end = line.end;
            }
            Some(line) => {
                self.flush(out);
                self.run = line;
            }
            None => {
                self.flush(out);
                put_line(out, name, value);
            }
        }
    }

    /// Writes what is gathered.
    pub fn flush(&mut self, out: &mut BytesMut) {
        if !self.run.is_empty() {
            out.put_slice(&self.buf[self.run.clone()]);
            self.run = 0..0;
        }
    }

    /// The line's range in the buffer, CRLF included, when it can go as it came. Between the
    /// name and the value httparse has left only the colon and spaces or tabs.
    fn span(&self, name: &[u8], value: &[u8]) -> Option<Range<usize>> {
        let base = self.buf.as_ptr() as usize;
        let start = (name.as_ptr() as usize).checked_sub(base)?;
        let end = (value.as_ptr() as usize).checked_sub(base)? + value.len();
        let crlf = self.buf.get(end..end + 2) == Some(b"\r\n".as_slice());
        (crlf && start < end && !value.is_empty()).then_some(start..end + 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `head`'s lines through `RawLines`, keeping those `keep` accepts; the output and how
    /// many copies were made.
    fn copy(head: &[u8], keep: impl Fn(&str) -> bool) -> (Vec<u8>, usize) {
        let mut lines = [httparse::EMPTY_HEADER; 16];
        let mut resp = httparse::Response::new(&mut lines);
        assert!(resp.parse(head).unwrap().is_complete());
        let mut raw = RawLines::new(head);
        let mut out = BytesMut::new();
        let mut copies = 0;
        if !raw.lead(&[b"HTTP/1.1 ", b"200", b" ", b"OK", b"\r\n"]) {
            out.put_slice(b"HTTP/1.1 200 OK\r\n");
        }
        for h in resp.headers.iter().filter(|h| keep(h.name)) {
            let before = raw.run.clone();
            raw.line(&mut out, h.name.as_bytes(), h.value);
            copies += usize::from(raw.run.start != before.start || raw.run.is_empty());
        }
        raw.flush(&mut out);
        (out.to_vec(), copies)
    }

    #[test]
    fn consecutive_lines_go_as_one_copy_as_they_came() {
        let head = b"HTTP/1.1 200 OK\r\nServer: x\r\nContent-Type:text/plain\r\nX-A: \t1\r\n\r\n";
        let (out, copies) = copy(head, |_| true);
        assert_eq!(
            out,
            &head[..head.len() - 2],
            "the head as it came, less the blank line"
        );
        assert_eq!(copies, 0, "every line continued the status line's copy");
    }

    #[test]
    fn a_left_out_line_splits_the_copy() {
        let head = b"HTTP/1.1 200 OK\r\nA: 1\r\nConnection: close\r\nB: 2\r\n\r\n";
        let (out, copies) = copy(head, |n| n != "Connection");
        assert_eq!(out, b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n");
        assert_eq!(copies, 1, "B starts a second copy");
    }

    #[test]
    fn lines_that_cannot_go_as_they_came_are_rewritten() {
        // A bare LF ending a line; trailing whitespace the parser leaves out of the value.
        let head = b"HTTP/1.1 200 OK\r\nA: 1\nB: 2  \r\nC: 3\r\n\r\n";
        let (out, _) = copy(head, |_| true);
        assert_eq!(out, b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n");
        // A status line other than the one expected is written, not copied.
        let head = b"HTTP/1.1 200 Fine\r\nA: 1\r\n\r\n";
        let (out, _) = copy(head, |_| true);
        assert_eq!(out, b"HTTP/1.1 200 OK\r\nA: 1\r\n");
    }

    #[test]
    fn slices_from_elsewhere_are_written() {
        let buf = b"HTTP/1.1 200 OK\r\n";
        let mut raw = RawLines::new(buf);
        let mut out = BytesMut::new();
        raw.line(&mut out, b"Date", b"today");
        raw.line(&mut out, b"E", b"");
        raw.flush(&mut out);
        assert_eq!(&out[..], b"Date: today\r\nE: \r\n");
    }
}
