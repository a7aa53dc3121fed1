//! What a man page and a completion script need to know about a program: its options, its
//! commands, their arguments and what each one completes to. Built from each program's own
//! table (strata.rs, rootfs.rs), rendered by man.rs, bash.rs, zsh.rs and fish.rs.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Complete {
    Nothing,
    Files,
    Dirs,
    /// One of these words.
    Choices(Vec<String>),
    /// The ids `PROGRAM [--root DIR] list -q` prints.
    Containers,
    /// A signal name.
    Signals,
    /// A command name of the program itself (`strata help <TAB>`).
    Subcommands,
    /// A program to run, then its arguments (files).
    CommandLine,
}

#[derive(Debug, Clone)]
pub struct Opt {
    pub long: String,
    pub short: Option<char>,
    /// The value's name (`DIR`), or None for a flag.
    pub value: Option<String>,
    pub help: String,
    /// Can be given more than once.
    pub repeat: bool,
    pub complete: Complete,
}

impl Opt {
    /// The value is the next word (`--root DIR`), not only attached (`--tls-verify[=BOOL]`).
    pub fn takes_next_word(&self) -> bool {
        self.value.as_deref().is_some_and(|v| !v.starts_with("[="))
    }

    /// `-b`, `--bundle`.
    pub fn spellings(&self) -> Vec<String> {
        self.short.map(|c| format!("-{c}")).into_iter().chain([format!("--{}", self.long)]).collect()
    }
}

#[derive(Debug, Clone)]
pub struct Command {
    pub name: String,
    /// One line.
    pub about: String,
    /// More paragraphs for the man page, maybe empty.
    pub description: String,
    /// The usage line after `PROGRAM COMMAND`: `[OPTIONS] <ID> [SIGNAL]`.
    pub usage: String,
    pub options: Vec<Opt>,
    /// What each positional argument completes to, in order.
    pub positionals: Vec<Complete>,
    /// What the words after the positionals complete to, if the command takes more.
    pub rest: Option<Complete>,
    /// Options end at the rest (`exec ID sh -c ...`: `-c` is the command's).
    pub rest_is_verbatim: bool,
}

#[derive(Debug, Clone)]
pub struct Program {
    pub name: String,
    /// The man section: 8 for strata (administration), 1 for strata-rootfs.
    pub section: u8,
    pub version: String,
    pub about: String,
    pub description: String,
    pub options: Vec<Opt>,
    pub commands: Vec<Command>,
    /// The option that selects the state directory `list -q` reads (strata's `--root`).
    pub state_root_option: Option<String>,
    /// The program's options may follow the command too (clap's global options).
    pub global_options_anywhere: bool,
    /// Man page sections after OPTIONS and COMMANDS: (title, text).
    pub extra_sections: Vec<(String, String)>,
}

impl Program {
    /// The options a command accepts: its own, and the program's when they may come anywhere.
    pub fn options_of(&self, c: &Command) -> Vec<Opt> {
        let global = if self.global_options_anywhere { self.options.as_slice() } else { &[] };
        // --help and --version belong to the program; each command has its own --help.
        let global = global.iter().filter(|o| o.long != "help" && o.long != "version");
        c.options.iter().chain(global).cloned().collect()
    }
}

/// What a value name promises: `DIR` a directory, `FILE`/`PATH` a file, `a|b` one of the words.
pub fn complete_for_value(name: &str) -> Complete {
    if name.contains('|') {
        Complete::Choices(name.split('|').map(str::to_owned).collect())
    } else if name.contains("DIR") {
        Complete::Dirs
    } else if name.contains("FILE") || name.contains("PATH") {
        Complete::Files
    } else {
        Complete::Nothing
    }
}

/// Signals `kill` is most often given; any other name or number works too.
pub const SIGNALS: &[&str] =
    &["TERM", "KILL", "HUP", "INT", "QUIT", "USR1", "USR2", "STOP", "CONT", "WINCH", "ALRM", "PIPE", "CHLD"];
