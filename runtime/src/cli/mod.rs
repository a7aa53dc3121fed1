//! The runc-compatible command line: same subcommands, flags, defaults and exit codes.
//! Accepted-but-ignored runc flags are listed in [`ignored`] with the reason.

mod features;
mod ignored;
mod lifecycle;
mod query;
mod resources;
mod spec;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::container::id::ContainerId;
use crate::error::{Error, ErrorKind};
use crate::logging;

pub const DEFAULT_ROOT: &str = "/run/strata";

#[derive(Debug, Parser)]
#[command(
    name = "strata",
    version = concat!(env!("CARGO_PKG_VERSION"), "\nspec: ", "1.2.1"),
    about = "strata is a fast, runc-compatible OCI container runtime",
    propagate_version = true,
    disable_help_subcommand = false
)]
pub struct Cli {
    /// Root directory for container state (tmpfs recommended)
    #[arg(long, default_value = DEFAULT_ROOT, value_name = "DIR")]
    pub root: PathBuf,
    /// Write logs to FILE instead of stderr
    #[arg(long, value_name = "FILE")]
    pub log: Option<String>,
    /// Log format: text or json
    #[arg(long = "log-format", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Enable debug logging
    #[arg(long)]
    pub debug: bool,
    /// Use systemd to manage cgroups (not supported yet)
    #[arg(long = "systemd-cgroup")]
    pub systemd_cgroup: bool,
    /// Rootless mode: true, false or auto
    #[arg(long, value_name = "VALUE", num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    /// Path to criu (accepted for compatibility; checkpointing is not supported)
    #[arg(long, value_name = "PATH", hide = true)]
    pub criu: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
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

#[derive(Debug, Args)]
pub struct IdArg {
    pub id: String,
}

#[derive(Debug, Args, Clone)]
pub struct CreateArgs {
    /// Path to the root of the bundle directory
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    pub bundle: PathBuf,
    /// Path to an AF_UNIX socket which will receive the pty master
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// File to write the process id to
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Do not use pivot_root to jail the process inside the rootfs
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring for the container
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N)
    #[arg(long = "preserve-fds", default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Detach from the container's process
    #[arg(short, long)]
    pub detach: bool,
    /// Do not delete the container after it exits
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Path to a process.json
    #[arg(short, long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Path to an AF_UNIX socket which will receive the pty master
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Current working directory in the container
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Set environment variables (KEY=value)
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// UID (format: <uid>[:<gid>])
    #[arg(short, long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// Additional gids
    #[arg(short = 'g', long = "additional-gids", value_name = "GID")]
    pub additional_gids: Vec<u32>,
    /// Add a capability to the bounding, effective, permitted and ambient sets
    #[arg(short, long, value_name = "CAP")]
    pub cap: Vec<String>,
    /// Set the no new privileges value for the process
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// AppArmor profile for the process (ignored: AppArmor is not supported)
    #[arg(long, value_name = "PROFILE")]
    pub apparmor: Option<String>,
    /// SELinux label for the process (ignored: SELinux is not supported)
    #[arg(long = "process-label", value_name = "LABEL")]
    pub process_label: Option<String>,
    /// Detach from the process
    #[arg(short, long)]
    pub detach: bool,
    /// File to write the process id to
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Pass N additional file descriptors to the process
    #[arg(long = "preserve-fds", default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
    /// Run the process in a sub-cgroup of the container (not supported yet)
    #[arg(long, value_name = "PATH")]
    pub cgroup: Vec<String>,
    /// Allow exec in a paused container
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    pub id: String,
    /// The command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Output format: table or json
    #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    pub id: String,
    /// Options for ps (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Set the stats collection interval
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    pub interval: String,
    /// Display the container's stats then exit
    #[arg(long)]
    pub stats: bool,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Path to a file with the resources to update (linux.resources JSON), or - for stdin
    #[arg(short, long, value_name = "FILE")]
    pub resources: Option<String>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<String>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<String>,
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<String>,
    #[arg(long = "cpu-burst")]
    pub cpu_burst: Option<String>,
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<String>,
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<String>,
    #[arg(long = "cpu-rt-runtime")]
    pub cpu_rt_runtime: Option<String>,
    #[arg(long = "cpu-idle")]
    pub cpu_idle: Option<String>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    #[arg(long)]
    pub memory: Option<String>,
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    #[arg(long = "kernel-memory")]
    pub kernel_memory: Option<String>,
    #[arg(long = "kernel-memory-tcp")]
    pub kernel_memory_tcp: Option<String>,
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<String>,
    /// Intel RDT L3 cache schema (not supported)
    #[arg(long = "l3-cache-schema")]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT memory bandwidth schema (not supported)
    #[arg(long = "mem-bw-schema")]
    pub mem_bw_schema: Option<String>,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Send the signal to all processes in the container
    #[arg(short, long)]
    pub all: bool,
    pub id: String,
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Forcibly delete the container if it is still running (uses SIGKILL)
    #[arg(short, long)]
    pub force: bool,
    pub id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format: table or json
    #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// Display only container ids
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct SpecArgs {
    /// Path to the root of the bundle directory
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    pub bundle: PathBuf,
    /// Generate a configuration for a rootless container
    #[arg(long = "rootless", id = "spec_rootless")]
    pub rootless: bool,
}

/// Run the parsed command; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32, Error> {
    let format = match cli.log_format {
        LogFormat::Text => logging::Format::Text,
        LogFormat::Json => logging::Format::Json,
    };
    logging::init(cli.log.as_deref(), format, cli.debug).map_err(|e| Error::new(ErrorKind::Other, e))?;
    if cli.systemd_cgroup {
        return Err(Error::msg(
            ErrorKind::Unsupported,
            "the systemd cgroup driver (--systemd-cgroup) is not supported yet",
        ));
    }
    ignored::check_rootless(cli.rootless.as_deref())?;
    let root = &cli.root;
    match cli.command {
        Command::Create(a) => lifecycle::create(root, &a).map(|()| 0),
        Command::Start(a) => lifecycle::start(root, &a.id).map(|()| 0),
        Command::Run(a) => lifecycle::run(root, &a),
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
        Command::Spec(a) => spec::write_spec(&a).map(|()| 0),
        Command::Features => features::print().map(|()| 0),
    }
}

pub(crate) fn parse_id(id: &str) -> Result<ContainerId, Error> {
    ContainerId::parse(id).map_err(|e| Error::new(ErrorKind::InvalidSpec, e))
}
