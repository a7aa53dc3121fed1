//! strata-rootfs's command line: the one table its parser, `--help`, man pages and shell
//! completions come from (the generator in docgen/ walks `Args::command()`).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueHint};

#[derive(Debug, Parser)]
#[command(
    name = "strata-rootfs",
    version,
    about = "Container images into OCI runtime bundles over a shared layer store"
)]
pub struct Args {
    /// The layer store (default: /var/lib/strata for root; for other users
    /// $XDG_DATA_HOME/strata, else $HOME/.local/share/strata, made 0700).
    #[arg(long, global = true, value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub store: Option<PathBuf>,
    /// Print only what scripts need (ids, paths), no progress.
    #[arg(long, global = true)]
    pub quiet: bool,
    /// Print results as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// The platform to pick from a multi-platform index (os/arch[/variant]); default: this host's.
    #[arg(long, global = true)]
    pub platform: Option<String>,
    /// Require HTTPS and verify certificates (default: unless registries.conf marks the
    /// registry insecure); --tls-verify=false allows plain HTTP and any certificate.
    #[arg(long, global = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub tls_verify: Option<bool>,
    /// Credentials for the registry: USER:PASS (instead of the auth files).
    #[arg(long, global = true, value_name = "USER:PASS")]
    pub creds: Option<String>,
    /// The auth file to read and write (default: $REGISTRY_AUTH_FILE, else
    /// ${XDG_RUNTIME_DIR}/containers/auth.json).
    #[arg(long, global = true, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub authfile: Option<PathBuf>,
    /// A directory with the registry's CA certificates (*.crt) and client certificate
    /// (*.cert + *.key), instead of /etc/containers/certs.d/HOST.
    #[arg(long, global = true, value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub cert_dir: Option<PathBuf>,
    /// registries.conf to use (default: $CONTAINERS_REGISTRIES_CONF, else the standard files).
    #[arg(long, global = true, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub registries_conf: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
        /// The registry's host (and port).
        registry: String,
        /// The user name (asked for on a terminal when not given).
        #[arg(long, short)]
        username: Option<String>,
        /// The password (asked for on a terminal when not given; --password-stdin keeps it out of ps).
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
        #[arg(value_hint = ValueHint::DirPath)]
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
        /// The container's hostname.
        #[arg(long)]
        hostname: Option<String>,
        /// Add or override an environment variable (repeatable).
        #[arg(long = "env", value_name = "K=V")]
        env: Vec<String>,
        /// user, uid, user:group or uid:gid, resolved against the image's /etc/passwd and /etc/group.
        #[arg(long)]
        user: Option<String>,
        /// The working directory of the container's process (default: the image's).
        #[arg(long)]
        workdir: Option<String>,
        /// Arguments replacing the image's Cmd.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Turn a bundle's writable layer into a new layer on top of its image, stored as IMAGE.
    Commit {
        #[arg(value_hint = ValueHint::DirPath)]
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
    Flatten {
        image: String,
        #[arg(value_hint = ValueHint::DirPath)]
        dir: PathBuf,
    },
    /// Unmount and remove a bundle made by `bundle` (refused while a container runs in it).
    Rm {
        #[arg(value_hint = ValueHint::DirPath)]
        dir: PathBuf,
        /// Kill (SIGKILL) what still runs in the bundle first.
        #[arg(long, short)]
        force: bool,
        /// Where strata keeps container state (its --root), to name the containers found
        /// (default: /run/strata for root, $XDG_RUNTIME_DIR/strata for other users, as strata's).
        #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
        state_root: Option<PathBuf>,
    },
    /// Remove layers and blobs that no image and no bundle uses.
    Gc,
}
