//! `strata-docgen OUTDIR`: writes the man pages and shell completions of strata and strata-rootfs
//! under OUTDIR as they are installed under a prefix (hack/install runs it):
//! share/man/man8/strata*.8, share/man/man1/strata-rootfs*.1,
//! share/bash-completion/completions/NAME, share/zsh/site-functions/_NAME,
//! share/fish/vendor_completions.d/NAME.fish.

/// Appends formatted text to a String (which cannot fail, unlike `fmt::Write`'s Result says).
macro_rules! put {
    ($out:expr, $($arg:tt)*) => { $out.push_str(&format!($($arg)*)) };
}

/// `put!` and a newline.
macro_rules! putln {
    ($out:expr, $($arg:tt)*) => {{
        $out.push_str(&format!($($arg)*));
        $out.push('\n');
    }};
}

mod bash;
mod fish;
mod man;
mod model;
mod rootfs;
mod strata;
mod zsh;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("usage: strata-docgen OUTDIR")]
    Usage,
    #[error("writing {0}")]
    Write(PathBuf, #[source] std::io::Error),
}

/// Every file to install: (path under the prefix, contents).
fn files() -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for p in [strata::program(), rootfs::program()] {
        let man = PathBuf::from(format!("share/man/man{}", p.section));
        out.extend(man::pages(&p).into_iter().map(|(name, text)| (man.join(name), text)));
        out.push((PathBuf::from("share/bash-completion/completions").join(&p.name), bash::script(&p)));
        out.push((PathBuf::from("share/zsh/site-functions").join(format!("_{}", p.name)), zsh::script(&p)));
        out.push((PathBuf::from("share/fish/vendor_completions.d").join(format!("{}.fish", p.name)), fish::script(&p)));
    }
    out
}

fn write_all(dir: &Path) -> Result<(), Error> {
    for (path, text) in files() {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::Write(parent.to_owned(), e))?;
        }
        std::fs::write(&path, text).map_err(|e| Error::Write(path.clone(), e))?;
        println!("{}", path.display());
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [dir] if !dir.starts_with('-') => write_all(Path::new(dir)),
        _ => Err(Error::Usage),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            eprintln!("strata-docgen: {text}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests;
