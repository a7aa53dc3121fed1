//! strata-rootfs's model, from its clap definition (strata_rootfs::args), walked the way clap
//! renders `--help`: hidden arguments and commands left out.

use clap::{Arg, ArgAction, CommandFactory, ValueHint};

use strata_rootfs::args::Args;

use crate::model::{Command, Complete, Opt, Program, complete_for_value};

fn text(s: Option<&clap::builder::StyledStr>) -> String {
    s.map(ToString::to_string).unwrap_or_default()
}

fn value_name(a: &Arg) -> String {
    a.get_value_names().and_then(|n| n.first()).map_or_else(|| a.get_id().as_str().to_uppercase(), ToString::to_string)
}

fn complete(a: &Arg) -> Complete {
    let choices: Vec<String> = a.get_possible_values().iter().map(|v| v.get_name().to_owned()).collect();
    if !choices.is_empty() {
        return Complete::Choices(choices);
    }
    match a.get_value_hint() {
        ValueHint::DirPath => Complete::Dirs,
        ValueHint::FilePath | ValueHint::AnyPath => Complete::Files,
        _ => complete_for_value(&value_name(a)),
    }
}

fn takes_value(a: &Arg) -> bool {
    a.get_num_args().is_some_and(|n| n.takes_values())
}

fn opt(a: &Arg) -> Option<Opt> {
    let long = a.get_long()?;
    let value = takes_value(a).then(|| value_name(a));
    // `--tls-verify[=BOOL]`: the value is optional and must be attached.
    let value = match (value, a.get_num_args()) {
        (Some(v), Some(n)) if n.min_values() == 0 => Some(format!("[={v}]")),
        (v, _) => v,
    };
    let help = text(a.get_long_help().or(a.get_help()));
    let help = match a.get_default_values().first() {
        Some(d) if value.is_some() && !help.contains("default") => {
            format!("{} (default {})", help.trim_end_matches('.'), d.to_string_lossy())
        }
        _ => help,
    };
    Some(Opt {
        long: long.to_owned(),
        short: a.get_short(),
        complete: if value.is_some() { complete(a) } else { Complete::Nothing },
        value,
        help,
        repeat: matches!(a.get_action(), ArgAction::Append | ArgAction::Count),
    })
}

fn visible_args(c: &clap::Command) -> impl Iterator<Item = &Arg> {
    c.get_arguments().filter(|a| !a.is_hide_set() && !a.is_global_set() && a.get_id() != "help")
}

fn usage(c: &clap::Command) -> String {
    let mut words = Vec::new();
    if visible_args(c).any(|a| !a.is_positional()) {
        words.push("[OPTIONS]".to_owned());
    }
    for a in c.get_positionals().filter(|a| !a.is_hide_set()) {
        let name = value_name(a);
        let many = if matches!(a.get_action(), ArgAction::Append) { "..." } else { "" };
        words.push(if a.is_last_set() {
            format!("[-- {name}...]")
        } else if a.is_required_set() {
            format!("<{name}>{many}")
        } else {
            format!("[{name}]{many}")
        });
    }
    words.join(" ")
}

fn command(c: &clap::Command) -> Command {
    let positionals: Vec<&Arg> = c.get_positionals().filter(|a| !a.is_hide_set() && !a.is_last_set()).collect();
    let repeated = positionals.last().is_some_and(|a| matches!(a.get_action(), ArgAction::Append));
    Command {
        name: c.get_name().to_owned(),
        about: text(c.get_about()),
        description: text(c.get_long_about()),
        usage: usage(c),
        options: visible_args(c).filter_map(opt).collect(),
        positionals: positionals.iter().map(|a| complete(a)).collect(),
        rest: repeated.then(|| positionals.last().map_or(Complete::Nothing, |a| complete(a))),
        rest_is_verbatim: false,
    }
}

const DESCRIPTION: &str = "\
strata-rootfs imports container images (from registries, OCI layouts, OCI archives and `docker save` \
archives) into a content-addressed layer store, and makes OCI runtime bundles from them: a \
config.json from the image's configuration and a root filesystem that is an overlay of the shared \
layers with a writable layer of its own. strata (or any OCI runtime) runs the bundle; commit turns \
its writable layer into a new image.";

const FILES: &str = "\
/var/lib/strata: root's default store (--store): layers, blobs, images, names and bundles.
$XDG_DATA_HOME/strata, else ~/.local/share/strata: the default store of any other user.";

pub fn program() -> Program {
    let mut root = Args::command();
    // Adds --help and --version, as parsing does.
    root.build();
    Program {
        name: root.get_name().to_owned(),
        section: 1,
        version: root.get_version().unwrap_or_default().to_owned(),
        about: text(root.get_about()),
        description: DESCRIPTION.to_owned(),
        options: root.get_arguments().filter(|a| !a.is_hide_set() && !a.is_positional()).filter_map(opt).collect(),
        commands: root.get_subcommands().filter(|c| !c.is_hide_set() && c.get_name() != "help").map(command).collect(),
        state_root_option: None,
        global_options_anywhere: true,
        extra_sections: vec![("FILES".to_owned(), FILES.to_owned())],
    }
}
