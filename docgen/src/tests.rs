use super::*;

fn file<'a>(files: &'a [(PathBuf, String)], path: &str) -> &'a str {
    files.iter().find(|(p, _)| p == Path::new(path)).map(|(_, t)| t.as_str()).unwrap_or_else(|| panic!("no {path}"))
}

#[test]
fn a_page_per_command_with_every_visible_option() {
    let files = files();
    for c in ::strata::cli::table::COMMANDS.iter().filter(|c| c.name != "help") {
        let page = file(&files, &format!("share/man/man8/strata-{}.8", c.name));
        for o in c.opts.iter().filter(|o| !o.hidden) {
            assert!(page.contains(&format!("\\fB\\-\\-{}\\fR", o.long.replace('-', "\\-"))), "{} --{}", c.name, o.long);
        }
    }
    assert!(!files.iter().any(|(p, _)| p.ends_with("strata-help.8")), "help has no page");
    let main = file(&files, "share/man/man8/strata.8");
    assert!(main.contains("\\fB\\-\\-root\\fR \\fIDIR\\fR") && main.contains("\\fBstrata\\-kill\\fR(8)"), "{main}");
    for name in ["pull", "push", "login", "bundle", "commit", "rm", "gc"] {
        let page = file(&files, &format!("share/man/man1/strata-rootfs-{name}.1"));
        assert!(page.contains(".TH \"STRATA-ROOTFS-"), "{page}");
    }
    let bundle = file(&files, "share/man/man1/strata-rootfs-bundle.1");
    assert!(bundle.contains("\\fB\\-\\-readonly\\fR") && bundle.contains("<IMAGE> <DIR>"), "{bundle}");
}

#[test]
fn hidden_options_are_nowhere() {
    for (path, text) in files() {
        assert!(!text.contains("tty-size") && !text.contains("tty\\-size"), "{}", path.display());
    }
}

#[test]
fn no_roff_line_starts_with_a_stray_control_character() {
    for (path, text) in files().iter().filter(|(p, _)| p.starts_with("share/man")) {
        for line in text.lines().filter(|l| l.starts_with('.') || l.starts_with('\'')) {
            let known = [".\\\"", ".TH ", ".SH ", ".PP", ".TP", ".B "];
            assert!(known.iter().any(|k| line.starts_with(k)), "{}: {line}", path.display());
        }
    }
}

#[test]
fn completions_know_commands_options_and_containers() {
    let files = files();
    let bash = file(&files, "share/bash-completion/completions/strata");
    assert!(bash.contains("complete -F _strata strata") && bash.contains("list -q"), "{bash}");
    assert!(bash.contains("'kill 0') mapfile -t COMPREPLY < <(compgen -W \"$(_strata_containers)\""), "{bash}");
    assert!(bash.contains("'create 0') COMPREPLY=()"), "create takes a new id: {bash}");
    let zsh = file(&files, "share/zsh/site-functions/_strata");
    assert!(zsh.starts_with("#compdef strata\n") && zsh.contains("'1:argument 1:_strata_containers'"), "{zsh}");
    let fish = file(&files, "share/fish/vendor_completions.d/strata.fish");
    assert!(fish.contains("-a '(__strata_containers)'") && fish.contains("-l all"), "{fish}");
    let rootfs = file(&files, "share/bash-completion/completions/strata-rootfs");
    assert!(rootfs.contains("complete -F _strata_rootfs strata-rootfs") && !rootfs.contains("list -q"), "{rootfs}");
}
