//! The path of the field at a position of a JSON document (`process.user.uid`, `mounts[4]`).
//!
//! A parse error of serde_json carries the line and column where it was detected; scanning the
//! document up to there says which field was being read. This replaces tracking the path while
//! deserializing (serde_path_to_error), which instantiated every deserializer of the spec a second
//! time: about 650 KiB of the runtime's 2.4 MiB of code, for the error path only.

/// One level of the document around the position.
enum Frame {
    /// An object, and the key whose value is being read (once its `:` was seen).
    Object { key: Option<String> },
    /// An array, and the index of the element being read (once it began).
    Array { index: usize, in_element: bool },
}

/// The path at the 1-based `line` and `column` of `doc`, as `a.b[2].c`; empty at the top level.
pub fn path_at(doc: &[u8], line: usize, column: usize) -> String {
    let end = offset_of(doc, line, column).min(doc.len());
    let mut frames: Vec<Frame> = Vec::new();
    // The last string read: the key, when a `:` follows it.
    let mut last_string: Option<(usize, usize)> = None;
    let mut i = 0;
    while i < end {
        let b = doc[i];
        match b {
            b'"' => {
                let start = i;
                i += 1;
                while i < end && doc[i] != b'"' {
                    i += if doc[i] == b'\\' { 2 } else { 1 };
                }
                last_string = Some((start, (i + 1).min(doc.len())));
                begin_value(&mut frames);
            }
            b'{' => {
                begin_value(&mut frames);
                frames.push(Frame::Object { key: None });
            }
            b'[' => {
                begin_value(&mut frames);
                frames.push(Frame::Array { index: 0, in_element: false });
            }
            b'}' | b']' => {
                frames.pop();
            }
            b':' => {
                if let (Some(Frame::Object { key }), Some((s, e))) = (frames.last_mut(), last_string.take()) {
                    *key = Some(decode_key(&doc[s..e]));
                }
            }
            b',' => match frames.last_mut() {
                Some(Frame::Object { key }) => *key = None,
                Some(Frame::Array { index, in_element }) => {
                    *index += 1;
                    *in_element = false;
                }
                None => {}
            },
            b' ' | b'\t' | b'\n' | b'\r' => {}
            _ => begin_value(&mut frames),
        }
        i += 1;
    }
    let mut path = String::new();
    for frame in &frames {
        match frame {
            Frame::Object { key: Some(key) } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Frame::Array { index, in_element: true } => {
                path.push('[');
                path.push_str(&index.to_string());
                path.push(']');
            }
            _ => {}
        }
    }
    path
}

/// A value (or a key: harmless, objects ignore it) starts in the innermost array.
fn begin_value(frames: &mut [Frame]) {
    if let Some(Frame::Array { in_element, .. }) = frames.last_mut() {
        *in_element = true;
    }
}

/// A key as serde sees it: escapes decoded (rare in a config, so through serde_json); a key that
/// does not decode is shown as written.
fn decode_key(quoted: &[u8]) -> String {
    if !quoted.contains(&b'\\') {
        let inner = quoted.get(1..quoted.len().saturating_sub(1)).unwrap_or_default();
        return String::from_utf8_lossy(inner).into_owned();
    }
    serde_json::from_slice::<String>(quoted).unwrap_or_else(|_| String::from_utf8_lossy(quoted).into_owned())
}

/// The byte offset just past serde_json's position: its column counts the bytes of the line it
/// consumed (0: none yet).
fn offset_of(doc: &[u8], line: usize, column: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match doc[start..].iter().position(|&b| b == b'\n') {
            Some(n) => start += n + 1,
            None => return doc.len(),
        }
    }
    start + column
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The path serde_json's error position leads to when deserializing `doc` as `T`.
    fn path_of_error<T: serde::de::DeserializeOwned + std::fmt::Debug>(doc: &str) -> String {
        let err = serde_json::from_str::<T>(doc).unwrap_err();
        path_at(doc.as_bytes(), err.line(), err.column())
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct User {
        uid: u32,
        gid: u32,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Process {
        user: User,
        args: Vec<String>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Doc {
        process: Option<Process>,
        mounts: Option<Vec<User>>,
    }

    #[test]
    fn wrong_types_name_their_field() {
        assert_eq!(path_of_error::<Doc>(r#"{"process":{"user":{"uid":"x","gid":0},"args":[]}}"#), "process.user.uid");
        assert_eq!(path_of_error::<Doc>(r#"{"process":{"user":{"uid":0,"gid":0},"args":["a",1]}}"#), "process.args[1]");
        assert_eq!(path_of_error::<Doc>(r#"{"process":{"user":{"uid":0,"gid":0},"args":{}}}"#), "process.args");
        assert_eq!(
            path_of_error::<Doc>(
                "{\n  \"mounts\": [\n    {\"uid\": 1, \"gid\": 2},\n    {\"uid\": -1, \"gid\": 2}\n  ]\n}"
            ),
            "mounts[1].uid"
        );
    }

    #[test]
    fn a_missing_field_names_its_object() {
        assert_eq!(path_of_error::<Doc>(r#"{"process":{"user":{"uid":0},"args":[]}}"#), "process.user");
        assert_eq!(path_of_error::<Doc>(r#"{"mounts":[{"uid":0,"gid":0},{"gid":0}]}"#), "mounts[1]");
    }

    #[test]
    fn keys_with_escapes_and_strings_with_brackets() {
        assert_eq!(path_of_error::<Doc>(r#"{"x\"}":"a]}","process":{"user":{"uid":true}}}"#), "process.user.uid");
        assert_eq!(path_at(br#"{"a\u0062":{"c":1}}"#, 1, 17), "ab.c");
    }

    #[test]
    fn the_top_level_is_empty() {
        assert_eq!(path_of_error::<Doc>(r#"{"process":null} x"#), "");
        assert_eq!(path_at(b"", 1, 0), "");
    }
}
