//! A small table-driven parser for runc's command line: global options, then the subcommand, its
//! options (`--name value`, `--name=value`, `-x value`, flags) and positionals; for `exec` and
//! `ps` everything after the container id belongs to the command.
//!
//! Hand-written rather than clap: the whole runtime is on the hot path of every container
//! start, and a declarative parser is a fraction of clap's code and startup work.

use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `--debug`
    Flag,
    /// `--root DIR` (the last one wins)
    Value,
    /// `--env K=V`, repeatable
    Multi,
}

#[derive(Debug)]
pub struct Opt {
    pub long: &'static str,
    pub short: Option<char>,
    pub kind: Kind,
    pub value: &'static str,
    pub help: &'static str,
    /// Accepted but left out of `--help`, man pages and completions: internal to one client.
    pub hidden: bool,
}

#[derive(Debug)]
pub struct Cmd {
    pub name: &'static str,
    pub about: &'static str,
    /// More about the command, for `COMMAND --help` and its man page (as runc's help has).
    pub details: &'static str,
    pub opts: &'static [Opt],
    /// Positional arguments, all required, in order.
    pub positionals: &'static [&'static str],
    /// An optional positional after the required ones (`kill ID [SIGNAL]`).
    pub optional: Option<&'static str>,
    /// Everything after the positionals, verbatim (`exec ID COMMAND...`).
    pub trailing: Option<&'static str>,
}

#[derive(Debug, Default)]
pub struct Matches {
    flags: Vec<&'static str>,
    values: HashMap<&'static str, Vec<String>>,
    pub positionals: Vec<String>,
    pub trailing: Vec<String>,
}

impl Matches {
    pub fn flag(&self, long: &str) -> bool {
        self.flags.contains(&long)
    }
    pub fn value(&self, long: &str) -> Option<&str> {
        self.values.get(long).and_then(|v| v.last()).map(String::as_str)
    }
    pub fn values(&self, long: &str) -> &[String] {
        self.values.get(long).map_or(&[], Vec::as_slice)
    }
}

/// A usage error: what is wrong, and which command's usage to show.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError {
    pub message: String,
    pub command: Option<&'static str>,
}

fn usage_error(command: Option<&'static str>, message: String) -> UsageError {
    UsageError { message, command }
}

/// Parse options of `opts` from `args[*i..]` until the first positional (or `--`); returns the
/// positionals (and, with `trailing`, the rest) as they come.
pub fn parse(
    cmd: Option<&'static Cmd>,
    opts: &'static [Opt],
    args: &[String],
    i: &mut usize,
    stop_at_positional: bool,
) -> Result<Matches, UsageError> {
    let name = cmd.map(|c| c.name);
    let mut m = Matches::default();
    let mut positionals_done = false;
    while *i < args.len() {
        let arg = &args[*i];
        if positionals_done {
            m.trailing.push(arg.clone());
            *i += 1;
            continue;
        }
        if arg == "--" {
            *i += 1;
            positionals_done = cmd.is_some_and(|c| c.trailing.is_some());
            if !positionals_done {
                m.positionals.extend(args[*i..].iter().cloned());
                *i = args.len();
            }
            continue;
        }
        let (opt, inline) = if let Some(long) = arg.strip_prefix("--") {
            let (key, inline) = match long.split_once('=') {
                Some((k, v)) => (k, Some(v.to_owned())),
                None => (long, None),
            };
            let opt = opts
                .iter()
                .find(|o| o.long == key)
                .ok_or_else(|| usage_error(name, format!("unknown option --{key}")))?;
            (opt, inline)
        } else if arg.len() == 2 && arg.starts_with('-') && arg != "-" {
            let c = arg.chars().nth(1).unwrap_or('-');
            let opt = opts
                .iter()
                .find(|o| o.short == Some(c))
                .ok_or_else(|| usage_error(name, format!("unknown option -{c}")))?;
            (opt, None)
        } else {
            if stop_at_positional {
                return Ok(m);
            }
            m.positionals.push(arg.clone());
            *i += 1;
            if let Some(c) = cmd {
                let wanted = c.positionals.len() + usize::from(c.optional.is_some());
                if c.trailing.is_some() && m.positionals.len() == c.positionals.len() {
                    positionals_done = true;
                } else if c.trailing.is_none() && m.positionals.len() > wanted {
                    return Err(usage_error(name, format!("unexpected argument {arg:?}")));
                }
            }
            continue;
        };
        *i += 1;
        match opt.kind {
            Kind::Flag => {
                if let Some(v) = inline {
                    match v.as_str() {
                        "true" | "1" => m.flags.push(opt.long),
                        "false" | "0" => {}
                        _ => return Err(usage_error(name, format!("--{} takes no value", opt.long))),
                    }
                } else {
                    m.flags.push(opt.long);
                }
            }
            Kind::Value | Kind::Multi => {
                let v = match inline {
                    Some(v) => v,
                    None => {
                        let v = args.get(*i).ok_or_else(|| {
                            usage_error(name, format!("--{} needs a value ({})", opt.long, opt.value))
                        })?;
                        *i += 1;
                        v.clone()
                    }
                };
                m.values.entry(opt.long).or_default().push(v);
            }
        }
    }
    if let Some(c) = cmd {
        if m.positionals.len() < c.positionals.len() {
            let missing = c.positionals[m.positionals.len()];
            return Err(usage_error(name, format!("missing argument {missing}")));
        }
    }
    Ok(m)
}

/// `-h, --help`, listed with every command's options.
static HELP: Opt =
    Opt { long: "help", short: Some('h'), kind: Kind::Flag, value: "", help: "print help", hidden: false };

/// The options shown to a person: hidden ones left out.
pub fn visible(opts: &[Opt]) -> impl Iterator<Item = &Opt> {
    opts.iter().filter(|o| !o.hidden)
}

/// The left column of an option's help line: `-b, --bundle DIR`.
pub fn option_synopsis(o: &Opt) -> String {
    let short = o.short.map_or_else(|| "    ".to_owned(), |c| format!("-{c}, "));
    match o.kind {
        Kind::Flag => format!("{short}--{}", o.long),
        Kind::Value | Kind::Multi => format!("{short}--{} {}", o.long, o.value),
    }
}

/// Two columns, the second starting at the same place on every line.
fn columns(rows: &[(String, &str)], out: &mut String) {
    let width = rows.iter().map(|(left, _)| left.len()).max().unwrap_or(0);
    for (left, right) in rows {
        let line = format!("  {left:<width$}  {right}");
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// Words filled into lines of at most `width` columns (a longer word gets a line of its own).
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line_len = 0;
    for word in text.split_whitespace() {
        if line_len > 0 && line_len + 1 + word.len() > width {
            out.push('\n');
            line_len = 0;
        } else if line_len > 0 {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += word.len();
    }
    out
}

/// The usage line's arguments of a command: ` [OPTIONS] <ID> [SIGNAL]`.
pub fn usage_args(c: &Cmd) -> String {
    let mut out = String::new();
    if visible(c.opts).next().is_some() {
        out.push_str(" [OPTIONS]");
    }
    for p in c.positionals {
        out.push_str(&format!(" <{p}>"));
    }
    if let Some(p) = c.optional {
        out.push_str(&format!(" [{p}]"));
    }
    if let Some(t) = c.trailing {
        out.push_str(&format!(" [{t}...]"));
    }
    out
}

/// The help text of a command (or of the program when `cmd` is None).
pub fn help(program_opts: &[Opt], commands: &[Cmd], cmd: Option<&Cmd>) -> String {
    let mut out = String::new();
    let option_rows = |opts: &[Opt]| -> Vec<(String, &'static str)> {
        visible(opts).chain(cmd.map(|_| &HELP)).map(|o| (option_synopsis(o), o.help)).collect()
    };
    match cmd {
        None => {
            out.push_str("strata is a fast, runc-compatible OCI container runtime\n\n");
            out.push_str("Usage: strata [OPTIONS] COMMAND [ARGS...]\n\nCommands:\n");
            let rows: Vec<_> = commands.iter().map(|c| (c.name.to_owned(), c.about)).collect();
            columns(&rows, &mut out);
            out.push_str("\nOptions:\n");
            columns(&option_rows(program_opts), &mut out);
        }
        Some(c) => {
            out.push_str(c.about);
            if !c.details.is_empty() {
                out.push_str("\n\n");
                out.push_str(&wrap(c.details, 80));
            }
            out.push_str("\n\nUsage: strata ");
            out.push_str(c.name);
            out.push_str(&usage_args(c));
            out.push_str("\n\nOptions:\n");
            columns(&option_rows(c.opts), &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    static OPTS: [Opt; 3] = [
        Opt { long: "bundle", short: Some('b'), kind: Kind::Value, value: "DIR", help: "", hidden: false },
        Opt { long: "detach", short: Some('d'), kind: Kind::Flag, value: "", help: "", hidden: false },
        Opt { long: "env", short: Some('e'), kind: Kind::Multi, value: "K=V", help: "", hidden: false },
    ];
    static EXEC: Cmd = Cmd {
        name: "exec",
        about: "",
        details: "",
        opts: &OPTS,
        positionals: &["ID"],
        optional: None,
        trailing: Some("COMMAND"),
    };
    static KILL: Cmd = Cmd {
        name: "kill",
        about: "",
        details: "",
        opts: &OPTS,
        positionals: &["ID"],
        optional: Some("SIGNAL"),
        trailing: None,
    };

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn both_spellings_and_repeats() {
        let args = v(&["--bundle=/b", "-d", "-e", "A=1", "--env", "B=2", "--detach=false", "id"]);
        let m = parse(Some(&EXEC), &OPTS, &args, &mut 0, false).unwrap();
        assert_eq!(m.value("bundle"), Some("/b"));
        assert!(m.flag("detach"));
        assert_eq!(m.values("env"), ["A=1", "B=2"]);
        assert_eq!(m.positionals, ["id"]);
    }

    #[test]
    fn everything_after_the_id_belongs_to_the_command() {
        let args = v(&["-d", "id", "sh", "-c", "--env", "x"]);
        let m = parse(Some(&EXEC), &OPTS, &args, &mut 0, false).unwrap();
        assert_eq!(m.positionals, ["id"]);
        assert_eq!(m.trailing, ["sh", "-c", "--env", "x"]);
        assert!(m.values("env").is_empty());
    }

    #[test]
    fn errors_name_the_problem() {
        let err =
            |args: &[&str], cmd: &'static Cmd| parse(Some(cmd), &OPTS, &v(args), &mut 0, false).unwrap_err().message;
        assert_eq!(err(&["--nope", "id"], &EXEC), "unknown option --nope");
        assert_eq!(err(&["-x"], &EXEC), "unknown option -x");
        assert_eq!(err(&["--bundle"], &EXEC), "--bundle needs a value (DIR)");
        assert_eq!(err(&[], &EXEC), "missing argument ID");
        assert_eq!(err(&["id", "TERM", "extra"], &KILL), "unexpected argument \"extra\"");
        let m = parse(Some(&KILL), &OPTS, &v(&["id", "KILL"]), &mut 0, false).unwrap();
        assert_eq!(m.positionals, ["id", "KILL"]);
    }
}
