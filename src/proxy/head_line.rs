//! One header line, `name: value`, as every head the proxy writes as bytes has it: the
//! request to a server (`forward`) and the response to a client (`client_wire`).

use bytes::{BufMut, BytesMut};

/// One header line, `name: value`, as both heads the direct exchange writes have them.
pub fn put_line(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}
