//! strata's model, from its own option table (runtime/src/cli/table.rs): what `--help` shows is
//! what the man pages and completions say.

use strata::cli::args::{self, Kind, visible};
use strata::cli::table::{COMMANDS, GLOBAL};

use crate::model::{Command, Complete, Opt, Program, complete_for_value};

/// Commands whose ID names a container that does not exist yet.
const NEW_ID: &[&str] = &["create", "run"];

fn opt(o: &args::Opt) -> Opt {
    let value = match o.kind {
        Kind::Flag => None,
        Kind::Value | Kind::Multi => Some(o.value.to_owned()),
    };
    Opt {
        long: o.long.to_owned(),
        short: o.short,
        complete: value.as_deref().map_or(Complete::Nothing, complete_for_value),
        value,
        help: o.help.to_owned(),
        repeat: o.kind == Kind::Multi,
    }
}

fn positional(cmd: &args::Cmd, name: &str) -> Complete {
    match name {
        "ID" if NEW_ID.contains(&cmd.name) => Complete::Nothing,
        "ID" => Complete::Containers,
        "SIGNAL" => Complete::Signals,
        _ => Complete::Nothing,
    }
}

const DESCRIPTION: &str = "\
strata creates and runs containers from OCI bundles (a config.json and a root filesystem), \
as the OCI runtime specification describes. It takes runc's commands, options, defaults and exit \
codes, so container engines (podman, containerd, Docker, Kubernetes through containerd's CRI) use \
it in place of runc.

A container's life: create sets it up and leaves its process waiting; start runs the user's \
program; kill signals it; delete removes what create made. run does create and start in one step.";

const FILES: &str = "\
/run/strata: the default state directory (--root), one directory per container; a tmpfs is best.";

const EXIT_STATUS: &str = "\
0 on success; 1 when the command line is wrong or the command fails; run and exec exit with the \
container process's status (exec with 255 when the process could not be started).";

pub fn program() -> Program {
    let commands = COMMANDS
        .iter()
        .filter(|c| c.name != "help")
        .map(|c| Command {
            name: c.name.to_owned(),
            about: c.about.to_owned(),
            description: c.details.to_owned(),
            usage: args::usage_args(c).trim_start().to_owned(),
            options: visible(c.opts).map(opt).collect(),
            positionals: c.positionals.iter().chain(c.optional.iter()).map(|p| positional(c, p)).collect(),
            rest: c.trailing.map(|t| if t == "COMMAND" { Complete::CommandLine } else { Complete::Nothing }),
            rest_is_verbatim: c.trailing.is_some(),
        })
        .chain(COMMANDS.iter().filter(|c| c.name == "help").map(|c| Command {
            name: c.name.to_owned(),
            about: c.about.to_owned(),
            description: String::new(),
            usage: "[COMMAND]".to_owned(),
            options: Vec::new(),
            positionals: vec![Complete::Subcommands],
            rest: None,
            rest_is_verbatim: false,
        }))
        .collect();
    Program {
        name: "strata".to_owned(),
        section: 8,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        about: "a fast, runc-compatible OCI container runtime".to_owned(),
        description: DESCRIPTION.to_owned(),
        options: visible(&GLOBAL).map(opt).collect(),
        commands,
        state_root_option: Some("root".to_owned()),
        global_options_anywhere: false,
        extra_sections: vec![
            ("FILES".to_owned(), FILES.to_owned()),
            ("EXIT STATUS".to_owned(), EXIT_STATUS.to_owned()),
        ],
    }
}
