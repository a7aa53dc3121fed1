//! The runc-compatible command line: same subcommands, flags, defaults and exit codes.
//! Accepted-but-ignored runc flags are listed in [`ignored`] with the reason.

pub mod args;
mod default_config;
mod features;
mod ignored;
mod lifecycle;
mod query;
mod resources;
pub mod rootless;
pub mod table;
mod version;

use std::path::PathBuf;

use crate::container::id::ContainerId;
use crate::error::{Error, ErrorKind};
use crate::logging;

pub use table::{Parsed, parse_args};
pub use version::text as version_text;

pub const DEFAULT_ROOT: &str = "/run/strata";

/// The usage of a command (or of the program), shown after a usage error.
pub fn command_help(command: Option<&str>) -> String {
    args::help(&table::GLOBAL, &table::COMMANDS, command.and_then(|c| table::COMMANDS.iter().find(|x| x.name == c)))
}

#[derive(Debug)]
pub struct Cli {
    /// Root directory for container state (tmpfs recommended); the default depends on who runs
    /// strata (see [`rootless`])
    pub root: Option<PathBuf>,
    /// Write logs to FILE instead of stderr
    pub log: Option<String>,
    /// Log format: text or json
    pub log_format: LogFormat,
    /// Enable debug logging
    pub debug: bool,
    /// Use systemd to manage cgroups (a transient unit per container)
    pub systemd_cgroup: bool,
    /// Rootless mode: true, false or auto
    pub rootless: Option<String>,
    /// Path to criu (accepted for compatibility; checkpointing is not supported)
    pub criu: Option<String>,
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug)]
pub enum Command {
    /// Create a container
    Create(CreateArgs),
    /// Execute the user-defined process of a created container
    Start(IdArg),
    /// Create and run a container
    Run(RunArgs),
    /// Execute a new process inside the container
    Exec(Box<ExecArgs>),
    /// Output the state of a container
    State(IdArg),
    /// Send a signal to the container's init process
    Kill(KillArgs),
    /// Delete any resources held by the container
    Delete(DeleteArgs),
    /// List containers started by strata with the given root
    List(ListArgs),
    /// Suspend all processes in the container
    Pause(IdArg),
    /// Resume all processes that have been paused
    Resume(IdArg),
    /// Display the processes running inside a container
    Ps(PsArgs),
    /// Display container events such as OOM notifications and resource statistics
    Events(EventsArgs),
    /// Update container resource constraints
    Update(Box<UpdateArgs>),
    /// Create a new specification file
    Spec(SpecArgs),
    /// Show the enabled features
    Features,
}

impl Command {
    /// `--preserve-fds` of create, run and exec.
    fn preserve_fds(&self) -> u32 {
        match self {
            Command::Create(a) => a.preserve_fds,
            Command::Run(a) => a.create.preserve_fds,
            Command::Exec(a) => a.preserve_fds,
            _ => 0,
        }
    }
}

#[derive(Debug)]
pub struct IdArg {
    pub id: String,
}

#[derive(Debug, Clone)]
pub struct CreateArgs {
    /// Path to the root of the bundle directory
    pub bundle: PathBuf,
    /// Path to an AF_UNIX socket which will receive the pty master
    pub console_socket: Option<PathBuf>,
    /// File to write the process id to
    pub pid_file: Option<PathBuf>,
    /// Do not use pivot_root to jail the process inside the rootfs
    pub no_pivot: bool,
    /// Do not create a new session keyring for the container
    pub no_new_keyring: bool,
    /// Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N)
    pub preserve_fds: u32,
    pub id: String,
}

#[derive(Debug)]
pub struct RunArgs {
    pub create: CreateArgs,
    /// Detach from the container's process
    pub detach: bool,
    /// Do not delete the container after it exits
    pub keep: bool,
}

#[derive(Debug)]
pub struct ExecArgs {
    /// Path to a process.json
    pub process: Option<PathBuf>,
    /// Allocate a pseudo-TTY
    pub tty: bool,
    /// Path to an AF_UNIX socket which will receive the pty master
    pub console_socket: Option<PathBuf>,
    /// Current working directory in the container
    pub cwd: Option<PathBuf>,
    /// Set environment variables (KEY=value)
    pub env: Vec<String>,
    /// UID (format: <uid>[:<gid>])
    pub user: Option<String>,
    /// Additional gids
    pub additional_gids: Vec<u32>,
    /// Add a capability to the bounding, effective, permitted and ambient sets
    pub cap: Vec<String>,
    /// Set the no new privileges value for the process
    pub no_new_privs: bool,
    /// AppArmor profile for the process
    pub apparmor: Option<String>,
    /// SELinux label for the process
    pub process_label: Option<String>,
    /// Detach from the process
    pub detach: bool,
    /// File to write the process id to
    pub pid_file: Option<PathBuf>,
    /// Pass N additional file descriptors to the process
    pub preserve_fds: u32,
    /// Run the process in a sub-cgroup of the container (not supported yet)
    pub cgroup: Vec<String>,
    /// Allow exec in a paused container
    pub ignore_paused: bool,
    pub id: String,
    /// The command and its arguments
    pub command: Vec<String>,
}

#[derive(Debug)]
pub struct PsArgs {
    /// Output format: table or json
    pub format: ListFormat,
    pub id: String,
    /// Options for ps (default -ef)
    pub ps_args: Vec<String>,
}

#[derive(Debug)]
pub struct EventsArgs {
    /// Set the stats collection interval
    pub interval: String,
    /// Display the container's stats then exit
    pub stats: bool,
    pub id: String,
}

#[derive(Debug)]
pub struct UpdateArgs {
    /// Path to a file with the resources to update (linux.resources JSON), or - for stdin
    pub resources: Option<String>,
    /// runc's individual resource flags
    pub flags: crate::cgroup::UpdateFlags,
    /// Intel RDT L3 cache schema (not supported)
    pub l3_cache_schema: Option<String>,
    /// Intel RDT memory bandwidth schema (not supported)
    pub mem_bw_schema: Option<String>,
    pub id: String,
}

#[derive(Debug)]
pub struct KillArgs {
    /// Send the signal to all processes in the container
    pub all: bool,
    pub id: String,
    pub signal: String,
}

#[derive(Debug)]
pub struct DeleteArgs {
    /// Forcibly delete the container if it is still running (uses SIGKILL)
    pub force: bool,
    pub id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug)]
pub struct ListArgs {
    /// Output format: table or json
    pub format: ListFormat,
    /// Display only container ids
    pub quiet: bool,
}

#[derive(Debug)]
pub struct SpecArgs {
    /// Path to the root of the bundle directory
    pub bundle: PathBuf,
    /// Generate a configuration for a rootless container
    pub rootless: bool,
}

/// Run the parsed command; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32, Error> {
    // Before anything is opened (the log file first): see reserve_preserved_fds.
    crate::spawn::reserve_preserved_fds(cli.command.preserve_fds())?;
    let format = match cli.log_format {
        LogFormat::Text => logging::Format::Text,
        LogFormat::Json => logging::Format::Json,
    };
    logging::init(cli.log.as_deref(), format, cli.debug).map_err(|e| Error::new(ErrorKind::Other, e))?;
    let host = rootless::Host::read();
    let rootless = host.rootless(rootless::RootlessFlag::parse(cli.rootless.as_deref())?);
    let creates = matches!(cli.command, Command::Create(_) | Command::Run(_));
    if let Command::Spec(a) = &cli.command {
        return default_config::write_default_config(a).map(|()| 0);
    }
    if let Command::Features = &cli.command {
        return features::print().map(|()| 0);
    }
    let root = &match cli.root {
        Some(root) => root,
        None => host.default_root()?,
    };
    if rootless && creates {
        make_private_root(root)?;
    }
    match cli.command {
        Command::Create(a) => lifecycle::create(root, &a, rootless, cli.systemd_cgroup).map(|()| 0),
        Command::Start(a) => lifecycle::start(root, &a.id).map(|()| 0),
        Command::Run(a) => lifecycle::run(root, &a, rootless, cli.systemd_cgroup),
        // runc's exit code for a runtime failure of exec is 255 (the process's own otherwise).
        Command::Exec(a) => Ok(lifecycle::exec(root, &a).unwrap_or_else(|e| {
            logging::error(&e.chain());
            255
        })),
        Command::State(a) => query::state(root, &a.id).map(|()| 0),
        Command::Kill(a) => lifecycle::kill(root, &a).map(|()| 0),
        Command::Delete(a) => lifecycle::delete(root, &a).map(|()| 0),
        Command::List(a) => query::list(root, &a).map(|()| 0),
        Command::Pause(a) => resources::pause(root, &a.id).map(|()| 0),
        Command::Resume(a) => resources::resume(root, &a.id).map(|()| 0),
        Command::Ps(a) => resources::ps(root, &a).map(|()| 0),
        Command::Events(a) => resources::events(root, &a).map(|()| 0),
        Command::Update(a) => resources::update(root, &a).map(|()| 0),
        Command::Spec(_) | Command::Features => Ok(0),
    }
}

/// A rootless state root is private to its user (0700, as runc makes it): other users must not
/// read the containers' configs and states.
fn make_private_root(root: &std::path::Path) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::metadata(root) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(root).map_err(|e| {
                crate::container::state::io_error(ErrorKind::Other, format!("create state root {}", root.display()), e)
            })
        }
        Err(e) => Err(crate::container::state::io_error(ErrorKind::Other, format!("state root {}", root.display()), e)),
    }
}

pub(crate) fn parse_id(id: &str) -> Result<ContainerId, Error> {
    ContainerId::parse(id).map_err(|e| Error::new(ErrorKind::InvalidSpec, e))
}
