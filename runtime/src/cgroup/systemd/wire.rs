//! The D-Bus wire format, for the few types systemd's calls use: basic types, strings, object
//! paths, signatures, arrays, structs, dict entries and variants, little-endian only (the
//! machines strata runs on). A message is a fixed header, header fields `a(yv)`, padding to 8
//! and the body; every value is aligned to its size from the start of the message.

use std::fmt;

/// One D-Bus value. Arrays carry their element signature, so that an empty one still has a type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Byte(u8),
    Bool(bool),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    Str(String),
    Path(String),
    Sig(String),
    Array(String, Vec<Value>),
    Struct(Vec<Value>),
    Variant(Box<Value>),
}

impl Value {
    pub(crate) fn signature(&self) -> String {
        match self {
            Self::Byte(_) => "y".into(),
            Self::Bool(_) => "b".into(),
            Self::I32(_) => "i".into(),
            Self::U32(_) => "u".into(),
            Self::I64(_) => "x".into(),
            Self::U64(_) => "t".into(),
            Self::Str(_) => "s".into(),
            Self::Path(_) => "o".into(),
            Self::Sig(_) => "g".into(),
            Self::Array(elem, _) => format!("a{elem}"),
            Self::Struct(fields) => format!("({})", fields.iter().map(Value::signature).collect::<String>()),
            Self::Variant(_) => "v".into(),
        }
    }

    pub(crate) fn str(s: &str) -> Self {
        Self::Str(s.to_owned())
    }

    pub(crate) fn variant(v: Value) -> Self {
        Self::Variant(Box::new(v))
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) | Self::Path(s) | Self::Sig(s) => Some(s),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(pub String);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed D-Bus message: {}", self.0)
    }
}

impl std::error::Error for WireError {}

fn bad<T>(what: impl Into<String>) -> Result<T, WireError> {
    Err(WireError(what.into()))
}

fn alignment(code: u8) -> usize {
    match code {
        b'n' | b'q' => 2,
        b'b' | b'i' | b'u' | b'h' | b's' | b'o' | b'a' => 4,
        b'x' | b't' | b'd' | b'(' | b'{' => 8,
        _ => 1,
    }
}

/// Appends values to a buffer whose offset 0 is 8-aligned in the message.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    fn pad(&mut self, align: usize) {
        while self.buf.len() % align != 0 {
            self.buf.push(0);
        }
    }

    fn u32(&mut self, v: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn string(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    pub(crate) fn value(&mut self, v: &Value) {
        match v {
            Value::Byte(b) => self.buf.push(*b),
            Value::Bool(b) => self.u32(u32::from(*b)),
            Value::I32(i) => {
                self.pad(4);
                self.buf.extend_from_slice(&i.to_le_bytes());
            }
            Value::U32(u) => self.u32(*u),
            Value::I64(i) => {
                self.pad(8);
                self.buf.extend_from_slice(&i.to_le_bytes());
            }
            Value::U64(u) => {
                self.pad(8);
                self.buf.extend_from_slice(&u.to_le_bytes());
            }
            Value::Str(s) | Value::Path(s) => self.string(s),
            Value::Sig(s) => {
                self.buf.push(s.len() as u8);
                self.buf.extend_from_slice(s.as_bytes());
                self.buf.push(0);
            }
            Value::Array(elem, items) => {
                self.pad(4);
                let len_at = self.buf.len();
                self.buf.extend_from_slice(&[0; 4]);
                // The length counts from the first element, after its alignment padding.
                self.pad(alignment(elem.as_bytes().first().copied().unwrap_or(b'y')));
                let start = self.buf.len();
                for item in items {
                    self.value(item);
                }
                let len = (self.buf.len() - start) as u32;
                self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
            }
            Value::Struct(fields) => {
                self.pad(8);
                for f in fields {
                    self.value(f);
                }
            }
            Value::Variant(inner) => {
                self.value(&Value::Sig(inner.signature()));
                self.value(inner);
            }
        }
    }
}

/// Reads values of a given signature from a buffer whose offset 0 is 8-aligned.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0, depth: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    fn align(&mut self, a: usize) -> Result<(), WireError> {
        let next = self.pos.div_ceil(a) * a;
        if next > self.buf.len() {
            return bad("padding runs past the end");
        }
        self.pos = next;
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len());
        let Some(end) = end else { return bad("value runs past the end") };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        self.align(N)?;
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        self.fixed::<4>().map(u32::from_le_bytes)
    }

    fn text(&mut self, len: usize) -> Result<String, WireError> {
        let bytes = self.take(len)?;
        if self.take(1)? != [0] {
            return bad("string without its NUL");
        }
        String::from_utf8(bytes.to_vec()).or_else(|_| bad("string is not UTF-8"))
    }

    /// Every value of `signature`, in order.
    pub(crate) fn values(&mut self, signature: &str) -> Result<Vec<Value>, WireError> {
        let mut out = Vec::new();
        let mut rest = signature;
        while !rest.is_empty() {
            let (one, tail) = split_type(rest)?;
            out.push(self.value(one)?);
            rest = tail;
        }
        Ok(out)
    }

    /// One value of the single complete type `sig`.
    pub(crate) fn value(&mut self, sig: &str) -> Result<Value, WireError> {
        self.depth += 1;
        if self.depth > 32 {
            return bad("nested too deeply");
        }
        let v = self.value_inner(sig);
        self.depth -= 1;
        v
    }

    fn value_inner(&mut self, sig: &str) -> Result<Value, WireError> {
        let code = sig.as_bytes().first().copied().unwrap_or(0);
        Ok(match code {
            b'y' => Value::Byte(self.take(1)?[0]),
            b'b' => Value::Bool(self.u32()? != 0),
            b'n' => Value::I32(i32::from(i16::from_le_bytes(self.fixed::<2>()?))),
            b'q' => Value::U32(u32::from(u16::from_le_bytes(self.fixed::<2>()?))),
            b'i' => Value::I32(i32::from_le_bytes(self.fixed::<4>()?)),
            b'u' | b'h' => Value::U32(self.u32()?),
            b'x' => Value::I64(i64::from_le_bytes(self.fixed::<8>()?)),
            b't' | b'd' => Value::U64(u64::from_le_bytes(self.fixed::<8>()?)),
            b's' | b'o' => {
                let len = self.u32()? as usize;
                let s = self.text(len)?;
                if code == b's' { Value::Str(s) } else { Value::Path(s) }
            }
            b'g' => {
                let len = usize::from(self.take(1)?[0]);
                Value::Sig(self.text(len)?)
            }
            b'a' => {
                let elem = &sig[1..];
                let len = self.u32()? as usize;
                self.align(alignment(elem.as_bytes().first().copied().unwrap_or(0)))?;
                let end = self.pos.checked_add(len).filter(|e| *e <= self.buf.len());
                let Some(end) = end else { return bad("array runs past the end") };
                let mut items = Vec::new();
                while self.pos < end {
                    items.push(self.value(elem)?);
                }
                if self.pos != end {
                    return bad("array length does not match its elements");
                }
                Value::Array(elem.to_owned(), items)
            }
            b'(' | b'{' => {
                self.align(8)?;
                Value::Struct(self.values(&sig[1..sig.len() - 1])?)
            }
            b'v' => {
                let Value::Sig(inner) = self.value("g")? else { return bad("variant signature") };
                let (one, tail) = split_type(&inner)?;
                if !tail.is_empty() {
                    return bad("variant holds more than one type");
                }
                Value::variant(self.value(one)?)
            }
            _ => return bad(format!("unsupported type {sig:?}")),
        })
    }
}

/// The first complete type of a signature and the rest.
pub(crate) fn split_type(sig: &str) -> Result<(&str, &str), WireError> {
    let bytes = sig.as_bytes();
    let mut i = 0;
    while bytes.get(i) == Some(&b'a') {
        i += 1;
    }
    match bytes.get(i) {
        Some(b'(' | b'{') => {
            let mut depth = 0usize;
            for (j, b) in bytes.iter().enumerate().skip(i) {
                match b {
                    b'(' | b'{' => depth += 1,
                    b')' | b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(sig.split_at(j + 1));
                        }
                    }
                    _ => {}
                }
            }
            bad(format!("unbalanced signature {sig:?}"))
        }
        Some(b) if b"ybnqiuxtdsoghv".contains(b) => Ok(sig.split_at(i + 1)),
        _ => bad(format!("bad signature {sig:?}")),
    }
}

/// Message types.
pub(crate) const METHOD_CALL: u8 = 1;
pub(crate) const METHOD_RETURN: u8 = 2;
pub(crate) const ERROR: u8 = 3;
pub(crate) const SIGNAL: u8 = 4;

/// Header field codes.
const PATH: u8 = 1;
const INTERFACE: u8 = 2;
const MEMBER: u8 = 3;
const ERROR_NAME: u8 = 4;
const REPLY_SERIAL: u8 = 5;
const DESTINATION: u8 = 6;
const SIGNATURE: u8 = 8;

/// The largest message accepted (the specification's limit is 128 MiB; systemd's replies here
/// are a few hundred bytes).
pub(crate) const MAX_MESSAGE: usize = 8 << 20;

/// A method call to send.
#[derive(Debug)]
pub(crate) struct Call<'a> {
    pub destination: Option<&'a str>,
    pub path: &'a str,
    pub interface: &'a str,
    pub member: &'a str,
    pub args: &'a [Value],
}

impl Call<'_> {
    pub(crate) fn encode(&self, serial: u32) -> Vec<u8> {
        let mut body = Writer::default();
        for a in self.args {
            body.value(a);
        }
        let signature: String = self.args.iter().map(Value::signature).collect();
        let mut fields = vec![
            field(PATH, Value::Path(self.path.to_owned())),
            field(INTERFACE, Value::str(self.interface)),
            field(MEMBER, Value::str(self.member)),
        ];
        if let Some(d) = self.destination {
            fields.push(field(DESTINATION, Value::str(d)));
        }
        if !signature.is_empty() {
            fields.push(field(SIGNATURE, Value::Sig(signature)));
        }
        let mut w = Writer::default();
        w.buf.extend_from_slice(&[b'l', METHOD_CALL, 0, 1]);
        w.value(&Value::U32(body.buf.len() as u32));
        w.value(&Value::U32(serial));
        w.value(&Value::Array("(yv)".into(), fields));
        w.pad(8);
        w.buf.extend_from_slice(&body.buf);
        w.buf
    }
}

fn field(code: u8, v: Value) -> Value {
    Value::Struct(vec![Value::Byte(code), Value::variant(v)])
}

/// A received message; the body is decoded by whoever wants it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Message {
    pub kind: u8,
    pub reply_serial: Option<u32>,
    pub path: String,
    pub interface: String,
    pub member: String,
    pub error_name: String,
    pub signature: String,
    pub body: Vec<u8>,
}

impl Message {
    /// The body's values, by its signature.
    pub(crate) fn args(&self) -> Result<Vec<Value>, WireError> {
        Reader::new(&self.body).values(&self.signature)
    }
}

/// From the first 16 bytes of a message: the length of the rest (header fields, padding, body).
pub(crate) fn remaining_len(fixed: &[u8; 16]) -> Result<usize, WireError> {
    if fixed[0] != b'l' {
        return bad("only little-endian messages are understood");
    }
    let body = u32::from_le_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]) as usize;
    let fields = u32::from_le_bytes([fixed[12], fixed[13], fixed[14], fixed[15]]) as usize;
    let total = (16 + fields).div_ceil(8) * 8 + body;
    if total > MAX_MESSAGE {
        return bad(format!("message of {total} bytes"));
    }
    Ok(total - 16)
}

/// Decode a whole message (fixed header included).
pub(crate) fn decode(raw: &[u8]) -> Result<Message, WireError> {
    let mut r = Reader::new(raw);
    let head = r.take(4)?;
    if head[0] != b'l' {
        return bad("only little-endian messages are understood");
    }
    let mut m = Message { kind: head[1], ..Message::default() };
    let body_len = r.u32()? as usize;
    let _serial = r.u32()?;
    let Value::Array(_, fields) = r.value("a(yv)")? else { return bad("header fields") };
    for f in fields {
        let Value::Struct(pair) = f else { continue };
        let (Some(Value::Byte(code)), Some(Value::Variant(v))) = (pair.first(), pair.get(1)) else { continue };
        match (*code, v.as_ref()) {
            (PATH, Value::Path(s)) => m.path.clone_from(s),
            (INTERFACE, Value::Str(s)) => m.interface.clone_from(s),
            (MEMBER, Value::Str(s)) => m.member.clone_from(s),
            (ERROR_NAME, Value::Str(s)) => m.error_name.clone_from(s),
            (REPLY_SERIAL, Value::U32(u)) => m.reply_serial = Some(*u),
            (SIGNATURE, Value::Sig(s)) => m.signature.clone_from(s),
            _ => {}
        }
    }
    r.align(8)?;
    let start = r.pos();
    if raw.len() - start != body_len {
        return bad("body length does not match the header");
    }
    m.body = raw[start..].to_vec();
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_transient_unit_arguments_round_trip() {
        let props = Value::Array(
            "(sv)".into(),
            vec![
                Value::Struct(vec![Value::str("Delegate"), Value::variant(Value::Bool(true))]),
                Value::Struct(vec![
                    Value::str("PIDs"),
                    Value::variant(Value::Array("u".into(), vec![Value::U32(1234)])),
                ]),
                Value::Struct(vec![Value::str("MemoryMax"), Value::variant(Value::U64(1 << 30))]),
                Value::Struct(vec![
                    Value::str("AllowedCPUs"),
                    Value::variant(Value::Array("y".into(), vec![Value::Byte(3)])),
                ]),
            ],
        );
        let args =
            vec![Value::str("strata-c1.scope"), Value::str("replace"), props, Value::Array("(sa(sv))".into(), vec![])];
        let sig: String = args.iter().map(Value::signature).collect();
        assert_eq!(sig, "ssa(sv)a(sa(sv))");
        let mut w = Writer::default();
        for a in &args {
            w.value(a);
        }
        let back = Reader::new(&w.buf).values(&sig).unwrap();
        assert_eq!(back, args);
    }

    #[test]
    fn a_call_decodes_as_a_message() {
        let args = [Value::str("x.scope"), Value::str("replace")];
        let call = Call {
            destination: Some("org.freedesktop.systemd1"),
            path: "/org/freedesktop/systemd1",
            interface: "org.freedesktop.systemd1.Manager",
            member: "StopUnit",
            args: &args,
        };
        let raw = call.encode(7);
        assert_eq!(raw.len(), 16 + remaining_len(raw[..16].try_into().unwrap()).unwrap());
        let m = decode(&raw).unwrap();
        assert_eq!((m.kind, m.member.as_str(), m.signature.as_str()), (METHOD_CALL, "StopUnit", "ss"));
        assert_eq!(m.path, "/org/freedesktop/systemd1");
        assert_eq!(m.args().unwrap(), args);
    }

    #[test]
    fn alignment_follows_the_specification() {
        // A byte then a u64: seven bytes of padding; an empty array of structs still pads to 8.
        let mut w = Writer::default();
        w.value(&Value::Byte(1));
        w.value(&Value::U64(2));
        assert_eq!(w.buf.len(), 16);
        let mut w = Writer::default();
        w.value(&Value::Array("(sv)".into(), vec![]));
        assert_eq!(w.buf, [0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn hostile_input_is_refused_not_panicked_on() {
        assert!(Reader::new(&[255, 255, 255, 255]).value("s").is_err());
        assert!(Reader::new(&[8, 0, 0, 0, 1]).value("ay").is_err());
        assert!(Reader::new(&[1, 0, 0, 0, b'a', 1]).value("s").is_err());
        assert!(split_type("(su").is_err());
        assert!(split_type("z").is_err());
        let nested = "a".repeat(40) + "y";
        assert!(Reader::new(&[0; 200]).value(&nested).is_ok_and(|v| v == Value::Array(nested[1..].into(), vec![])));
        assert!(Reader::new(&[1, b'v', 0].repeat(40)).value("v").is_err());
        assert!(remaining_len(&[b'B'; 16]).is_err());
    }
}
