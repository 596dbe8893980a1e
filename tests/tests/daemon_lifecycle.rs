//! Starting, stopping, restarting and refusing to share the daemon.

use std::net::TcpListener;

use authsome_tests::{eventually, free_port, process_gone, TestHome};
use nix::sys::signal::Signal;

const KEY: &str = "sk-life-abcdefghijklmnopqrstuvwxyz";

#[test]
fn any_command_starts_the_daemon_and_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let t = TestHome::new();
    assert!(t.daemon_info().is_none());
    t.run(&["list"], None).ok();
    let info = t.daemon_info().expect("daemon.json written");
    assert_eq!(info["port"], t.port);
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    let mode = |p: &str| {
        std::fs::metadata(t.home().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("daemon.token"), 0o600);
    assert_eq!(mode("master.key"), 0o600);
    assert_eq!(mode("profiles/default/store.db"), 0o600);
    assert_eq!(mode("."), 0o700);
    let status = t.run(&["daemon", "status"], None).ok().stdout;
    assert!(status.contains("running"), "{status}");
}

#[test]
fn sigterm_stops_cleanly_and_acknowledged_writes_survive() {
    let t = TestHome::new();
    t.login_key("openai", KEY);
    t.signal_daemon(Signal::SIGTERM);
    assert!(t.daemon_info().is_none(), "daemon.json removed on shutdown");
    assert_eq!(t.secret("openai", "api_key"), KEY);
    t.run(&["daemon", "status"], None).ok();
    t.run(&["daemon", "stop"], None).ok();
    t.run(&["daemon", "status"], None).code(9);
}

#[test]
fn a_killed_daemon_loses_nothing_it_acknowledged() {
    let t = TestHome::new();
    for i in 0..5 {
        t.run(
            &[
                "login",
                "openai",
                "--stdin",
                "--connection",
                &format!("c{i}"),
            ],
            Some(KEY),
        )
        .ok();
    }
    t.signal_daemon(Signal::SIGKILL);
    // The next command notices the dead daemon and starts a new one.
    let list = t.run(&["list", "--json"], None).ok().stdout;
    let v: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(
        v["providers"][0]["connections"].as_array().unwrap().len(),
        5
    );
    let doctor = t.run(&["doctor"], None).ok().stdout;
    assert!(doctor.contains("integrity ok"), "{doctor}");
}

#[test]
fn a_second_daemon_on_the_same_home_refuses_to_start() {
    let t = TestHome::new();
    t.run(&["daemon", "start"], None).ok();
    let other_port = free_port();
    let mut c = t.cmd(&["daemon", "serve"]);
    c.env("AUTHSOME_PORT", other_port.to_string());
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("another Authsome daemon already serves"),
        "{stderr}"
    );
}

#[test]
fn a_port_held_by_another_program_is_reported() {
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let mut t = TestHome::new();
    t.port = port;
    let out = t.run(&["list"], None).code(1);
    assert!(
        out.stderr
            .contains(&format!("Error: address already in use: 127.0.0.1:{port}")),
        "{}",
        out.stderr
    );
    let out = t.run(&["daemon", "serve"], None).code(1);
    assert!(
        out.stderr.contains("address already in use"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_daemon_of_another_version_is_replaced() {
    let t = TestHome::new();
    t.run(&["daemon", "start"], None).ok();
    let old_pid = t.daemon_pid().unwrap();
    let path = t.home().join("daemon.json");
    let mut info = t.daemon_info().unwrap();
    info["version"] = "0.0.1-old".into();
    std::fs::write(&path, info.to_string()).unwrap();
    t.run(&["list"], None).ok();
    let new_pid = t.daemon_pid().unwrap();
    assert_ne!(old_pid, new_pid, "the old daemon was not replaced");
    assert!(
        eventually(5, || process_gone(old_pid)),
        "old daemon still alive"
    );
}

#[test]
fn doctor_fails_on_a_world_readable_key_file() {
    use std::os::unix::fs::PermissionsExt;
    let t = TestHome::new();
    t.run(&["init", "--key-backend", "file"], None).ok();
    t.run(&["doctor"], None).ok();
    std::fs::set_permissions(
        t.home().join("master.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = t.run(&["doctor"], None).code(1);
    assert!(
        out.stdout.contains("FAIL") && out.stdout.contains("chmod 600"),
        "{}",
        out.stdout
    );
    let json: serde_json::Value =
        serde_json::from_str(&t.run(&["doctor", "--json"], None).code(1).stdout).unwrap();
    assert_eq!(json["ok"], false);
}

#[test]
fn a_wrong_master_key_fails_start_up_with_a_clear_error() {
    let t = TestHome::new().env(
        "AUTHSOME_MASTER_KEY",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    );
    t.login_key("openai", KEY);
    t.run(&["daemon", "stop"], None).ok();
    let mut c = t.cmd(&["list"]);
    c.env(
        "AUTHSOME_MASTER_KEY",
        "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
    );
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does not open the store"), "{stderr}");
}

#[test]
fn the_daemon_leaves_no_core_file_and_is_not_dumpable() {
    use std::os::unix::fs::MetadataExt;
    let t = TestHome::new();
    t.login_key("openai", KEY);
    let pid = t.daemon_pid().expect("daemon running");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .expect("core limit line");
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(&fields[4..6], ["0", "0"], "{core}");
    // Measured inside the daemon: RLIMIT_CORE 0 and PR_GET_DUMPABLE 0.
    let doctor = t.run(&["doctor"], None).ok().stdout;
    assert!(doctor.contains("core dumps off"), "{doctor}");
    let my_uid = std::fs::metadata("/proc/self").unwrap().uid();
    if my_uid != 0 {
        // A non-dumpable process's /proc files belong to root: a process of
        // the same user cannot read its environment or memory.
        let meta = std::fs::metadata(format!("/proc/{pid}/environ")).unwrap();
        assert_eq!(meta.uid(), 0);
        assert!(std::fs::read(format!("/proc/{pid}/environ")).is_err());
    }
}
