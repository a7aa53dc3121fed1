//! runc's flags, command by command, and their conversion into the typed arguments.

use std::path::PathBuf;

use super::args::{Cmd, Kind, Matches, Opt, UsageError, help, parse};
use super::*;

const fn opt(long: &'static str, short: Option<char>, kind: Kind, value: &'static str, help: &'static str) -> Opt {
    Opt { long, short, kind, value, help, hidden: false }
}

/// An option one client passes that is no business of a person: parsed, never shown.
const fn hidden(long: &'static str, kind: Kind, value: &'static str) -> Opt {
    Opt { long, short: None, kind, value, help: "", hidden: true }
}
use Kind::{Flag, Multi, Value};

/// The options before the command. `--help` and `--version` may come anywhere among them, as
/// with runc (urfave/cli): `strata --root X --version`.
pub static GLOBAL: [Opt; 9] = [
    opt(
        "root",
        None,
        Value,
        "DIR",
        "root directory for container state (default /run/strata; rootless: $XDG_RUNTIME_DIR/strata)",
    ),
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
    hidden("tty-size", Value, "ROWS,COLS"),
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
    opt("blkio-weight", None, Value, "N", "block IO weight (10-1000)"),
    opt("cpu-period", None, Value, "N", "CPU CFS period in microseconds"),
    opt("cpu-quota", None, Value, "N", "CPU CFS quota in microseconds per period"),
    opt("cpu-burst", None, Value, "N", "CPU CFS burst in microseconds"),
    opt("cpu-share", None, Value, "N", "CPU shares (a relative weight)"),
    opt("cpu-rt-period", None, Value, "N", "CPU real-time period in microseconds"),
    opt("cpu-rt-runtime", None, Value, "N", "CPU real-time runtime in microseconds per period"),
    opt("cpu-idle", None, Value, "N", "1 makes the cgroup SCHED_IDLE (cgroup v2)"),
    opt("cpuset-cpus", None, Value, "LIST", "CPUs the container may use (0-3, 0,1)"),
    opt("cpuset-mems", None, Value, "LIST", "memory nodes the container may use"),
    opt("memory", None, Value, "SIZE", "memory limit (bytes, or with a k, m or g suffix)"),
    opt("memory-reservation", None, Value, "SIZE", "memory soft limit"),
    opt("memory-swap", None, Value, "SIZE", "memory plus swap limit (-1: unlimited)"),
    opt("kernel-memory", None, Value, "SIZE", "kernel memory limit (cgroup v1, deprecated)"),
    opt("kernel-memory-tcp", None, Value, "SIZE", "kernel TCP buffer limit (cgroup v1, deprecated)"),
    opt("pids-limit", None, Value, "N", "maximum number of processes (-1: unlimited)"),
    opt("l3-cache-schema", None, Value, "SCHEMA", "Intel RDT (not supported)"),
    opt("mem-bw-schema", None, Value, "SCHEMA", "Intel RDT (not supported)"),
];

const fn cmd(
    name: &'static str,
    about: &'static str,
    opts: &'static [Opt],
    positionals: &'static [&'static str],
) -> Cmd {
    Cmd { name, about, details: details(name), opts, positionals, optional: None, trailing: None }
}

/// What each command does beyond its one line, in the words a person needs to use it.
const fn details(name: &str) -> &'static str {
    match name.as_bytes() {
        b"create" => {
            "Sets up the container the bundle's config.json describes (namespaces, mounts, cgroup, \
             credentials) and leaves its process waiting just before the user's program; start runs \
             it. The ID must be unique in the state directory (--root)."
        }
        b"start" => "Runs the user's program in a container that create made.",
        b"run" => {
            "Creates and starts a container. In the foreground (no --detach) strata relays the \
             process's terminal if it has one, forwards signals to it, exits with its status, and \
             deletes the container unless --keep is given."
        }
        b"exec" => {
            "Runs another process in a running container: COMMAND, or the process.json given with \
             --process. In the foreground strata exits with the process's status (255 when the \
             process could not be started)."
        }
        b"state" => "Prints the container's state as JSON: id, status, pid, bundle, creation time and more.",
        b"kill" => {
            "Sends SIGNAL (a name such as TERM or SIGTERM, or a number) to the container's init \
             process, or with --all to every process in its cgroup."
        }
        b"delete" => {
            "Removes what create made (its cgroup, its state directory). A container still running \
             is refused unless --force is given, which kills it first (SIGKILL)."
        }
        b"list" => "Lists the containers of the state directory (--root); --quiet prints only their ids.",
        b"pause" => "Freezes every process of the container (the cgroup freezer); resume thaws them.",
        b"resume" => "Thaws the processes of a container that pause froze.",
        b"ps" => {
            "Runs ps(1) with PS-ARGS (default -ef) and keeps the container's processes; with \
             --format json prints their host pids."
        }
        b"events" => {
            "Prints the container's resource statistics and OOM notifications as JSON lines, every \
             --interval until the container is gone; --stats prints the statistics once."
        }
        b"update" => {
            "Changes the container's cgroup limits, from a linux.resources JSON document \
             (--resources) or from the flags."
        }
        b"spec" => "Writes a default config.json into the bundle directory, as runc spec does.",
        b"features" => {
            "Prints the runtime-spec features document: what this build supports (spec versions, \
             hooks, mount options, namespaces, capabilities, cgroup, seccomp)."
        }
        _ => "",
    }
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
        root: global.value("root").map(PathBuf::from),
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
        assert_eq!(c.root, Some(PathBuf::from("/run/containerd/runc/default")));
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

    /// Where the second column of a help line starts: after the first run of two spaces that
    /// follows the left column.
    fn second_column(line: &str) -> Option<usize> {
        let left = line.trim_start().len();
        let indent = line.len() - left;
        line[indent..].find("  ").map(|i| indent + i + line[indent + i..].len() - line[indent + i..].trim_start().len())
    }

    #[test]
    fn help_hides_internal_flags_and_aligns_columns() {
        for cmd in COMMANDS.iter().map(Some).chain([None]) {
            let text = help(&GLOBAL, &COMMANDS, cmd);
            assert!(!text.contains("tty-size"), "{text}");
            for section in text.split("\n\n") {
                let rows: Vec<_> = section.lines().filter(|l| l.starts_with("  ")).collect();
                let starts: std::collections::BTreeSet<_> = rows.iter().map(|l| second_column(l)).collect();
                assert!(starts.len() <= 1 && !starts.contains(&None), "{starts:?} in\n{section}");
            }
        }
        assert!(find("exec").unwrap().opts.iter().any(|o| o.long == "tty-size" && o.hidden));
        let kill = help(&GLOBAL, &COMMANDS, find("kill"));
        assert!(
            kill.lines().all(|l| l.len() <= 80) && kill.contains("--all to every process in its cgroup."),
            "{kill}"
        );
        let c = parsed(&["exec", "--tty-size", "24,80", "c1", "sh"]);
        assert!(matches!(c.command, Command::Exec(_)));
    }
}
