//! state and list.

use std::io::Write;
use std::path::Path;

use super::{ListArgs, ListFormat, parse_id};
use crate::container::info;
use crate::error::{Error, ErrorKind};

fn print(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(|e| Error::new(ErrorKind::Other, e))
}

pub fn state(root: &Path, id: &str) -> Result<(), Error> {
    let s = info::state_of(root, &parse_id(id)?)?;
    let mut text = serde_json::to_string_pretty(&s).map_err(|e| Error::new(ErrorKind::Other, e))?;
    text.push('\n');
    print(&text)
}

pub fn list(root: &Path, a: &ListArgs) -> Result<(), Error> {
    let states = info::list(root)?;
    if a.quiet {
        let ids: String = states.iter().map(|s| format!("{}\n", s.id)).collect();
        return print(&ids);
    }
    match a.format {
        ListFormat::Table => print(&info::table(&states)),
        ListFormat::Json => {
            // runc prints `null` for no containers.
            let mut text = if states.is_empty() {
                "null".to_owned()
            } else {
                serde_json::to_string(&states).map_err(|e| Error::new(ErrorKind::Other, e))?
            };
            text.push('\n');
            print(&text)
        }
    }
}
