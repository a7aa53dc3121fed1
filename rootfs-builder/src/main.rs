//! `strata-rootfs`: container images into OCI runtime bundles over a shared layer store.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

use cli::Global;
use strata_rootfs::bundle;
use strata_rootfs::error_chain::chain;

#[derive(Debug, Parser)]
#[command(
    name = "strata-rootfs",
    version,
    about = "Container images into OCI runtime bundles over a shared layer store"
)]
struct Args {
    /// The layer store.
    #[arg(long, global = true, default_value = "/var/lib/strata")]
    store: PathBuf,
    /// Print only what scripts need (ids, paths), no progress.
    #[arg(long, global = true)]
    quiet: bool,
    /// Print results as JSON.
    #[arg(long, global = true)]
    json: bool,
    /// The platform to pick from a multi-platform index (os/arch[/variant]); default: this host's.
    #[arg(long, global = true)]
    platform: Option<String>,
    /// Require HTTPS and verify certificates (default: unless registries.conf marks the
    /// registry insecure); --tls-verify=false allows plain HTTP and any certificate.
    #[arg(long, global = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    tls_verify: Option<bool>,
    /// Credentials for the registry: USER:PASS (instead of the auth files).
    #[arg(long, global = true, value_name = "USER:PASS")]
    creds: Option<String>,
    /// The auth file to read and write (default: $REGISTRY_AUTH_FILE, else
    /// ${XDG_RUNTIME_DIR}/containers/auth.json).
    #[arg(long, global = true, value_name = "FILE")]
    authfile: Option<PathBuf>,
    /// A directory with the registry's CA certificates (*.crt) and client certificate
    /// (*.cert + *.key), instead of /etc/containers/certs.d/HOST.
    #[arg(long, global = true, value_name = "DIR")]
    cert_dir: Option<PathBuf>,
    /// registries.conf to use (default: $CONTAINERS_REGISTRIES_CONF, else the standard files).
    #[arg(long, global = true, value_name = "FILE")]
    registries_conf: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Import an image into the store (verify every digest, unpack new layers); print its id.
    Pull {
        /// docker://[REGISTRY/]NAME[:TAG|@DIGEST] (or REGISTRY/NAME[:TAG] without the prefix),
        /// oci:PATH[:REF], oci-archive:PATH[:REF], docker-archive:PATH[:REF]
        image: String,
    },
    /// Send a stored image to a registry.
    Push {
        /// A stored image (name or id).
        image: String,
        /// docker://REGISTRY/NAME[:TAG] (default: the image's own name).
        destination: Option<String>,
    },
    /// Log in to a registry: check the credentials and store them in the auth file.
    Login {
        registry: String,
        #[arg(long, short)]
        username: Option<String>,
        #[arg(long, short)]
        password: Option<String>,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove a registry's credentials from the auth file.
    Logout {
        registry: Option<String>,
        /// Remove the credentials of every registry.
        #[arg(long, short)]
        all: bool,
    },
    /// List the stored images.
    Images {
        /// Show the manifest digests.
        #[arg(long)]
        digests: bool,
    },
    /// Remove images: a name is untagged, and an image left without a name (or named by id) is
    /// removed; its layers are freed by `gc`.
    Rmi {
        #[arg(required = true)]
        images: Vec<String>,
        /// Remove an image even though bundles use it (they keep their layers until removed).
        #[arg(long, short)]
        force: bool,
    },
    /// Give a stored image another name.
    Tag { image: String, name: String },
    /// List the bundles and what their writable layers hold.
    Bundles,
    /// Show an image's manifest, configuration, layers and history.
    Inspect { image: String },
    /// Create an OCI runtime bundle: DIR/config.json and DIR/rootfs (an overlay mount).
    Bundle {
        image: String,
        dir: PathBuf,
        /// The bundle's name in the store (default: derived from DIR).
        #[arg(long)]
        name: Option<String>,
        /// Copy the image into a plain directory instead of mounting an overlay.
        #[arg(long)]
        flatten: bool,
        /// A read-only root filesystem (no writable layer).
        #[arg(long)]
        readonly: bool,
        #[arg(long)]
        hostname: Option<String>,
        /// Add or override an environment variable (repeatable).
        #[arg(long = "env", value_name = "K=V")]
        env: Vec<String>,
        /// user, uid, user:group or uid:gid, resolved against the image's /etc/passwd and /etc/group.
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        workdir: Option<String>,
        /// Arguments replacing the image's Cmd.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Turn a bundle's writable layer into a new layer on top of its image, stored as IMAGE.
    Commit {
        dir: PathBuf,
        /// oci:PATH[:REF], oci-archive:PATH[:REF], docker-archive:PATH[:REF], docker://REF
        /// (pushed), or a name for the store only (the image always goes into the store too).
        image: String,
        /// A comment for the new history entry.
        #[arg(long, short)]
        message: Option<String>,
        /// The image's author.
        #[arg(long, short)]
        author: Option<String>,
        /// A Dockerfile instruction for the configuration (CMD, ENTRYPOINT, ENV, WORKDIR, USER,
        /// LABEL, EXPOSE, VOLUME, STOPSIGNAL); repeatable.
        #[arg(long = "change", short = 'c', value_name = "INSTRUCTION")]
        changes: Vec<String>,
        /// Layer compression: gzip, zstd or none.
        #[arg(long, default_value = "gzip")]
        compress: String,
    },
    /// Write the image's final filesystem into a plain directory (no overlay).
    Flatten { image: String, dir: PathBuf },
    /// Unmount and remove a bundle made by `bundle` (refused while a container runs in it).
    Rm {
        dir: PathBuf,
        /// Kill (SIGKILL) what still runs in the bundle first.
        #[arg(long, short)]
        force: bool,
        /// Where strata keeps container state (its --root), to name the containers found.
        #[arg(long, default_value = strata_rootfs::inuse::STRATA_STATE_ROOT)]
        state_root: PathBuf,
    },
    /// Remove layers and blobs that no image and no bundle uses.
    Gc,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let global = Global {
        store: args.store,
        quiet: args.quiet,
        json: args.json,
        platform: args.platform,
        registry: cli::RegistryFlags {
            tls_verify: args.tls_verify,
            creds: args.creds,
            authfile: args.authfile,
            cert_dir: args.cert_dir,
            registries_conf: args.registries_conf,
        },
    };
    let result = match args.command {
        Command::Pull { image } => cli::pull(&global, &image),
        Command::Push { image, destination } => cli::push(&global, &image, destination.as_deref()),
        Command::Login { registry, username, password, password_stdin } => {
            cli::login(&global, &registry, username, password, password_stdin)
        }
        Command::Logout { registry, all } => cli::logout(&global, registry.as_deref(), all),
        Command::Images { digests } => cli::images(&global, digests),
        Command::Rmi { images, force } => cli::rmi(&global, &images, force),
        Command::Tag { image, name } => cli::tag(&global, &image, &name),
        Command::Inspect { image } => cli::inspect(&global, &image),
        Command::Bundle { image, dir, name, flatten, readonly, hostname, env, user, workdir, args } => cli::bundle(
            &global,
            &image,
            &dir,
            bundle::Options { name, flatten, readonly, hostname, env, user, workdir, args },
        ),
        Command::Flatten { image, dir } => cli::flatten(&global, &image, &dir),
        Command::Rm { dir, force, state_root } => cli::rm(&global, &dir, force, &state_root),
        Command::Commit { dir, image, message, author, changes, compress } => {
            cli::commit(&global, &dir, &image, cli::CommitArgs { message, author, changes, compress })
        }
        Command::Bundles => cli::bundles(&global),
        Command::Gc => cli::gc(&global),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strata-rootfs: {}", chain(&e));
            ExitCode::FAILURE
        }
    }
}
