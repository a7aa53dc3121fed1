//! `strata-rootfs`: container images into OCI runtime bundles over a shared layer store.

use std::process::ExitCode;

use clap::Parser;

mod cli;

use cli::Global;
use strata_rootfs::args::{Args, Command};
use strata_rootfs::bundle;
use strata_rootfs::error_chain::chain;

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
        Command::Rm { dir, force, state_root } => {
            let state_root = state_root.unwrap_or_else(strata_rootfs::inuse::default_state_root);
            cli::rm(&global, &dir, force, &state_root)
        }
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
