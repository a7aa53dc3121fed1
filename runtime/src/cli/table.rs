//! runc's flags, command by command, and their conversion into the typed arguments.

use std::path::PathBuf;

use super::args::{Cmd, Kind, Matches, Opt, UsageError, help, parse};
use super::*;

const fn opt(long: &'static str, short: Option<char>, kind: Kind, value: &'static str, help: &'static str) -> Opt {
    Opt { long, short, kind, value, help }
}
use Kind::{Flag, Multi, Value};

/// The options before the command. `--help` and `--version` may come anywhere among them, as
/// with runc (urfave/cli): `strata --root X --version`.
pub static GLOBAL: [Opt; 9] = [
    opt("root", None, Value, "DIR", "root directory for container state (default /run/strata)"),
    opt("log", None, Value, "FILE", "write logs to FILE instead of stderr"),
    opt("log-format", None, Value, "text|json", "log format (default text)"),
    opt("debug", None, Flag, "", "enable debug logging"),
    opt("systemd-cgroup", None, Flag, "", "use systemd to manage cgroups (a transient unit per container)"),
    opt("rootless", None, Value, "true|false|auto", "rootless mode (default auto)"),
    opt("criu", None, Value, "PATH", "path to criu (accepted; checkpointing is not supported)"),
    opt("help", Some('h'), Flag, "", "print help"),
    opt("version", Some('v'), Flag, "", "print version"),
];

static CREATE_OPTS: [Opt; 6] = [
    opt("bundle", Some('b'), Value, "DIR", "path to the root of the bundle directory (default .)"),
    opt("console-socket", None, Value, "PATH", "AF_UNIX socket that receives the pty master"),
    opt("pid-file", None, Value, "FILE", "file to write the process id to"),
    opt("no-pivot", None, Flag, "", "do not use pivot_root to jail the process inside the rootfs"),
    opt("no-new-keyring", None, Flag, "", "do not create a new session keyring for the container"),
    opt("preserve-fds", None, Value, "N", "pass N additional file descriptors to the container"),
];

static RUN_OPTS: [Opt; 9] = [
    opt("bundle", Some('b'), Value, "DIR", "path to the root of the bundle directory (default .)"),
    opt("console-socket", None, Value, "PATH", "AF_UNIX socket that receives the pty master"),
    opt("pid-file", None, Value, "FILE", "file to write the process id to"),
    opt("no-pivot", None, Flag, "", "do not use pivot_root to jail the process inside the rootfs"),
    opt("no-new-keyring", None, Flag, "", "do not create a new session keyring for the container"),
    opt("preserve-fds", None, Value, "N", "pass N additional file descriptors to the container"),
    opt("detach", Some('d'), Flag, "", "detach from the container's process"),
    opt("keep", None, Flag, "", "do not delete the container after it exits"),
    opt("no-subreaper", None, Flag, "", "accepted; strata never makes itself a subreaper"),
];

static EXEC_OPTS: [Opt; 17] = [
    opt("process", Some('p'), Value, "FILE", "path to a process.json"),
    opt("tty", Some('t'), Flag, "", "allocate a pseudo-TTY"),
    opt("console-socket", None, Value, "PATH", "AF_UNIX socket that receives the pty master"),
    opt("cwd", None, Value, "DIR", "current working directory in the container"),
    opt("env", Some('e'), Multi, "KEY=VALUE", "set an environment variable"),
    opt("user", Some('u'), Value, "UID[:GID]", "user (and group) to run as"),
    opt("additional-gids", Some('g'), Multi, "GID", "additional group"),
    opt("cap", Some('c'), Multi, "CAP", "add a capability"),
    opt("no-new-privs", None, Flag, "", "set no_new_privs for the process"),
    opt("apparmor", None, Value, "PROFILE", "AppArmor profile for the process"),
    opt("process-label", None, Value, "LABEL", "SELinux label for the process"),
    opt("detach", Some('d'), Flag, "", "detach from the process"),
    opt("pid-file", None, Value, "FILE", "file to write the process id to"),
    opt("preserve-fds", None, Value, "N", "pass N additional file descriptors to the process"),
    opt("cgroup", None, Multi, "PATH", "run in a sub-cgroup of the container (not supported yet)"),
    opt("ignore-paused", None, Flag, "", "allow exec in a paused container"),
    opt("tty-size", None, Value, "ROWS,COLS", "hidden"),
];

static KILL_OPTS: [Opt; 1] = [opt("all", Some('a'), Flag, "", "send the signal to all processes in the container")];
static DELETE_OPTS: [Opt; 1] = [opt("force", Some('f'), Flag, "", "delete even if running (SIGKILL)")];
static LIST_OPTS: [Opt; 2] = [
    opt("format", Some('f'), Value, "table|json", "output format (default table)"),
    opt("quiet", Some('q'), Flag, "", "display only container ids"),
];
static PS_OPTS: [Opt; 1] = [opt("format", Some('f'), Value, "table|json", "output format (default table)")];
static EVENTS_OPTS: [Opt; 2] = [
    opt("interval", None, Value, "DURATION", "stats collection interval (default 5s)"),
    opt("stats", None, Flag, "", "display the container's stats then exit"),
];
static SPEC_OPTS: [Opt; 2] = [
    opt("bundle", Some('b'), Value, "DIR", "path to the root of the bundle directory (default .)"),
    opt("rootless", None, Flag, "", "generate a configuration for a rootless container"),
];
static UPDATE_OPTS: [Opt; 19] = [
    opt("resources", Some('r'), Value, "FILE", "linux.resources JSON (- for stdin)"),
    opt("blkio-weight", None, Value, "N", ""),
    opt("cpu-period", None, Value, "N", ""),
    opt("cpu-quota", None, Value, "N", ""),
    opt("cpu-burst", None, Value, "N", ""),
    opt("cpu-share", None, Value, "N", ""),
    opt("cpu-rt-period", None, Value, "N", ""),
    opt("cpu-rt-runtime", None, Value, "N", ""),
    opt("cpu-idle", None, Value, "N", ""),
    opt("cpuset-cpus", None, Value, "LIST", ""),
    opt("cpuset-mems", None, Value, "LIST", ""),
    opt("memory", None, Value, "SIZE", ""),
    opt("memory-reservation", None, Value, "SIZE", ""),
    opt("memory-swap", None, Value, "SIZE", ""),
    opt("kernel-memory", None, Value, "SIZE", ""),
    opt("kernel-memory-tcp", None, Value, "SIZE", ""),
    opt("pids-limit", None, Value, "N", ""),
    opt("l3-cache-schema", None, Value, "SCHEMA", "Intel RDT (not supported)"),
    opt("mem-bw-schema", None, Value, "SCHEMA", "Intel RDT (not supported)"),
];

const fn cmd(
    name: &'static str,
    about: &'static str,
    opts: &'static [Opt],
    positionals: &'static [&'static str],
) -> Cmd {
    Cmd { name, about, opts, positionals, optional: None, trailing: None }
}

pub static COMMANDS: [Cmd; 16] = [
    cmd("create", "Create a container", &CREATE_OPTS, &["ID"]),
    cmd("start", "Execute the user-defined process of a created container", &[], &["ID"]),
    cmd("run", "Create and run a container", &RUN_OPTS, &["ID"]),
    Cmd { trailing: Some("COMMAND"), ..cmd("exec", "Execute a new process inside the container", &EXEC_OPTS, &["ID"]) },
    cmd("state", "Output the state of a container", &[], &["ID"]),
    Cmd {
        optional: Some("SIGNAL"),
        ..cmd("kill", "Send a signal (default SIGTERM) to the container's init", &KILL_OPTS, &["ID"])
    },
    cmd("delete", "Delete any resources held by the container", &DELETE_OPTS, &["ID"]),
    cmd("list", "List containers started by strata with the given root", &LIST_OPTS, &[]),
    cmd("pause", "Suspend all processes in the container", &[], &["ID"]),
    cmd("resume", "Resume all processes that have been paused", &[], &["ID"]),
    Cmd {
        trailing: Some("PS-ARGS"),
        ..cmd("ps", "Display the processes running inside a container", &PS_OPTS, &["ID"])
    },
    cmd("events", "Display container events (OOM notifications, statistics)", &EVENTS_OPTS, &["ID"]),
    cmd("update", "Update container resource constraints", &UPDATE_OPTS, &["ID"]),
    cmd("spec", "Create a new specification file", &SPEC_OPTS, &[]),
    cmd("features", "Show the enabled features", &[], &[]),
    cmd("help", "Show help for a command", &[], &[]),
];

/// What the command line asks for.
#[derive(Debug)]
pub enum Parsed {
    Help(String),
    Version,
    Run(Cli),
}

pub const VERSION: &str = concat!("strata version ", env!("CARGO_PKG_VERSION"), "\nspec: 1.2.1\n");

fn find(name: &str) -> Option<&'static Cmd> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// Parse `args` (without the program name).
pub fn parse_args(args: &[String]) -> Result<Parsed, UsageError> {
    let mut i = 0;
    let global = parse(None, &GLOBAL, args, &mut i, true)?;
    if global.flag("help") {
        return Ok(Parsed::Help(help(&GLOBAL, &COMMANDS, None)));
    }
    if global.flag("version") {
        return Ok(Parsed::Version);
    }
    let Some(name) = args.get(i) else {
        return Err(UsageError { message: "missing command".into(), command: None });
    };
    let Some(command) = find(name) else {
        return Err(UsageError { message: format!("unknown command {name:?}"), command: None });
    };
    i += 1;
    if command.name == "help" {
        return Ok(Parsed::Help(help(&GLOBAL, &COMMANDS, args.get(i).and_then(|n| find(n)))));
    }
    if args[i..].iter().take_while(|a| *a != "--").any(|a| a == "--help" || a == "-h") && command.trailing.is_none()
        || args.get(i).is_some_and(|a| a == "--help" || a == "-h")
    {
        return Ok(Parsed::Help(help(&GLOBAL, &COMMANDS, Some(command))));
    }
    let m = parse(Some(command), command.opts, args, &mut i, false)?;
    let bad = |message: String| UsageError { message, command: Some(command.name) };
    let log_format = match global.value("log-format").unwrap_or("text") {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => return Err(bad(format!("invalid --log-format {other:?}: text or json"))),
    };
    Ok(Parsed::Run(Cli {
        root: PathBuf::from(global.value("root").unwrap_or(DEFAULT_ROOT)),
        log: global.value("log").map(str::to_owned),
        log_format,
        debug: global.flag("debug"),
        systemd_cgroup: global.flag("systemd-cgroup"),
        rootless: global.value("rootless").map(str::to_owned),
        criu: global.value("criu").map(str::to_owned),
        command: to_command(command.name, m).map_err(bad)?,
    }))
}

fn id(m: &Matches) -> String {
    m.positionals.first().cloned().unwrap_or_default()
}

fn path(m: &Matches, long: &str) -> Option<PathBuf> {
    m.value(long).map(PathBuf::from)
}

fn number(m: &Matches, long: &str) -> Result<u32, String> {
    m.value(long).map_or(Ok(0), |v| v.parse().map_err(|_| format!("--{long}: {v:?} is not a number")))
}

fn format(m: &Matches) -> Result<ListFormat, String> {
    match m.value("format").unwrap_or("table") {
        "table" => Ok(ListFormat::Table),
        "json" => Ok(ListFormat::Json),
        other => Err(format!("invalid --format {other:?}: table or json")),
    }
}

fn create_args(m: &Matches) -> Result<CreateArgs, String> {
    Ok(CreateArgs {
        bundle: path(m, "bundle").unwrap_or_else(|| PathBuf::from(".")),
        console_socket: path(m, "console-socket"),
        pid_file: path(m, "pid-file"),
        no_pivot: m.flag("no-pivot"),
        no_new_keyring: m.flag("no-new-keyring"),
        preserve_fds: number(m, "preserve-fds")?,
        id: id(m),
    })
}

fn to_command(name: &str, m: Matches) -> Result<Command, String> {
    let s = |long: &str| m.value(long).map(str::to_owned);
    Ok(match name {
        "create" => Command::Create(create_args(&m)?),
        "start" => Command::Start(IdArg { id: id(&m) }),
        "run" => Command::Run(RunArgs { create: create_args(&m)?, detach: m.flag("detach"), keep: m.flag("keep") }),
        "exec" => {
            let additional_gids = m
                .values("additional-gids")
                .iter()
                .map(|g| g.parse().map_err(|_| format!("--additional-gids: {g:?} is not a number")))
                .collect::<Result<_, _>>()?;
            Command::Exec(Box::new(ExecArgs {
                process: path(&m, "process"),
                tty: m.flag("tty"),
                console_socket: path(&m, "console-socket"),
                cwd: path(&m, "cwd"),
                env: m.values("env").to_vec(),
                user: s("user"),
                additional_gids,
                cap: m.values("cap").to_vec(),
                no_new_privs: m.flag("no-new-privs"),
                apparmor: s("apparmor"),
                process_label: s("process-label"),
                detach: m.flag("detach"),
                pid_file: path(&m, "pid-file"),
                preserve_fds: number(&m, "preserve-fds")?,
                cgroup: m.values("cgroup").to_vec(),
                ignore_paused: m.flag("ignore-paused"),
                id: id(&m),
                command: m.trailing.clone(),
            }))
        }
        "state" => Command::State(IdArg { id: id(&m) }),
        "kill" => Command::Kill(KillArgs {
            all: m.flag("all"),
            id: id(&m),
            signal: m.positionals.get(1).cloned().unwrap_or_else(|| "SIGTERM".to_owned()),
        }),
        "delete" => Command::Delete(DeleteArgs { force: m.flag("force"), id: id(&m) }),
        "list" => Command::List(ListArgs { format: format(&m)?, quiet: m.flag("quiet") }),
        "pause" => Command::Pause(IdArg { id: id(&m) }),
        "resume" => Command::Resume(IdArg { id: id(&m) }),
        "ps" => Command::Ps(PsArgs { format: format(&m)?, id: id(&m), ps_args: m.trailing.clone() }),
        "events" => Command::Events(EventsArgs {
            interval: s("interval").unwrap_or_else(|| "5s".to_owned()),
            stats: m.flag("stats"),
            id: id(&m),
        }),
        "update" => Command::Update(Box::new(UpdateArgs {
            resources: s("resources"),
            flags: crate::cgroup::UpdateFlags {
                blkio_weight: s("blkio-weight"),
                cpu_period: s("cpu-period"),
                cpu_quota: s("cpu-quota"),
                cpu_burst: s("cpu-burst"),
                cpu_share: s("cpu-share"),
                cpu_rt_period: s("cpu-rt-period"),
                cpu_rt_runtime: s("cpu-rt-runtime"),
                cpu_idle: s("cpu-idle"),
                cpuset_cpus: s("cpuset-cpus"),
                cpuset_mems: s("cpuset-mems"),
                memory: s("memory"),
                memory_reservation: s("memory-reservation"),
                memory_swap: s("memory-swap"),
                kernel_memory: s("kernel-memory"),
                kernel_memory_tcp: s("kernel-memory-tcp"),
                pids_limit: s("pids-limit"),
            },
            l3_cache_schema: s("l3-cache-schema"),
            mem_bw_schema: s("mem-bw-schema"),
            id: id(&m),
        })),
        "spec" => Command::Spec(SpecArgs {
            bundle: path(&m, "bundle").unwrap_or_else(|| PathBuf::from(".")),
            rootless: m.flag("rootless"),
        }),
        _ => Command::Features,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&str]) -> Cli {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        match parse_args(&args).unwrap() {
            Parsed::Run(cli) => cli,
            other => panic!("{other:?}"),
        }
    }

    /// runc 1.1's flags per command (from `runc <command> --help`): every one must be accepted.
    const RUNC_FLAGS: &[(&str, &[&str])] = &[
        (
            "create",
            &["--bundle", "-b", "--console-socket", "--pid-file", "--no-pivot", "--no-new-keyring", "--preserve-fds"],
        ),
        (
            "run",
            &[
                "--bundle",
                "-b",
                "--console-socket",
                "--detach",
                "-d",
                "--keep",
                "--pid-file",
                "--no-subreaper",
                "--no-pivot",
                "--no-new-keyring",
                "--preserve-fds",
            ],
        ),
        (
            "exec",
            &[
                "--console-socket",
                "--cwd",
                "--env",
                "-e",
                "--tty",
                "-t",
                "--user",
                "-u",
                "--additional-gids",
                "-g",
                "--process",
                "-p",
                "--detach",
                "-d",
                "--pid-file",
                "--process-label",
                "--apparmor",
                "--no-new-privs",
                "--cap",
                "-c",
                "--preserve-fds",
                "--cgroup",
                "--ignore-paused",
            ],
        ),
        ("kill", &["--all", "-a"]),
        ("delete", &["--force", "-f"]),
        ("list", &["--format", "-f", "--quiet", "-q"]),
        ("ps", &["--format", "-f"]),
        ("events", &["--interval", "--stats"]),
        ("spec", &["--bundle", "-b", "--rootless"]),
        (
            "update",
            &[
                "--resources",
                "-r",
                "--blkio-weight",
                "--cpu-period",
                "--cpu-quota",
                "--cpu-share",
                "--cpu-rt-period",
                "--cpu-rt-runtime",
                "--cpuset-cpus",
                "--cpuset-mems",
                "--kernel-memory",
                "--kernel-memory-tcp",
                "--memory",
                "--memory-reservation",
                "--memory-swap",
                "--pids-limit",
                "--l3-cache-schema",
                "--mem-bw-schema",
            ],
        ),
    ];

    #[test]
    fn every_runc_flag_is_known() {
        for (name, flags) in RUNC_FLAGS {
            let cmd = find(name).unwrap();
            for flag in *flags {
                let known = if let Some(long) = flag.strip_prefix("--") {
                    cmd.opts.iter().any(|o| o.long == long)
                } else {
                    cmd.opts.iter().any(|o| Some(o.short.unwrap_or('?')) == flag.chars().nth(1))
                };
                assert!(known, "{name} {flag}");
            }
        }
        for flag in [
            "--root",
            "--log",
            "--log-format",
            "--debug",
            "--systemd-cgroup",
            "--rootless",
            "--criu",
            "--help",
            "--version",
        ] {
            assert!(GLOBAL.iter().any(|o| format!("--{}", o.long) == flag), "{flag}");
        }
    }

    #[test]
    fn client_invocations_parse() {
        let c =
            parsed(&["--log-format=json", "--log", "/r/oci-log", "create", "--bundle", "/b", "--pid-file", "/p", "id"]);
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.log.as_deref(), Some("/r/oci-log"));
        let Command::Create(a) = c.command else { panic!() };
        assert_eq!((a.bundle, a.id), (PathBuf::from("/b"), "id".to_owned()));

        let c = parsed(&["--root", "/run/containerd/runc/default", "kill", "--all", "t2", "15"]);
        assert_eq!(c.root, PathBuf::from("/run/containerd/runc/default"));
        let Command::Kill(k) = c.command else { panic!() };
        assert!(k.all && k.signal == "15");

        let Command::Exec(e) = parsed(&["exec", "-t", "-e", "A=1", "c1", "sh", "-c", "echo -n x"]).command else {
            panic!()
        };
        assert!(e.tty && e.env == ["A=1"] && e.command == ["sh", "-c", "echo -n x"]);
        let Command::Kill(k) = parsed(&["kill", "c1"]).command else { panic!() };
        assert_eq!(k.signal, "SIGTERM");

        // --rootless takes a value like every value flag (runc: a string flag, default auto).
        for args in [&["--rootless", "true", "list"][..], &["--rootless=true", "list"]] {
            let c = parsed(args);
            assert_eq!(c.rootless.as_deref(), Some("true"));
            assert!(matches!(c.command, Command::List(_)));
        }
        let Command::Run(r) = parsed(&["run", "--no-subreaper", "-d", "c1"]).command else { panic!() };
        assert!(r.detach);
    }

    #[test]
    fn help_version_and_mistakes() {
        let parse = |a: &[&str]| parse_args(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(matches!(parse(&["--version"]), Ok(Parsed::Version)));
        assert!(matches!(parse(&["--root", "/r", "-v"]), Ok(Parsed::Version)));
        assert!(matches!(parse(&["--log-format=json", "--help"]), Ok(Parsed::Help(h)) if h.contains("create")));
        assert!(matches!(parse(&["-h", "list"]), Ok(Parsed::Help(_))));
        assert!(matches!(parse(&["create", "--help"]), Ok(Parsed::Help(h)) if h.contains("--pid-file")));
        assert!(matches!(parse(&[]), Err(e) if e.message == "missing command"));
        assert!(matches!(parse(&["frob"]), Err(e) if e.message == "unknown command \"frob\""));
        assert!(
            matches!(parse(&["create"]), Err(e) if e.message == "missing argument ID" && e.command == Some("create"))
        );
        assert!(matches!(parse(&["--log-format", "xml", "list"]), Err(e) if e.message.contains("xml")));
    }
}
