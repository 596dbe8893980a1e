//! Contained runs, tried as a hostile agent would, against the machine's
//! real Landlock: every attempt to take a secret fails, and requests through
//! the proxy still get their credential.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use authsome_tests::echo;
use authsome_tests::runs::{
    echo_home, echo_home_with_prefix, headers_of, KEY, NODE_CLIENT, PYTHON_CLIENT,
};
use authsome_tests::{authsome_bin, eventually, TestHome};

/// What one attempt inside the run printed, and its exit code.
#[derive(Debug)]
struct Attempt {
    name: String,
    code: i32,
    output: String,
}

/// Writes `script` as an executable shell script in the test dir.
fn script(t: &TestHome, name: &str, body: &str) -> PathBuf {
    let path = t.dir().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Reads the `<name>.out` / `<name>.rc` pairs a script left in `dir`.
fn attempts(dir: &Path) -> Vec<Attempt> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "rc") {
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            out.push(Attempt {
                code: std::fs::read_to_string(&path)
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap(),
                output: std::fs::read_to_string(dir.join(format!("{name}.out"))).unwrap(),
                name,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn status(t: &TestHome) -> serde_json::Value {
    serde_json::from_str(&t.run(&["daemon", "status", "--json"], None).ok().stdout).unwrap()
}

/// The shell helper every hostile script starts with: `try NAME CMD...`
/// records CMD's output and exit code under `$OUT`.
const TRY: &str = r#"OUT="$1"; shift
try() { name="$1"; shift; "$@" > "$OUT/$name.out" 2>&1; echo $? > "$OUT/$name.rc"; }
"#;

/// How the home is kept from the command: `AUTHSOME_RUN_USERNS`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Shield {
    /// A private mount namespace covers the home (the default here).
    Mount,
    /// Landlock path rules only.
    Paths,
}

#[test]
fn a_contained_command_cannot_take_a_secret_even_when_it_tries() {
    hostile_agent(Shield::Mount);
}

#[test]
fn a_contained_command_cannot_take_a_secret_with_path_rules_alone() {
    hostile_agent(Shield::Paths);
}

/// Every attempt a hostile agent would make, in one contained run, and the
/// legitimate requests beside them.
fn hostile_agent(shield: Shield) {
    let (t, echo) = echo_home_with_prefix("/api");
    let token = t.token();
    let master_key = std::fs::read_to_string(t.home().join("master.key"))
        .unwrap()
        .trim()
        .to_string();
    let daemon_pid = t.daemon_pid().unwrap();
    let out_dir = t.dir().join("attempts");
    std::fs::create_dir(&out_dir).unwrap();
    std::fs::write(t.dir().join("client.py"), PYTHON_CLIENT).unwrap();
    std::fs::write(t.dir().join("client.js"), NODE_CLIENT).unwrap();
    let home = t.home().display().to_string();
    let dir = t.dir().display().to_string();
    let api = format!("http://127.0.0.1:{}", t.port);
    let secret_route = format!("{api}/v1/connections/echo/default?show_secret=true");
    let body = format!(
        r#"{TRY}
A="{bin}"
# 1. The CLI itself.
try export_all "$A" export --all
try get_show_secret "$A" get echo --field api_key --show-secret
# 2. The home's files.
try cat_token cat "{home}/daemon.token"
try cat_master_key cat "{home}/master.key"
try cat_store cat "{home}/profiles/default/store.db"
try list_home ls -la "{home}"
try write_home sh -c 'echo x > "{home}/planted"'
# A namespace of its own, to unmount the cover or mount something over it.
try nested_userns unshare -Urm --propagation unchanged sh -c 'umount -l "{home}" 2>/dev/null || mount -t tmpfs none /mnt; cat "{home}/daemon.token"'
# 3. The API with a token handed in, directly and through the proxy.
try api_direct curl -sS --max-time 5 --noproxy '*' -H "Authorization: Bearer $STOLEN" "{secret_route}"
try api_localhost curl -sS --max-time 5 --noproxy '*' -H "Authorization: Bearer $STOLEN" "http://localhost:{port}/v1/connections/echo/default?show_secret=true"
try api_via_proxy curl -sS --fail --max-time 5 --noproxy '' -x "$HTTPS_PROXY" -H "Authorization: Bearer $STOLEN" "{secret_route}"
try api_via_proxy_any curl -sS --fail --max-time 5 --noproxy '' -x "$HTTPS_PROXY" -H "Authorization: Bearer $STOLEN" "http://0.0.0.0:{port}/v1/connections/echo/default?show_secret=true"
try api_via_tunnel curl -sS --fail --max-time 5 --noproxy '' -p -x "$HTTPS_PROXY" -H "Authorization: Bearer $STOLEN" "{secret_route}"
try api_via_tunnel_any curl -sS --fail --max-time 5 --noproxy '' -p -x "$HTTPS_PROXY" -H "Host: 127.0.0.1:{port}" -H "Authorization: Bearer $STOLEN" "http://0.0.0.0:{port}/v1/connections/echo/default?show_secret=true"
# 4. Authsome's processes: the CLI (which holds the master key in its
# environment here) and the daemon.
try proc_cli_environ cat /proc/$PPID/environ
try proc_cli_mem head -c 64 /proc/$PPID/mem
try proc_daemon_environ cat /proc/{daemon_pid}/environ
try proc_daemon_maps cat /proc/{daemon_pid}/maps
try proc_daemon_fd ls -l /proc/{daemon_pid}/fd/
# A process of the same user outside the run, dumpable, with a secret in
# its environment: Landlock's scoping, not dumpability, must stop these.
try proc_outsider_environ cat /proc/$OUTSIDER/environ
try proc_outsider_mem head -c 64 /proc/$OUTSIDER/mem
try kill_daemon kill -0 {daemon_pid}
try ptrace_cli python3 -c "import ctypes,sys,time; libc=ctypes.CDLL(None, use_errno=True); pid=int(sys.argv[1]); r=libc.ptrace(16, pid, 0, 0); e=ctypes.get_errno(); r == 0 and (time.sleep(0.1), libc.ptrace(17, pid, 0, 0)); print('attach', r, 'errno', e); sys.exit(1 if r != 0 else 0)" $PPID
# 9. Host swap, 10. TRACE, 11. dot segments.
try host_swap curl -sS --fail --max-time 10 -H "Host: evil.test" "{echo_base}/api/x"
try trace curl -sS --fail --max-time 10 -X TRACE "{echo_base}/api/x"
try dot_segments curl -sS --max-time 10 --path-as-is "{echo_base}/api/../private"
try dot_segments_encoded curl -sS --max-time 10 --path-as-is "{echo_base}/api/%2e%2e/private"
# Legitimate requests in the same run.
try legit_curl curl -sS --fail --max-time 10 "{echo_base}/api/curl"
try legit_python python3 "{dir}/client.py" "{echo_base}/api/python"
try legit_node node "{dir}/client.js" "{echo_base}/api/node"
"#,
        bin = authsome_bin().display(),
        port = t.port,
        echo_base = echo.url(""),
    );
    let hostile = script(&t, "hostile.sh", &body);
    let outsider_secret = "outsider-secret-Zq81Lmx0";
    let mut outsider = std::process::Command::new("sleep")
        .arg("60")
        .env("OUTSIDER_SECRET", outsider_secret)
        .spawn()
        .unwrap();
    let mut cmd = t.cmd(&[
        "run",
        "--",
        hostile.to_str().unwrap(),
        out_dir.to_str().unwrap(),
    ]);
    cmd.env("STOLEN", &token)
        .env("OUTSIDER", outsider.id().to_string())
        .env("AUTHSOME_MASTER_KEY", &master_key)
        .env(
            "AUTHSOME_RUN_USERNS",
            if shield == Shield::Mount { "1" } else { "0" },
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let run = cmd.output().unwrap();
    let _ = outsider.kill();
    let _ = outsider.wait();
    assert!(run.status.success(), "{run:?}");
    assert!(
        !String::from_utf8_lossy(&run.stderr).contains("warning"),
        "full containment on this kernel: {}",
        String::from_utf8_lossy(&run.stderr)
    );

    let all = attempts(&out_dir);
    assert_eq!(all.len(), 30, "every attempt ran: {all:#?}");
    let secrets = [KEY, token.as_str(), master_key.as_str(), outsider_secret];
    for a in all.iter().filter(|a| !a.name.starts_with("legit_")) {
        for s in secrets {
            assert!(!a.output.contains(s), "{} got a secret: {a:?}", a.name);
        }
        let refused = match a.name.as_str() {
            // Under the mount the home lists as an empty directory.
            "list_home" if shield == Shield::Mount => {
                a.code == 0
                    && [
                        "master.key",
                        "daemon.token",
                        "profiles",
                        "config.toml",
                        "audit.log",
                    ]
                    .iter()
                    .all(|f| !a.output.contains(f))
            }
            // The echo server answers these, without a credential.
            "dot_segments" | "dot_segments_encoded" => {
                let headers = headers_of(&a.output);
                headers.get("x-api-key").is_none()
            }
            _ => a.code != 0,
        };
        assert!(refused, "{} was not refused: {a:?}", a.name);
    }
    let by_name = |n: &str| all.iter().find(|a| a.name == n).unwrap();
    let why = match shield {
        Shield::Mount => "No such file or directory",
        Shield::Paths => "Permission denied",
    };
    for cat in ["cat_token", "cat_master_key", "cat_store"] {
        assert!(by_name(cat).output.contains(why), "{:?}", by_name(cat));
    }
    for direct in ["api_direct", "api_localhost"] {
        assert_eq!(
            by_name(direct).code,
            7,
            "connection refused by the sandbox: {:?}",
            by_name(direct)
        );
    }
    for open in ["proc_cli_mem", "proc_outsider_environ", "proc_outsider_mem"] {
        // Refused when opened (a granted open of `mem` fails later, on read).
        assert!(
            by_name(open).output.contains("Permission denied"),
            "{:?}",
            by_name(open)
        );
    }
    assert!(
        by_name("kill_daemon").output.contains("not permitted"),
        "{:?}",
        by_name("kill_daemon")
    );
    for via in [
        "api_via_proxy",
        "api_via_proxy_any",
        "api_via_tunnel",
        "api_via_tunnel_any",
    ] {
        assert!(by_name(via).output.contains("403"), "{:?}", by_name(via));
    }
    assert!(
        by_name("host_swap").output.contains("421"),
        "{:?}",
        by_name("host_swap")
    );
    assert!(
        by_name("trace").output.contains("405"),
        "{:?}",
        by_name("trace")
    );
    assert!(!t.home().join("planted").exists());
    for legit in ["legit_curl", "legit_python", "legit_node"] {
        let a = by_name(legit);
        assert_eq!(a.code, 0, "{a:?}");
        assert_eq!(headers_of(&a.output)["x-api-key"], KEY, "{a:?}");
    }
}

#[test]
fn without_containment_the_same_command_can_read_the_home_and_says_so() {
    // The counterpart of the test above: proves its attempts would succeed
    // if the sandbox were not there.
    let (t, _echo) = echo_home();
    let token_file = t.home().join("daemon.token");
    let out = t
        .run(
            &[
                "run",
                "--no-contain",
                "--",
                "cat",
                token_file.to_str().unwrap(),
            ],
            None,
        )
        .ok();
    assert_eq!(out.stdout.trim(), t.token());
    assert!(out.stderr.contains("without containment"), "{}", out.stderr);
    t.append_config("[run]\ncontain = false\n");
    let out = t
        .run(&["run", "--", "cat", token_file.to_str().unwrap()], None)
        .ok();
    assert_eq!(
        out.stdout.trim(),
        t.token(),
        "[run] contain = false is honoured"
    );
    t.run(
        &["run", "--egress", "proxy", "--no-contain", "--", "true"],
        None,
    )
    .code(2);
}

#[test]
#[ignore = "needs a Secret Service; run through scripts/with-session.sh (make test does)"]
fn the_keychain_master_key_is_useless_without_the_store() {
    let bus = std::env::var("DBUS_SESSION_BUS_ADDRESS")
        .expect("run inside scripts/with-session.sh (a private session bus)");
    let t = TestHome::new().env("DBUS_SESSION_BUS_ADDRESS", &bus);
    t.run(&["init", "--key-backend", "keychain"], None).ok();
    t.login_key("openai", "sk-keychain-run-abcdefghijklmnopqrst");
    let out_dir = t.dir().join("attempts");
    std::fs::create_dir(&out_dir).unwrap();
    let body = format!(
        r#"{TRY}
try lookup secret-tool lookup service authsome username "master-key:{home}"
try decrypt python3 -c "import sqlite3; print(sqlite3.connect('file:{home}/profiles/default/store.db?mode=ro', uri=True).execute('select count(*) from connections').fetchall())"
"#,
        home = t.home().display()
    );
    let s = script(&t, "keychain.sh", &body);
    t.run(
        &["run", "--", s.to_str().unwrap(), out_dir.to_str().unwrap()],
        None,
    )
    .ok();
    let all = attempts(&out_dir);
    let lookup = all.iter().find(|a| a.name == "lookup").unwrap();
    let decrypt = all.iter().find(|a| a.name == "decrypt").unwrap();
    // The Secret Service answers over D-Bus (docs/SECURITY.md says so) ...
    assert_eq!(lookup.code, 0, "{lookup:?}");
    assert_eq!(lookup.output.trim().len(), 44, "{lookup:?}");
    // ... but the store it would decrypt cannot be opened.
    assert_ne!(decrypt.code, 0, "{decrypt:?}");
    assert!(
        decrypt.output.contains("unable to open database"),
        "{decrypt:?}"
    );
    assert!(!decrypt.output.contains("sk-keychain-run"));
}

#[test]
fn egress_proxy_refuses_direct_connections_except_allowed_ports() {
    let (t, echo) = echo_home();
    let dev = echo::http("127.0.0.1".parse().unwrap());
    let out_dir = t.dir().join("attempts");
    std::fs::create_dir(&out_dir).unwrap();
    let body = format!(
        r#"{TRY}
try direct curl -sS --max-time 5 --noproxy '*' --cacert "{ca}" "{echo}/x"
try via_proxy curl -sS --fail --max-time 10 "{echo}/x"
try dev_server curl -sS --fail --max-time 5 "{dev}/dev"
"#,
        ca = echo.ca_file.as_ref().unwrap().display(),
        echo = echo.url(""),
        dev = dev.url(""),
    );
    let s = script(&t, "egress.sh", &body);
    let dev_port = dev.addr.port().to_string();
    t.run(
        &[
            "run",
            "--egress",
            "proxy",
            "--allow-port",
            &dev_port,
            "--",
            s.to_str().unwrap(),
            out_dir.to_str().unwrap(),
        ],
        None,
    )
    .ok();
    let all = attempts(&out_dir);
    let get = |n: &str| all.iter().find(|a| a.name == n).unwrap();
    assert_eq!(get("direct").code, 7, "{:?}", get("direct"));
    assert_eq!(headers_of(&get("via_proxy").output)["x-api-key"], KEY);
    assert_eq!(get("dev_server").code, 0, "{:?}", get("dev_server"));

    // Without --egress proxy the direct connection works (untouched, no credential).
    let direct = |t: &TestHome| {
        std::fs::remove_dir_all(&out_dir).unwrap();
        std::fs::create_dir(&out_dir).unwrap();
        t.run(
            &["run", "--", s.to_str().unwrap(), out_dir.to_str().unwrap()],
            None,
        )
        .ok();
        attempts(&out_dir)
            .into_iter()
            .find(|a| a.name == "direct")
            .unwrap()
    };
    let open = direct(&t);
    assert_eq!(open.code, 0, "{open:?}");
    assert!(headers_of(&open.output).get("x-api-key").is_none());
    // And the config can make proxy-only egress the default.
    t.append_config("[run]\negress = \"proxy\"\n");
    let direct = direct(&t);
    assert_eq!(direct.code, 7, "{direct:?}");
}

/// A Python client that opens one intercepted tunnel, makes a request,
/// then hands the open connection to a background process that makes a
/// second request on it once `go` exists, and writes both answers.
const KEEPALIVE: &str = r#"
import base64, http.client, os, ssl, sys, time, urllib.parse
target, out = urllib.parse.urlparse(sys.argv[1]), sys.argv[2]
proxy = urllib.parse.urlparse(os.environ["HTTPS_PROXY"])
auth = base64.b64encode(("%s:%s" % (urllib.parse.unquote(proxy.username), urllib.parse.unquote(proxy.password))).encode()).decode()
conn = http.client.HTTPSConnection(proxy.hostname, proxy.port, context=ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"]))
conn.set_tunnel(target.hostname, target.port, headers={"Proxy-Authorization": "Basic " + auth})
conn.request("GET", "/first")
open(out + "/first", "w").write(conn.getresponse().read().decode())
if os.fork() == 0:
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    while not os.path.exists(out + "/go"):
        time.sleep(0.05)
    try:
        conn.request("GET", "/second")
        r = conn.getresponse()
        text = "%d %s" % (r.status, r.read().decode())
    except Exception as e:
        text = "error %r" % e
    open(out + "/second.tmp", "w").write(text)
    os.rename(out + "/second.tmp", out + "/second")
    os._exit(0)
"#;

#[test]
fn a_keepalive_tunnel_gets_no_credential_after_the_run_ended() {
    let (t, echo) = echo_home();
    let out_dir = t.dir().join("keepalive");
    std::fs::create_dir(&out_dir).unwrap();
    let py = t.dir().join("keepalive.py");
    std::fs::write(&py, KEEPALIVE).unwrap();
    t.run(
        &[
            "run",
            "--",
            "python3",
            py.to_str().unwrap(),
            &echo.url("/"),
            out_dir.to_str().unwrap(),
        ],
        None,
    )
    .ok();
    let first = std::fs::read_to_string(out_dir.join("first")).unwrap();
    assert_eq!(headers_of(&first)["x-api-key"], KEY, "{first}");
    assert!(eventually(10, || status(&t)["runs"] == 0));
    std::fs::write(out_dir.join("go"), "").unwrap();
    assert!(eventually(20, || out_dir.join("second").exists()));
    let second = std::fs::read_to_string(out_dir.join("second")).unwrap();
    assert!(!second.contains(KEY), "{second}");
    assert!(second.starts_with("407"), "{second}");
}

#[test]
fn the_proxy_url_dies_with_the_command_even_when_the_cli_was_killed() {
    let (t, echo) = echo_home();
    let out_dir = t.dir().join("killed");
    std::fs::create_dir(&out_dir).unwrap();
    let s = script(
        &t,
        "linger.sh",
        &format!(
            "printf %s \"$HTTPS_PROXY\" > {0}/proxy.tmp && mv {0}/proxy.tmp {0}/proxy\n\
             while [ ! -e {0}/stop ]; do sleep 0.05; done\n",
            out_dir.display()
        ),
    );
    let mut cli = t
        .cmd(&["run", "--", s.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(eventually(20, || out_dir.join("proxy").exists()));
    let proxy = std::fs::read_to_string(out_dir.join("proxy")).unwrap();
    let bundle = t.home().join("ca/bundle.pem");
    let through = |url: &str| {
        let out = t
            .program("curl")
            .args(["-sS", "--max-time", "10", "-x", &proxy, "--cacert"])
            .arg(&bundle)
            .arg(url)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(cli.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    cli.wait().unwrap();
    // The CLI is gone but the command lives: its run is still live.
    assert_eq!(headers_of(&through(&echo.url("/alive")))["x-api-key"], KEY);
    assert_eq!(status(&t)["runs"], 1);
    std::fs::write(out_dir.join("stop"), "").unwrap();
    assert!(
        eventually(20, || status(&t)["runs"] == 0),
        "the daemon ends the run when the command exits"
    );
    let after = through(&echo.url("/after"));
    assert!(after.contains("407") && !after.contains(KEY), "{after}");
    assert!(eventually(20, || {
        t.run(&["log", "-n", "20"], None)
            .stdout
            .contains("its process exited without `authsome run` reporting it")
    }));
}

#[test]
fn a_run_whose_process_is_never_registered_is_reaped() {
    let (t, echo) = echo_home();
    // A client that begins a run and dies before registering its command.
    let (code, body) = authsome_tests::send(
        authsome_tests::http()
            .post(&t.url("/v1/runs"))
            .set("Authorization", &format!("Bearer {}", t.token()))
            .set("Content-Type", "application/json"),
        Some(r#"{"command":"orphan"}"#),
    );
    assert_eq!(code, 200, "{body}");
    let proxy = serde_json::from_str::<serde_json::Value>(&body).unwrap()["proxy_url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(status(&t)["runs"], 1);
    assert!(
        eventually(90, || status(&t)["runs"] == 0),
        "reaped after its registration deadline"
    );
    let out = t
        .program("curl")
        .args(["-sS", "-x", &proxy, "--cacert"])
        .arg(t.home().join("ca/bundle.pem"))
        .arg(echo.url("/"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("407"));
    let log = t.run(&["log", "-n", "20"], None).ok().stdout;
    assert!(log.contains("never registered"), "{log}");
}

#[test]
fn doctor_shows_what_a_contained_run_gets() {
    let (t, _echo) = echo_home();
    let doctor = t.run(&["doctor"], None).ok().stdout;
    let line = doctor
        .lines()
        .find(|l| l.contains("containment"))
        .unwrap_or_else(|| panic!("{doctor}"));
    assert!(
        line.contains("ABI 7") && line.contains("cannot read the home"),
        "{line}"
    );
}

#[test]
fn a_contained_command_keeps_its_own_files_signals_and_exit_code() {
    let (t, _echo) = echo_home();
    let work = t.dir().join("work");
    std::fs::create_dir(&work).unwrap();
    let s = script(
        &t,
        "own.sh",
        &format!(
            "cd {0} && mkdir -p sub && echo hello > sub/f && cat sub/f && mv sub/f g && rm -r sub\n\
             trap 'echo caught; exit 42' INT\n\
             echo ready > {0}/ready\n\
             while :; do sleep 0.05; done\n",
            work.display()
        ),
    );
    let cli = t
        .cmd(&["run", "--", s.to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(eventually(20, || work.join("ready").exists()));
    // SIGINT to the CLI reaches the contained command.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(cli.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = cli.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("hello") && stdout.contains("caught"),
        "{stdout}"
    );
    assert_eq!(out.status.code(), Some(42), "{out:?}");
    assert!(work.join("g").exists() && !work.join("sub").exists());
}

#[test]
fn under_the_mount_the_directory_holding_the_home_stays_usable() {
    let (t, _echo) = echo_home();
    let parent = t.dir().display().to_string();
    let script = format!(
        "touch {parent}/made-in-run && ls {parent} && ls {home}",
        home = t.home().display()
    );
    let out = t.run(&["run", "--", "sh", "-c", &script], None).ok();
    assert!(t.dir().join("made-in-run").exists());
    assert!(
        out.stdout.contains("authsome") && out.stdout.contains("ca"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("master.key"), "{}", out.stdout);
    // With path rules alone the same directory cannot be written (README:
    // "Good to know").
    let mut paths = t.cmd(&[
        "run",
        "--",
        "sh",
        "-c",
        &script.replace("made-in-run", "made-by-paths"),
    ]);
    paths.env("AUTHSOME_RUN_USERNS", "0");
    assert!(!paths.output().unwrap().status.success());
    assert!(!t.dir().join("made-by-paths").exists());
}

#[test]
fn the_daemon_started_from_a_run_does_not_use_its_proxy() {
    let (t, _echo) = echo_home();
    let bin = authsome_bin().display().to_string();
    let script = format!("{bin} daemon stop >/dev/null && {bin} list >/dev/null");
    t.run(&["run", "--no-contain", "--", "sh", "-c", &script], None)
        .ok();
    let pid = t
        .daemon_pid()
        .expect("a daemon started from inside the run");
    // The daemon is not dumpable: only root can read its environment.
    if nix::unistd::geteuid().is_root() {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        let environ = String::from_utf8_lossy(&environ);
        for var in [
            "HTTPS_PROXY=",
            "https_proxy=",
            "ALL_PROXY=",
            "SSL_CERT_FILE=",
            "NODE_USE_ENV_PROXY=",
        ] {
            assert!(
                !environ.contains(var),
                "{var} reached the daemon: {environ}"
            );
        }
        assert!(environ.contains("AUTHSOME_HOME="), "{environ}");
    }
}
