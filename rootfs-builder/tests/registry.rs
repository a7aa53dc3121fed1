//! strata-rootfs and registries (Debian's docker-registry on 127.0.0.1:5400-5499, seeded with
//! skopeo from layouts built here; a fake registry for what a real one never does): pull by
//! tag and digest, platforms, Docker schema 2, shared layers fetched once, resume after a cut
//! connection, corrupt blobs refused, TLS + Basic auth, login/logout, a token server, short
//! names, push (chunked, monolithic, mounted) read back by skopeo and podman, rmi/tag/gc, and
//! hostile answers. hack/test-registry runs them (with STRATA_BIN set to the runtime).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::let_underscore_must_use)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::registry::{Answer, ConnectProxy, FakeRegistry, Guard, Registry};
use common::*;
use serde_json::{Value, json};

/// The tool with its own store and nothing of the host's registry configuration: an empty
/// registries.conf, an auth file in the scratch directory, HOME there too.
fn tool(s: &Scratch) -> Tool {
    let conf = s.join("registries.conf");
    if !conf.exists() {
        fs::write(&conf, "").unwrap();
    }
    Tool::new(s)
        .with_env("CONTAINERS_REGISTRIES_CONF", conf.to_str().unwrap())
        .with_env("REGISTRY_AUTH_FILE", s.join("auth.json").to_str().unwrap())
        .with_env("HOME", s.path.to_str().unwrap())
}

/// A small runnable image: busybox, a passwd, three layers (gzip, gzip, zstd).
fn busybox_image(tag_file: &str) -> Image {
    let mut base =
        vec![dir("bin"), bin_file("bin/busybox", fs::read("/bin/busybox").expect("/bin/busybox (busybox-static)"))];
    for applet in ["sh", "cat", "sleep", "echo", "ls", "id"] {
        base.push(symlink(&format!("bin/{applet}"), "busybox"));
    }
    Image::new()
        .layer(&base)
        .layer(&[dir("etc"), file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"), dir("root")])
        .layer_with(&[dir("data"), file("data/tag", tag_file)], Comp::Zstd)
        .config(json!({"Cmd": ["/bin/cat", "/data/tag"]}))
}

fn layout_of(s: &Scratch, name: &str, img: &Image) -> String {
    oci_layout(&s.join(name), img, "latest")
}

fn manifest_layers(v: &Value) -> Vec<String> {
    v["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_string()).collect()
}

/// Run the bundle's command with the runtime under test (STRATA_BIN, else runc).
fn run_bundle(bundle: &Path, id: &str) -> String {
    let runtime = std::env::var("STRATA_BIN").unwrap_or_else(|_| "runc".into());
    let out =
        Command::new(&runtime).args(["run", "--bundle"]).arg(bundle).arg(id).stdin(Stdio::null()).output().unwrap();
    let _ = Command::new(&runtime).args(["delete", "-f", id]).output();
    assert!(out.status.success(), "{runtime} run failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn pull_by_tag_and_by_digest_then_bundle_and_run() {
    require_root();
    let s = Scratch::new("reg-pull");
    let reg = Registry::start(&s.join("registry"), Guard::Plain);
    let img = busybox_image("pulled by tag\n");
    reg.seed(&layout_of(&s, "img", &img), "app:1.0", &[]);
    let t = tool(&s);
    let name = format!("{}/app:1.0", reg.addr());

    // Without docker:// and without --tls-verify=false: HTTPS is refused with a hint.
    let err = t.fails(&["pull", &name]);
    assert!(err.contains("--tls-verify=false") && err.contains(&reg.addr()), "{err}");

    let v = t.json(&["--tls-verify=false", "pull", &name]);
    assert_eq!(v["id"], image_id(&img));
    assert_eq!((v["layers"].as_u64(), v["unpacked"].as_u64()), (Some(3), Some(3)));
    assert_eq!(v["reference"], name.as_str(), "stored under host:port/name:tag");

    // Every command takes that name; the bundle runs.
    let info = t.json(&["inspect", &name]);
    let digest = info["manifest_digest"].as_str().unwrap().to_string();
    assert_eq!(info["source"], format!("{}/app@{digest}", reg.addr()));
    let listed = t.ok(&["images", "--digests"]);
    assert!(listed.contains(&name) && listed.contains(&digest), "{listed}");
    let b = s.join("bundle");
    t.ok(&["bundle", &name, b.to_str().unwrap()]);
    let env: Vec<String> =
        serde_json::from_slice::<Value>(&fs::read(b.join("config.json")).unwrap()).unwrap()["process"]["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap().to_string())
            .collect();
    assert!(env.contains(&"HOME=/root".to_string()), "HOME from the image's passwd: {env:?}");
    assert_eq!(run_bundle(&b, &format!("strata-reg-pull-{}", std::process::id())), "pulled by tag\n");
    t.ok(&["rm", b.to_str().unwrap()]);

    // By digest, into another store: the same image, recorded under the digest.
    let t2 = Tool { store: s.join("store2"), env: t.env.clone() };
    let by_digest = format!("docker://{}/app@{digest}", reg.addr());
    let v = t2.json(&["--tls-verify=false", "pull", &by_digest]);
    assert_eq!(v["id"], image_id(&img));
    assert_eq!(v["reference"], format!("{}/app@{digest}", reg.addr()));

    // A tag that is not there names the registry.
    let err = t.fails(&["--tls-verify=false", "pull", &format!("docker://{}/app:nope", reg.addr())]);
    assert!(err.contains("no such image") && err.contains(&reg.addr()), "{err}");
}

#[test]
fn platform_selection_and_docker_schema2() {
    require_root();
    let s = Scratch::new("reg-platform");
    let reg = Registry::start(&s.join("registry"), Guard::Plain);
    let amd = Image::new().layer(&[file("arch", "amd64")]).arch("amd64");
    let arm = Image::new().layer(&[file("arch", "arm64")]).arch("arm64");
    let layout = s.join("multi");
    let descs = vec![write_manifest(&layout, &amd), write_manifest(&layout, &arm)];
    // The layout's one entry is an index of both.
    let index = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": descs}),
    )
    .unwrap();
    let hex = sha256_hex(&index);
    fs::write(layout.join("blobs/sha256").join(&hex), &index).unwrap();
    write_index(
        &layout,
        vec![
            json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": format!("sha256:{hex}"), "size": index.len(),
                    "annotations": {"org.opencontainers.image.ref.name": "latest"}}),
        ],
    );
    reg.seed(&format!("oci:{}:latest", layout.display()), "multi:1", &["--all"]);
    let t = tool(&s);
    let name = format!("docker://{}/multi:1", reg.addr());
    let v = t.json(&["--tls-verify=false", "--platform", "linux/arm64", "pull", &name]);
    assert_eq!(v["id"], image_id(&arm));
    let v = t.json(&["--tls-verify=false", "--platform", "linux/amd64", "pull", &name]);
    assert_eq!(v["id"], image_id(&amd));
    let err = t.fails(&["--tls-verify=false", "--platform", "linux/s390x", "pull", &name]);
    assert!(err.contains("no image for platform linux/s390x"), "{err}");

    // A Docker schema 2 image (skopeo keeps a docker-archive's format).
    let docker = s.join("d.tar");
    let img = Image::new().layer(&[file("from", "docker")]);
    docker_archive(&docker, &img, "example.com/d:1");
    reg.seed(&format!("docker-archive:{}", docker.display()), "docker:1", &["--format", "v2s2"]);
    let raw = reg.skopeo_raw("docker:1");
    assert_eq!(raw["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");
    let v = t.json(&["--tls-verify=false", "pull", &format!("docker://{}/docker:1", reg.addr())]);
    assert_eq!(v["id"], image_id(&img));
}

#[test]
fn a_shared_layer_is_fetched_once_and_a_corrupt_blob_leaves_nothing() {
    require_root();
    let s = Scratch::new("reg-shared");
    let reg = Registry::start(&s.join("registry"), Guard::Plain);
    let shared = [dir("shared"), file("shared/f", "in both images")];
    let a = Image::new().layer(&shared).layer(&[file("a", "a")]);
    let b = Image::new().layer(&shared).layer(&[file("b", "b")]);
    reg.seed(&layout_of(&s, "a", &a), "a:1", &[]);
    reg.seed(&layout_of(&s, "b", &b), "b:1", &[]);
    let t = tool(&s);
    t.ok(&["--tls-verify=false", "pull", &format!("docker://{}/a:1", reg.addr())]);
    let v = t.json(&["--tls-verify=false", "pull", &format!("docker://{}/b:1", reg.addr())]);
    assert_eq!(v["unpacked"], 1, "only b's own layer is new");
    let shared_blob = digest(&Comp::Gzip.compress(&a.layers[0].0));
    assert_eq!(reg.gets(&format!("/v2/a/blobs/{shared_blob}")), 1);
    assert_eq!(reg.gets(&format!("/v2/b/blobs/{shared_blob}")), 0, "a layer in the store is not fetched again");

    // A blob corrupted in the registry's storage: refused, nothing kept.
    let c = Image::new().layer(&[file("c", "to be corrupted")]);
    reg.seed(&layout_of(&s, "c", &c), "c:1", &[]);
    let blob = digest(&Comp::Gzip.compress(&c.layers[0].0));
    let path = reg.blob_file(&blob);
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&path, bytes).unwrap();
    let fresh = Tool { store: s.join("store-c"), env: t.env.clone() };
    let err = fresh.fails(&["--tls-verify=false", "pull", &format!("docker://{}/c:1", reg.addr())]);
    assert!(err.contains("does not match its digest"), "{err}");
    assert!(
        fresh.layer_dirs().is_empty() && fresh.tmp_entries().is_empty(),
        "left behind: {:?} {:?}",
        fresh.layer_dirs(),
        fresh.tmp_entries()
    );
    assert!(names(&fresh.store.join("images")).is_empty());
}

#[test]
fn tls_basic_auth_login_and_logout() {
    require_root();
    let s = Scratch::new("reg-tls");
    let reg = Registry::start(&s.join("registry"), Guard::TlsBasic { user: "alice".into(), password: "s3cret".into() });
    let img = Image::new().layer(&[file("secret", "behind TLS")]);
    reg.seed(&layout_of(&s, "img", &img), "private:1", &[]);
    let t = tool(&s);
    let certs = reg.certs.as_ref().unwrap().to_str().unwrap().to_string();
    let name = format!("docker://{}/private:1", reg.addr());

    // The test CA is not a system root: TLS fails without --cert-dir.
    let err = t.fails(&["pull", &name]);
    assert!(err.contains(&reg.addr()), "{err}");
    let err = t.fails(&["--cert-dir", &certs, "pull", &name]);
    assert!(err.contains("authentication required") && err.contains(&reg.addr()), "{err}");
    let err = t.fails(&["--cert-dir", &certs, "--creds", "alice:wrong", "pull", &name]);
    assert!(err.contains("refused the credentials") && err.contains(&reg.addr()), "{err}");
    let v = t.json(&["--cert-dir", &certs, "--creds", "alice:s3cret", "pull", &name]);
    assert_eq!(v["id"], image_id(&img));

    // login checks the credentials, then writes the auth file 0600.
    let auth = s.join("auth.json");
    let login = |pass: &str| {
        let mut c = Command::new(bin());
        c.args(["--store"]).arg(&t.store).args([
            "--cert-dir",
            &certs,
            "login",
            "-u",
            "alice",
            "--password-stdin",
            &reg.addr(),
        ]);
        c.envs(t.env.iter().map(|(k, v)| (k, v)));
        let mut child = c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), format!("{pass}\n").as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let bad = login("nope");
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("refused the credentials"));
    assert!(!auth.exists(), "a refused login writes nothing");
    let ok = login("s3cret");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(fs::metadata(&auth).unwrap().permissions().mode() & 0o777, 0o600);
    let fresh = Tool { store: s.join("store2"), env: t.env.clone() };
    fresh.ok(&["--cert-dir", &certs, "pull", &name]);
    t.ok(&["logout", &reg.addr()]);
    let err = Tool { store: s.join("store3"), env: t.env.clone() }.fails(&["--cert-dir", &certs, "pull", &name]);
    assert!(err.contains("authentication required"), "{err}");
    let err = t.fails(&["logout", &reg.addr()]);
    assert!(err.contains("not logged in"), "{err}");

    // A credential helper named by ~/.docker/config.json's credHelpers (HOME is the scratch dir).
    let helpers = s.join("helpers");
    fs::create_dir_all(&helpers).unwrap();
    let helper = helpers.join("docker-credential-strata-test");
    fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread server\necho \"$1 $server\" >> {}\n[ \"$server\" = {} ] || exit 1\necho '{{\"ServerURL\":\"'$server'\",\"Username\":\"alice\",\"Secret\":\"s3cret\"}}'\n",
            s.join("helper.log").display(),
            reg.addr()
        ),
    )
    .unwrap();
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir_all(s.join(".docker")).unwrap();
    fs::write(s.join(".docker/config.json"), format!(r#"{{"credHelpers": {{"{}": "strata-test"}}}}"#, reg.addr()))
        .unwrap();
    let path = format!("{}:{}", helpers.display(), std::env::var("PATH").unwrap());
    let with_helper = Tool { store: s.join("store4"), env: t.env.clone() }.with_env("PATH", &path);
    with_helper.ok(&["--cert-dir", &certs, "pull", &name]);
    assert_eq!(fs::read_to_string(s.join("helper.log")).unwrap().trim(), format!("get {}", reg.addr()));
}

#[test]
fn proxy_environment_variables_are_honoured() {
    require_root();
    let s = Scratch::new("reg-proxy");
    let reg = Registry::start(&s.join("registry"), Guard::Plain);
    let img = Image::new().layer(&[file("p", "through the proxy")]);
    reg.seed(&layout_of(&s, "img", &img), "proxied:1", &[]);
    let proxy = ConnectProxy::start();
    let t = tool(&s).with_env("HTTP_PROXY", &format!("http://127.0.0.1:{}", proxy.port));
    let v = t.json(&["--tls-verify=false", "pull", &format!("docker://{}/proxied:1", reg.addr())]);
    assert_eq!(v["id"], image_id(&img));
    let targets = proxy.targets.lock().unwrap().clone();
    assert!(targets.iter().any(|t| *t == reg.addr()), "the proxy saw no CONNECT to {}: {targets:?}", reg.addr());
    // NO_PROXY lists the registry: straight there.
    let before = targets.len();
    let direct = Tool { store: s.join("store2"), env: t.env.clone() }.with_env("NO_PROXY", "127.0.0.1");
    direct.ok(&["--tls-verify=false", "pull", &format!("docker://{}/proxied:1", reg.addr())]);
    assert_eq!(proxy.targets.lock().unwrap().len(), before, "NO_PROXY was not honoured");
}

#[test]
fn a_token_server_grants_pull_and_push() {
    require_root();
    assert!(
        Path::new("/usr/bin/python3").is_file(),
        "/usr/bin/python3 is missing (apt-get install python3 python3-cryptography)"
    );
    let s = Scratch::new("reg-token");
    let reg = Registry::start(&s.join("registry"), Guard::Token { user: "bob".into(), password: "tok3n".into() });
    let img = Image::new().layer(&[file("t", "token")]);
    reg.seed(&layout_of(&s, "img", &img), "team/app:1", &[]);
    let t = tool(&s);
    let name = format!("docker://{}/team/app:1", reg.addr());
    let err = t.fails(&["--tls-verify=false", "pull", &name]);
    assert!(err.contains("authentication required") && err.contains(&reg.addr()), "{err}");
    let err = t.fails(&["--tls-verify=false", "--creds", "bob:bad", "pull", &name]);
    assert!(err.contains("refused the credentials"), "{err}");
    let v = t.json(&["--tls-verify=false", "--creds", "bob:tok3n", "pull", &name]);
    assert_eq!(v["id"], image_id(&img));
    t.ok(&[
        "--tls-verify=false",
        "--creds",
        "bob:tok3n",
        "push",
        &format!("{}/team/app:1", reg.addr()),
        &format!("docker://{}/team/copy:2", reg.addr()),
    ]);
    assert_eq!(manifest_layers(&reg.skopeo_raw("team/copy:2")), manifest_layers(&reg.skopeo_raw("team/app:1")));
}

#[test]
fn short_names_follow_registries_conf() {
    require_root();
    let s = Scratch::new("reg-short");
    let reg = Registry::start(&s.join("registry"), Guard::Plain);
    let img = Image::new().layer(&[file("s", "short")]);
    reg.seed(&layout_of(&s, "img", &img), "library/app:1", &[]);
    fs::write(
        s.join("registries.conf"),
        format!(
            "unqualified-search-registries = [\"{a}\"]\n[aliases]\n\"nick\" = \"{a}/library/app:1\"\n[[registry]]\nlocation = \"{a}\"\ninsecure = true\n[[registry]]\nprefix = \"blocked.example\"\nblocked = true\n",
            a = reg.addr()
        ),
    )
    .unwrap();
    let t = tool(&s);
    let v = t.json(&["pull", "library/app:1"]);
    assert_eq!(
        (v["id"].clone(), v["reference"].clone()),
        (json!(image_id(&img)), json!(format!("{}/library/app:1", reg.addr())))
    );
    let v = t.json(&["pull", "docker://nick"]);
    assert_eq!(v["id"], image_id(&img));
    let err = t.fails(&["pull", "docker://blocked.example/x:1"]);
    assert!(err.contains("blocked"), "{err}");
}

#[test]
fn commit_pushes_and_skopeo_and_podman_read_it_back() {
    require_root();
    require_tool("podman");
    let s = Scratch::new("reg-push");
    let reg = Registry::start(&s.join("registry"), Guard::Plain);
    let img = busybox_image("base\n");
    reg.seed(&layout_of(&s, "img", &img), "base:1", &[]);
    let t = tool(&s).with_env(strata_rootfs::push::CHUNK_ENV, "4096");
    t.ok(&["--tls-verify=false", "pull", &format!("docker://{}/base:1", reg.addr())]);
    let b = s.join("bundle");
    t.ok(&["bundle", &format!("{}/base:1", reg.addr()), b.to_str().unwrap(), "--", "/bin/sleep", "600"]);
    fs::write(b.join("rootfs/data/tag"), "committed and pushed\n").unwrap();
    // The container runs while it is committed; chunked upload (the chunk size is 4 KiB here).
    let running = Detached::start(&b, &format!("strata-reg-push-{}", std::process::id()));
    let dest = format!("docker://{}/committed:2", reg.addr());
    let v =
        t.json(&["--tls-verify=false", "commit", b.to_str().unwrap(), &dest, "-c", r#"CMD ["/bin/cat", "/data/tag"]"#]);
    drop(running);
    let ours = t.json(&["inspect", &format!("{}/committed:2", reg.addr())]);
    assert_eq!(v["push"]["manifest"], ours["manifest_digest"]);
    assert!(reg.requests().iter().any(|r| r.starts_with("PATCH /v2/committed/blobs/uploads/")), "no chunked upload");
    t.ok(&["rm", b.to_str().unwrap()]);

    // skopeo sees the same manifest digest and layers.
    let raw = reg.skopeo_raw("committed:2");
    assert_eq!(manifest_layers(&raw), manifest_layers(&ours["manifest"]));
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
        .arg(format!("docker://{}/committed:2", reg.addr()))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), ours["manifest_digest"].as_str().unwrap());

    // podman pulls it (its own storage; its runroot path must be short) and runs it.
    let root = s.join("podman-root");
    let short = ShortDir::new();
    let runroot = short.0.clone();
    let podman = |args: &[&str]| {
        let out = Command::new("podman")
            .arg("--root")
            .arg(&root)
            .arg("--runroot")
            .arg(&runroot)
            .args(["--storage-driver", "overlay"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "podman {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    podman(&["pull", "-q", "--tls-verify=false", &format!("{}/committed:2", reg.addr())]);
    let digest = podman(&["image", "inspect", "--format", "{{.Digest}}", &format!("{}/committed:2", reg.addr())]);
    assert_eq!(digest.trim(), ours["manifest_digest"].as_str().unwrap());
    // No CAP_SYS_RESOURCE here: podman's default rlimits may exceed the hard limits, so ask for
    // those (nproc at most podman's own 32768).
    let limit = |name: &str| {
        let limits = fs::read_to_string("/proc/self/limits").unwrap();
        let line = limits.lines().find(|l| l.starts_with(name)).unwrap().to_string();
        line.split_whitespace().rev().nth(1).unwrap().to_string()
    };
    let nofile = limit("Max open files");
    let nproc = limit("Max processes").parse::<u64>().map_or(32768, |n| n.min(32768));
    let out = podman(&[
        "run",
        "--rm",
        "--net",
        "none",
        "--ulimit",
        &format!("nofile={nofile}:{nofile}"),
        "--ulimit",
        &format!("nproc={nproc}:{nproc}"),
        &format!("{}/committed:2", reg.addr()),
    ]);
    assert_eq!(out, "committed and pushed\n");
    podman(&["rmi", "-a", "-f"]);

    // The pulled image to another repository of the same registry: every blob is mounted from
    // the repository it came from.
    let monolithic = tool(&s);
    let v = monolithic.json(&[
        "--tls-verify=false",
        "push",
        &format!("{}/base:1", reg.addr()),
        &format!("docker://{}/copy:3", reg.addr()),
    ]);
    let outcomes: Vec<&str> = v["blobs"].as_array().unwrap().iter().map(|b| b[1].as_str().unwrap()).collect();
    assert!(outcomes.iter().all(|o| *o == "mounted"), "{outcomes:?}");
    assert!(
        reg.requests().iter().any(|r| r.contains("/v2/copy/blobs/uploads/?mount=") && r.contains("HTTP/1.1 201")),
        "no mount"
    );
    // Again: everything exists now.
    let v = monolithic.json(&[
        "--tls-verify=false",
        "push",
        &format!("{}/base:1", reg.addr()),
        &format!("docker://{}/copy:3", reg.addr()),
    ]);
    assert!(v["blobs"].as_array().unwrap().iter().all(|b| b[1] == "exists"));
    // A fresh image pushed whole: monolithic PUTs, no PATCH.
    let mono = Image::new().layer(&[file("m", "monolithic")]);
    monolithic.ok(&["pull", &layout_of(&s, "mono", &mono)]);
    monolithic.ok(&["--tls-verify=false", "push", "mono:latest", &format!("docker://{}/mono:1", reg.addr())]);
    assert!(!reg.requests().iter().any(|r| r.starts_with("PATCH /v2/mono/")));
    assert_eq!(manifest_layers(&reg.skopeo_raw("mono:1")).len(), 1);
}

#[test]
fn rmi_tag_and_gc() {
    require_root();
    let s = Scratch::new("reg-rmi");
    let t = tool(&s);
    let img = Image::new().layer(&[file("x", "x")]);
    t.ok(&["pull", &layout_of(&s, "img", &img)]);
    let id = image_id(&img);
    assert_eq!(t.json(&["tag", "img:latest", "127.0.0.1:5499/other"])["reference"], "127.0.0.1:5499/other:latest");
    let b = s.join("bundle");
    t.ok(&["bundle", "img", b.to_str().unwrap()]);
    // Untagging one name keeps the image; the last name is refused while a bundle uses it.
    t.ok(&["rmi", "img"]);
    assert!(t.ok(&["images", "--quiet"]).contains(&id));
    let err = t.fails(&["rmi", "127.0.0.1:5499/other"]);
    assert!(err.contains("bundle") && err.contains("--force"), "{err}");
    t.ok(&["rm", b.to_str().unwrap()]);
    let v = t.json(&["rmi", "127.0.0.1:5499/other"]);
    assert_eq!(v[0]["removed"], true);
    assert!(!t.ok(&["images", "--quiet"]).contains(&id));
    let gc = t.json(&["gc"]);
    assert_eq!(gc["layers"], 1);
    assert!(t.layer_dirs().is_empty());
    let err = t.fails(&["rmi", "img"]);
    assert!(err.contains("no image"), "{err}");
}

/// Changes the answer the fake registry would give: (path, request, earlier requests, answer).
type Tweak = dyn Fn(&str, &common::registry::Seen, usize, Answer) -> Answer + Send + Sync;

/// A registry serving one image, with `tweak` deciding what goes wrong.
fn fake_with(
    img: &Image,
    tweak: impl Fn(&str, &common::registry::Seen, usize, Answer) -> Answer + Send + Sync + 'static,
) -> (FakeRegistry, String) {
    let dir =
        std::env::temp_dir().join(format!("strata-fake-{}-{}", std::process::id(), sha256_hex(&img.config_json())));
    let desc = write_manifest(&dir, img);
    let mdigest = desc["digest"].as_str().unwrap().to_string();
    // Every blob in memory: the layout is gone before the first request.
    let blobs: std::collections::HashMap<String, Vec<u8>> = fs::read_dir(dir.join("blobs/sha256"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (format!("sha256:{}", e.file_name().to_string_lossy()), fs::read(e.path()).unwrap())
        })
        .collect();
    let _ = fs::remove_dir_all(&dir);
    let read = move |d: &str| blobs.get(d).cloned();
    let manifest = read(&mdigest).unwrap();
    let mtype = "application/vnd.oci.image.manifest.v1+json".to_string();
    let md = mdigest.clone();
    let fake = FakeRegistry::start(move |req, n| {
        let normal = if req.path == "/v2/" {
            Answer::ok(b"{}", "application/json")
        } else if req.path.starts_with("/v2/img/manifests/") {
            Answer::Full(
                200,
                vec![("Content-Type".into(), mtype.clone()), ("Docker-Content-Digest".into(), md.clone())],
                manifest.clone(),
            )
        } else if let Some(d) = req.path.strip_prefix("/v2/img/blobs/") {
            match read(d) {
                Some(b) => Answer::ok(&b, "application/octet-stream"),
                None => Answer::status(404),
            }
        } else {
            Answer::status(404)
        };
        tweak(&req.path, req, n, normal)
    });
    let name = format!("docker://{}/img:1", fake.addr());
    (fake, name)
}

#[test]
fn a_cut_connection_resumes_and_errors_are_retried() {
    let s = Scratch::new("reg-resume");
    let t = tool(&s);
    let img = Image::new().layer(&[bin_file("big", (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect())]);
    let layer = digest(&Comp::Gzip.compress(&img.layers[0].0));
    let l2 = layer.clone();
    let (fake, name) = fake_with(&img, move |path, req, n, normal| {
        if path.ends_with(&l2) {
            let Answer::Full(_, h, body) = normal else { return normal };
            return match (n, req.header("range")) {
                // The first attempt breaks half way; the resumed one gets the rest.
                (0, _) => Answer::Cut(200, h, body.clone(), body.len() / 2),
                (_, Some(r)) => {
                    let from: usize = r.trim_start_matches("bytes=").trim_end_matches('-').parse().unwrap();
                    let mut h = h;
                    h.push(("Content-Range".into(), format!("bytes {from}-{}/{}", body.len() - 1, body.len())));
                    Answer::Full(206, h, body[from..].to_vec())
                }
                _ => Answer::status(500),
            };
        }
        // The manifest fails twice with 503 first.
        if path.contains("/manifests/") && n < 2 {
            return Answer::status(503);
        }
        normal
    });
    let v = t.json(&["--tls-verify=false", "pull", &name]);
    assert_eq!(v["id"], image_id(&img));
    let seen = fake.requests();
    let ranged: Vec<_> =
        seen.iter().filter(|r| r.path.ends_with(&layer)).map(|r| r.header("range").map(str::to_string)).collect();
    assert_eq!(ranged.len(), 2, "{ranged:?}");
    assert!(ranged[1].as_deref().is_some_and(|r| r.starts_with("bytes=") && r != "bytes=0-"), "{ranged:?}");
    assert_eq!(seen.iter().filter(|r| r.path.contains("/manifests/")).count(), 3, "two 503s retried");
}

#[test]
fn hostile_registry_answers_are_refused() {
    let s = Scratch::new("reg-hostile");
    let img = Image::new().layer(&[file("h", "hostile")]);
    let cases: Vec<(&str, Box<Tweak>)> = vec![
        (
            "larger than",
            Box::new(|p, _, _, n| {
                if p.contains("/manifests/") {
                    Answer::ok(&vec![b' '; 5 << 20], "application/vnd.oci.image.manifest.v1+json")
                } else {
                    n
                }
            }),
        ),
        (
            "manifest does not match its digest",
            Box::new(|p, _, _, n| match n {
                Answer::Full(s, mut h, b) if p.contains("/manifests/") => {
                    h.retain(|(k, _)| k != "Docker-Content-Digest");
                    h.push(("Docker-Content-Digest".into(), format!("sha256:{}", "0".repeat(64))));
                    Answer::Full(s, h, b)
                }
                other => other,
            }),
        ),
        (
            "redirected in a loop",
            Box::new(|p, _, _, n| {
                if p.contains("/blobs/") {
                    Answer::Full(302, vec![("Location".into(), p.to_string())], Vec::new())
                } else {
                    n
                }
            }),
        ),
        (
            "external URLs",
            Box::new(|p, _, _, n| match n {
                Answer::Full(s, h, b) if p.contains("/manifests/") => {
                    let mut m: Value = serde_json::from_slice(&b).unwrap();
                    m["layers"][0]["urls"] = json!(["http://elsewhere.example/layer"]);
                    let b = serde_json::to_vec(&m).unwrap();
                    let h = h.into_iter().filter(|(k, _)| k != "Docker-Content-Digest").collect();
                    Answer::Full(s, h, b)
                }
                other => other,
            }),
        ),
        (
            "does not match its digest",
            Box::new(|p, _, _, n| match n {
                Answer::Full(s, h, mut b) if p.contains("/blobs/") && b.first() == Some(&0x1f) => {
                    let last = b.len() - 1;
                    b[last] ^= 0xff;
                    Answer::Full(s, h, b)
                }
                other => other,
            }),
        ),
    ];
    for (i, (expect, tweak)) in cases.into_iter().enumerate() {
        let t = Tool { store: s.join(&format!("store-{i}")), env: tool(&s).env };
        let (_fake, name) = fake_with(&img, tweak);
        let err = t.fails(&["--tls-verify=false", "pull", &name]);
        assert!(err.contains(expect), "case {i}: expected {expect:?}: {err}");
        assert!(
            t.layer_dirs().is_empty() && t.tmp_entries().is_empty(),
            "case {i} left {:?} {:?}",
            t.layer_dirs(),
            t.tmp_entries()
        );
    }
}

#[test]
fn bearer_challenges_fetch_a_token_for_the_scope() {
    let s = Scratch::new("reg-bearer");
    let t = tool(&s);
    let img = Image::new().layer(&[file("b", "bearer")]);
    let port = std::sync::Arc::new(std::sync::Mutex::new(0u16));
    let p2 = port.clone();
    let (fake, name) = fake_with(&img, move |path, req, _, normal| {
        if path.starts_with("/token") {
            return if req.header("authorization") == Some("Basic dTpw") {
                Answer::ok(br#"{"token":"t0k"}"#, "application/json")
            } else {
                Answer::status(401)
            };
        }
        if req.header("authorization") != Some("Bearer t0k") {
            let realm = format!("http://127.0.0.1:{}/token", *p2.lock().unwrap());
            return Answer::Full(
                401,
                vec![("WWW-Authenticate".into(), format!("Bearer realm=\"{realm}\",service=\"fake\""))],
                Vec::new(),
            );
        }
        normal
    });
    *port.lock().unwrap() = fake.port;
    let v = t.json(&["--tls-verify=false", "--creds", "u:p", "pull", &name]);
    assert_eq!(v["id"], image_id(&img));
    let token_reqs: Vec<String> =
        fake.requests().iter().filter(|r| r.path.starts_with("/token")).map(|r| r.path.clone()).collect();
    assert!(
        token_reqs.iter().any(|p| p.contains("scope=repository%3Aimg%3Apull") && p.contains("service=fake")),
        "{token_reqs:?}"
    );
}

/// A container of the runtime under test running in the background; killed and deleted when
/// dropped.
struct Detached {
    runtime: String,
    id: String,
}

impl Detached {
    fn start(bundle: &Path, id: &str) -> Self {
        let runtime = std::env::var("STRATA_BIN").unwrap_or_else(|_| "runc".into());
        // The container keeps the descriptors it is given: a pipe would never reach EOF.
        let log = bundle.with_file_name(format!("{id}.stderr"));
        let status = Command::new(&runtime)
            .args(["run", "-d", "--bundle"])
            .arg(bundle)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .status()
            .unwrap();
        assert!(status.success(), "{runtime} run -d: {}", fs::read_to_string(&log).unwrap_or_default());
        let state = Command::new(&runtime).args(["state", id]).output().unwrap();
        let state: Value = serde_json::from_slice(&state.stdout).unwrap();
        assert_eq!(state["status"], "running", "{state}");
        Self { runtime, id: id.to_string() }
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        let _ = Command::new(&self.runtime).args(["delete", "-f", &self.id]).output();
    }
}

/// A directory with a short path (podman refuses a runroot longer than 50 characters).
struct ShortDir(PathBuf);

impl ShortDir {
    fn new() -> Self {
        let p = PathBuf::from(format!("/tmp/srp{}", std::process::id()));
        fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for ShortDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn flatten_of_a_registry_image_streams_it_and_refuses_a_corrupt_blob() {
    require_root();
    let s = Scratch::new("reg-flatten");
    let reg = Registry::start(&s.join("registry"), Guard::Plain);
    let img = Image::new()
        .layer(&[dir("etc"), file("etc/a", "a"), file("etc/gone", "g"), dir("o"), file("o/old", "o")])
        .layer_with(&[whiteout("etc/gone"), dir("o"), opaque("o"), file("o/new", "n")], Comp::Zstd);
    reg.seed(&layout_of(&s, "img", &img), "img:1", &[]);
    let reference = format!("docker://{}/img:1", reg.addr());
    let t = tool(&s);
    let streamed = s.join("streamed");
    t.ok(&["--tls-verify=false", "flatten", &reference, streamed.to_str().unwrap()]);
    assert!(t.layer_dirs().is_empty(), "a flatten from a registry stored layers: {:?}", t.layer_dirs());
    assert_eq!(names(&streamed.join("etc")), vec!["a"]);
    assert_eq!(names(&streamed.join("o")), vec!["new"]);
    // The same tree as a pull and a flatten from the store.
    t.ok(&["--tls-verify=false", "pull", &reference]);
    let stored = s.join("stored");
    t.ok(&["flatten", &image_id(&img), stored.to_str().unwrap()]);
    let opts = SnapOpts { dir_mtimes: true, xattrs: true };
    assert_same_tree(&snapshot(&streamed, opts), &snapshot(&stored, opts), "streamed from the registry vs the store");

    // A corrupted blob: refused after streaming, and the destination is gone again.
    let c = Image::new().layer(&[file("c", "to be corrupted")]);
    reg.seed(&layout_of(&s, "c", &c), "c:1", &[]);
    let blob = digest(&Comp::Gzip.compress(&c.layers[0].0));
    let path = reg.blob_file(&blob);
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&path, bytes).unwrap();
    let out = s.join("corrupt");
    let err =
        t.fails(&["--tls-verify=false", "flatten", &format!("docker://{}/c:1", reg.addr()), out.to_str().unwrap()]);
    assert!(err.contains("does not match its digest"), "{err}");
    assert!(!out.exists(), "a refused flatten left its destination");
}
