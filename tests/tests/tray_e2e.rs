//! The real tray app in a headless desktop (Xvfb, a D-Bus session,
//! gnome-keyring and dunst, started by `scripts/with-session.sh`): its menu
//! read and clicked over dbusmenu, its prompt window filled with xdotool,
//! notifications seen on the bus, screenshots saved under `artifacts/`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use authsome_tests::fake_oauth::FakeOAuth;
use authsome_tests::raw_upstream::RawUpstream;
use authsome_tests::runs::{api_key_provider, register};
use authsome_tests::{eventually, TestHome};

const MENU_PATH: &str = "/org/ayatana/NotificationItem/tray_icon_tray_app_authsome/Menu";

fn session() -> (String, String) {
    let display =
        std::env::var("DISPLAY").expect("run inside scripts/with-session.sh (needs DISPLAY)");
    let bus = std::env::var("DBUS_SESSION_BUS_ADDRESS")
        .expect("run inside scripts/with-session.sh (needs a session bus)");
    (display, bus)
}

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn tool(t: &TestHome, program: &str, args: &[&str]) -> (bool, String) {
    let out = t
        .program(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// (id, label) of every item in a dbusmenu GetLayout answer.
fn menu_items(layout: &str) -> Vec<(i32, String)> {
    let mut items = Vec::new();
    let mut rest = layout;
    while let Some(start) = rest.find("<(") {
        rest = &rest[start + 2..];
        let Some(comma) = rest.find(", {") else { break };
        let Ok(id) = rest[..comma].trim().parse::<i32>() else {
            continue;
        };
        let props_end = rest.find('}').unwrap_or(rest.len());
        let props = &rest[comma..props_end];
        if let Some(l) = props.find("'label': <'") {
            let label = &props[l + 11..];
            if let Some(end) = label.find("'>") {
                items.push((id, label[..end].to_string()));
            }
        }
    }
    items
}

struct Tray {
    child: Child,
    bus_name: String,
}

impl Tray {
    fn layout(&self, t: &TestHome) -> Vec<(i32, String)> {
        menu_items(&get_layout(t, &self.bus_name).1)
    }

    /// Clicks a menu item. The menu is rebuilt when connections change, and
    /// a rebuilt menu has new item ids: a click that lands between reading
    /// the layout and the rebuild is refused, so it is tried again.
    fn click(&self, t: &TestHome, label: &str) {
        let mut last = String::new();
        for _ in 0..5 {
            match self.try_click(t, label) {
                Ok(()) => return,
                Err(out) => last = out,
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        panic!("clicking {label}: {last}");
    }

    fn try_click(&self, t: &TestHome, label: &str) -> Result<(), String> {
        let items = self.layout(t);
        let id = items
            .iter()
            .find(|(_, l)| l == label)
            .unwrap_or_else(|| panic!("no menu item {label:?} in {items:?}"))
            .0;
        let (ok, out) = gdbus(
            t,
            &self.bus_name,
            MENU_PATH,
            "com.canonical.dbusmenu.Event",
            &["--", &id.to_string(), "clicked", "<int32 0>", "0"],
        );
        if ok {
            Ok(())
        } else {
            Err(out)
        }
    }
}

fn find_menu(t: &TestHome) -> Option<String> {
    let (_, names) = gdbus(
        t,
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus.ListNames",
        &[],
    );
    names
        .split('\'')
        .filter(|n| n.starts_with(":1."))
        .find_map(|n| {
            let (ok, out) = get_layout(t, n);
            (ok && out.contains("Quit")).then(|| n.to_string())
        })
}

/// `gdbus call` on the session bus.
fn gdbus(t: &TestHome, dest: &str, path: &str, method: &str, args: &[&str]) -> (bool, String) {
    let mut all = vec![
        "call",
        "--session",
        "--dest",
        dest,
        "--object-path",
        path,
        "--method",
        method,
    ];
    all.extend_from_slice(args);
    tool(t, "gdbus", &all)
}

/// The whole tray menu as dbusmenu describes it.
fn get_layout(t: &TestHome, bus_name: &str) -> (bool, String) {
    gdbus(
        t,
        bus_name,
        MENU_PATH,
        "com.canonical.dbusmenu.GetLayout",
        &["--", "0", "-1", "[]"],
    )
}

fn wait_for_window(t: &TestHome, title: &str) -> String {
    let mut id = String::new();
    assert!(
        eventually(20, || {
            let (ok, out) = tool(t, "xdotool", &["search", "--name", title]);
            id = out.lines().last().unwrap_or("").to_string();
            ok && !id.is_empty()
        }),
        "no window titled {title:?}"
    );
    id
}

/// Types into a window's fields in order (Tab between them) and submits the
/// form. A prompt window closes once the daemon took its values; while it
/// stays open (its page was still loading when the keys arrived, as happens
/// on a cold start), the values are typed again, replacing what is there.
fn fill(t: &TestHome, window: &str, values: &[&str]) {
    for attempt in 1..=4u64 {
        // The page loads and focuses its first field.
        std::thread::sleep(Duration::from_millis(1500 * attempt));
        tool(t, "xdotool", &["windowfocus", "--sync", window]);
        for (i, text) in values.iter().enumerate() {
            if i > 0 {
                // The hint under a field is text, not a stop; Tab lands on the next input.
                tool(t, "xdotool", &["key", "Tab"]);
            }
            tool(t, "xdotool", &["key", "ctrl+a"]);
            let (ok, _) = tool(t, "xdotool", &["type", "--delay", "20", text]);
            assert!(ok);
        }
        tool(t, "xdotool", &["key", "Return"]);
        if eventually(5, || !tool(t, "xdotool", &["getwindowname", window]).0) {
            return;
        }
    }
    panic!("the window {window} never took the values");
}

/// A browser that claims the launch file and follows the authorization
/// redirect back to the daemon, with the launch's cookie.
fn browser(t: &TestHome) -> PathBuf {
    authsome_tests::browser::follower(t)
}

/// The file the tray icon shows now (StatusNotifierItem `IconName`).
fn icon_file(t: &TestHome, bus_name: &str) -> String {
    let (_, out) = gdbus(
        t,
        bus_name,
        MENU_PATH.trim_end_matches("/Menu"),
        "org.freedesktop.DBus.Properties.Get",
        &["org.kde.StatusNotifierItem", "IconName"],
    );
    out.split('\'').nth(1).unwrap_or_default().to_string()
}

/// True when the tray shows exactly the pixels of `icons/<name>`.
fn icon_is(t: &TestHome, bus_name: &str, name: &str) -> bool {
    let shown = icon_file(t, bus_name);
    if shown.is_empty() {
        return false;
    }
    let expected = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../icons")
        .join(name);
    let out = t
        .program("compare")
        .args(["-metric", "AE", &shown, expected.to_str().unwrap(), "null:"])
        .output()
        .unwrap();
    out.status.success() && String::from_utf8_lossy(&out.stderr).trim() == "0"
}

/// The exit code of a child that ends within `secs` seconds (`None` inside
/// when a signal ended it); `None` when it is still running.
fn exit_code_within(child: &mut Child, secs: u64) -> Option<Option<i32>> {
    let mut status = None;
    eventually(secs, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    status.map(|s| s.code())
}

/// Saves the whole screen under `artifacts/`, and checks that `window`
/// itself was drawn: a blank window is one colour (standard deviation 0);
/// text on a page is not.
fn screenshot(t: &TestHome, name: &str, window: &str) {
    let path = artifacts().join(name);
    let (ok, _) = tool(t, "import", &["-window", "root", path.to_str().unwrap()]);
    assert!(ok && path.exists(), "screenshot {name}");
    let own = artifacts().join(format!("window-{name}"));
    let mut drawn = 0.0;
    // A page still loading on a cold start may be blank for a moment.
    let shown = eventually(10, || {
        let (ok, _) = tool(t, "import", &["-window", window, own.to_str().unwrap()]);
        let (_, sd) = tool(
            t,
            "convert",
            &[
                own.to_str().unwrap(),
                "-format",
                "%[fx:standard_deviation]",
                "info:",
            ],
        );
        drawn = sd.trim().parse().unwrap_or(0.0);
        ok && drawn > 0.02
    });
    assert!(
        shown,
        "{name}: the window looks blank (standard deviation {drawn})"
    );
}

#[test]
#[ignore = "needs a desktop session; run through scripts/with-session.sh (make test does)"]
fn the_tray_app_hosts_the_daemon_asks_in_windows_notifies_and_quits() {
    let (display, bus) = session();
    let mut t = TestHome::new()
        .env("DISPLAY", &display)
        .env("DBUS_SESSION_BUS_ADDRESS", &bus);
    if let Ok(xauth) = std::env::var("XAUTHORITY") {
        t = t.env("XAUTHORITY", &xauth);
    }
    let b = browser(&t);
    t = t.env("BROWSER", b.to_str().unwrap());
    let bin = authsome_tests::authsome_bin().with_file_name("authsome-tray");
    let notify_log = t.dir().join("notify.log");
    let mut monitor = Command::new("dbus-monitor")
        .args([
            "--session",
            "type='method_call',interface='org.freedesktop.Notifications',member='Notify'",
        ])
        .env("DBUS_SESSION_BUS_ADDRESS", &bus)
        .stdout(std::fs::File::create(&notify_log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // A headless daemon already serves the home: the tray takes over from it.
    t.run(&["daemon", "start"], None).ok();
    let headless_pid = t.daemon_pid().expect("a headless daemon");
    let log = std::fs::File::create(t.dir().join("tray.log")).unwrap();
    let child = t
        .program(&bin)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start the tray app");
    let health = t.url("/health");
    let tray_log = t.dir().join("tray.log");
    assert!(
        eventually(30, || ureq::get(&health).call().is_ok()),
        "/health never answered: {}",
        std::fs::read_to_string(&tray_log).unwrap_or_default()
    );
    assert!(
        eventually(10, || t.daemon_pid() == Some(child.id() as i32)),
        "the tray's daemon serves the home"
    );
    // This session has no StatusNotifierWatcher: the icon would show
    // nowhere, so the main window opens by itself (drawn, not blank).
    let first = wait_for_window(&t, "^Authsome$");
    std::thread::sleep(Duration::from_millis(2500));
    // Nothing is connected yet: the window offers the common providers.
    screenshot(&t, "tray-main-empty.png", &first);
    assert!(
        authsome_tests::process_gone(headless_pid),
        "the headless daemon stopped"
    );
    // A provider on a recording upstream, for the approval below.
    let upstream = RawUpstream::start("127.0.0.7".parse().unwrap());
    register(&t, api_key_provider("raw", &upstream.host_port()));
    t.login_key("raw", "raw-tray-key-5Gm8Qw");
    let config = std::fs::read_to_string(t.home().join("config.toml")).unwrap();
    assert!(
        config.contains("key_backend = \"keychain\""),
        "the master key went to the keychain: {config}"
    );
    assert!(!t.home().join("master.key").exists());

    let mut bus_name = None;
    assert!(
        eventually(20, || {
            bus_name = find_menu(&t);
            bus_name.is_some()
        }),
        "the tray menu is not on the bus"
    );
    let tray = Tray {
        child,
        bus_name: bus_name.unwrap(),
    };
    assert!(
        eventually(10, || icon_is(&t, &tray.bus_name, "tray.png")),
        "the normal icon: {}",
        icon_file(&t, &tray.bus_name)
    );
    let labels: Vec<String> = tray.layout(&t).into_iter().map(|(_, l)| l).collect();
    for expected in ["Connect", "Open Authsome", "Quit", "OpenAI", "GitHub"] {
        assert!(
            labels.iter().any(|l| l == expected),
            "{expected} missing from the menu: {labels:?}"
        );
    }

    // Connect ▸ OpenAI from the menu: a native window asks for the key.
    tray.click(&t, "OpenAI");
    let window = wait_for_window(&t, "Authsome: connect OpenAI");
    std::thread::sleep(Duration::from_millis(1500));
    screenshot(&t, "tray-prompt-window.png", &window);
    fill(&t, &window, &["sk-tray-e2e-abcdefghijklmnopqrstuv"]);
    assert!(
        eventually(15, || t.field("openai", "status") == "connected"),
        "the key typed into the window was not stored"
    );
    assert_eq!(
        t.secret("openai", "api_key"),
        "sk-tray-e2e-abcdefghijklmnopqrstuv"
    );
    assert!(
        eventually(10, || tray
            .layout(&t)
            .iter()
            .any(|(_, l)| l == "OpenAI (default) — connected")),
        "the menu shows the connection: {:?}",
        tray.layout(&t).into_iter().take(8).collect::<Vec<_>>()
    );

    // A CLI login while the tray runs asks in the same kind of window.
    let mut cli = t
        .cmd(&["login", "anthropic"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let window = wait_for_window(&t, "Authsome: connect Anthropic");
    fill(&t, &window, &["sk-ant-api03-trayclitestabcdefghijklmnop"]);
    let out = cli.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("Successfully logged in to anthropic (default)"));
    cli = t.cmd(&["list"]).stdout(Stdio::null()).spawn().unwrap();
    let _ = cli.wait();

    // A second launch exits at once and brings up the first one's main window.
    let mut second = t
        .program(&bin)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert_eq!(
        exit_code_within(&mut second, 15),
        Some(Some(0)),
        "the second instance exits 0 at once"
    );
    wait_for_window(&t, "^Authsome$");
    assert_eq!(t.daemon_pid(), Some(tray.child.id() as i32));

    // The main window, for the record.
    tray.click(&t, "Open Authsome");
    let main = wait_for_window(&t, "^Authsome$");
    std::thread::sleep(Duration::from_millis(2500));
    screenshot(&t, "tray-main-window.png", &main);

    // A refresh rejected by the fake server raises a notification naming the provider.
    let fake = FakeOAuth::start();
    let file = t.dir().join("fake.json");
    std::fs::write(&file, fake.provider("fake", "pkce").to_string()).unwrap();
    t.run(&["register", file.to_str().unwrap()], None).ok();
    {
        let mut st = fake.state();
        st.switches.expires_in = Some(2);
        st.switches.device_pending_polls = 0;
    }
    // Connect ▸ an OAuth provider from the menu: the client ID and secret in
    // a window, the provider's page in the (scripted) browser, no terminal.
    assert!(eventually(10, || tray
        .layout(&t)
        .iter()
        .any(|(_, l)| l == "Fake fake")));
    tray.click(&t, "Fake fake");
    let window = wait_for_window(&t, "Authsome: connect Fake fake");
    fill(&t, &window, &["tray-client", "fake-client-secret"]);
    assert!(
        eventually(20, || t.field("fake", "status") == "connected"),
        "the OAuth login from the menu did not complete: {}",
        std::fs::read_to_string(&tray_log).unwrap_or_default()
    );
    assert_eq!(
        fake.state().authorize_requests[0]["client_id"],
        "tray-client"
    );
    // Only this test's notification is on screen when it is activated below.
    tool(&t, "dunstctl", &["close-all"]);
    fake.state().switches.refresh_error = Some("invalid_grant".into());
    std::thread::sleep(Duration::from_millis(1100));
    t.run(
        &["get", "fake", "--field", "access_token", "--show-secret"],
        None,
    )
    .code(5);
    assert!(
        eventually(10, || std::fs::read_to_string(&notify_log)
            .unwrap_or_default()
            .contains("Fake fake (default) needs a new login")),
        "no notification: {}",
        std::fs::read_to_string(&notify_log).unwrap_or_default()
    );
    assert!(eventually(10, || tray
        .layout(&t)
        .iter()
        .any(|(_, l)| l == "Fake fake (default) — invalid")));
    assert!(
        eventually(10, || icon_is(&t, &tray.bus_name, "tray-attention.png")),
        "the attention icon: {}",
        icon_file(&t, &tray.bus_name)
    );

    // Activating the notification reconnects: a new login in the browser,
    // with the stored client, and the connection is back.
    {
        let mut st = fake.state();
        st.switches.refresh_error = None;
        st.switches.expires_in = Some(3600);
    }
    let authorizations = fake.state().authorize_requests.len();
    let (ok, out) = tool(&t, "dunstctl", &["action", "0"]);
    assert!(ok, "dunstctl: {out}");
    assert!(
        eventually(20, || t.field("fake", "status") == "connected"),
        "Reconnect from the notification did not log in again: {}",
        std::fs::read_to_string(&tray_log).unwrap_or_default()
    );
    assert_eq!(fake.state().authorize_requests.len(), authorizations + 1);
    assert!(
        eventually(10, || icon_is(&t, &tray.bus_name, "tray.png")),
        "the icon is back to normal"
    );

    // A device-code provider from the menu: client credentials in a window,
    // then a window with the code while the provider waits for approval.
    let file = t.dir().join("fakedev.json");
    std::fs::write(&file, fake.provider("fakedev", "device_code").to_string()).unwrap();
    t.run(&["register", file.to_str().unwrap()], None).ok();
    fake.state().switches.device_pending_polls = 4;
    assert!(eventually(10, || tray
        .layout(&t)
        .iter()
        .any(|(_, l)| l == "Fake fakedev")));
    tray.click(&t, "Fake fakedev");
    let window = wait_for_window(&t, "Authsome: connect Fake fakedev");
    fill(&t, &window, &["tray-device-client", "fake-client-secret"]);
    let device = wait_for_window(&t, "Authsome: sign in to Fake fakedev");
    std::thread::sleep(Duration::from_millis(1500));
    screenshot(&t, "tray-device-window.png", &device);
    assert!(
        eventually(30, || t.field("fakedev", "status") == "connected"),
        "the device-code login from the menu did not complete: {}",
        std::fs::read_to_string(&tray_log).unwrap_or_default()
    );
    assert!(fake.state().device_polls_total >= 5);

    // A rule holds a run's request: a window asks without taking the
    // keyboard; the notification focuses it, and "Allow for this run"
    // (its key, r) lets the request go with the credential.
    std::fs::write(
        t.home().join("rules.toml"),
        "[[rule]]\nprovider = \"raw\"\naction = \"ask\"\n",
    )
    .unwrap();
    tool(&t, "dunstctl", &["close-all"]);
    let answer = t.dir().join("approval-answer");
    let mut held = t
        .cmd(&[
            "run",
            "--",
            "sh",
            "-c",
            &format!(
                "curl -sS -w ' %{{http_code}}' http://{}/tray-held > {1}.tmp; mv {1}.tmp {1}",
                upstream.host_port(),
                answer.display()
            ),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let window = wait_for_window(&t, "Authsome: approve raw for sh");
    std::thread::sleep(Duration::from_millis(2000));
    screenshot(&t, "tray-approval-window.png", &window);
    let focused = || {
        tool(&t, "xdotool", &["getwindowfocus"])
            .1
            .trim()
            .to_string()
    };
    assert_ne!(
        focused(),
        window,
        "the approval window took the keyboard by itself"
    );
    assert!(
        eventually(10, || std::fs::read_to_string(&notify_log)
            .unwrap_or_default()
            .contains("Authsome: approve raw for sh")),
        "no notification announced the approval"
    );
    assert!(
        upstream.connections().is_empty(),
        "the held request went on"
    );
    let (ok, out) = tool(&t, "dunstctl", &["action", "0"]);
    assert!(ok, "dunstctl: {out}");
    assert!(
        eventually(10, || focused() == window),
        "clicking the notification did not focus the window ({} has focus)",
        focused()
    );
    // The first key after the focus moves can go to the toplevel rather
    // than the page; the key is pressed again until the answer is taken.
    assert!(
        (0..5).any(|_| {
            tool(&t, "xdotool", &["key", "r"]);
            eventually(4, || answer.exists())
        }),
        "the held request never finished: {}",
        std::fs::read_to_string(&tray_log).unwrap_or_default()
    );
    assert!(held.wait().unwrap().success());
    assert!(std::fs::read_to_string(&answer).unwrap().ends_with(" 200"));
    let sent = String::from_utf8_lossy(&upstream.connections().concat()).into_owned();
    assert!(
        sent.contains("GET /tray-held") && sent.contains("raw-tray-key-5Gm8Qw"),
        "{sent}"
    );
    let log = t.run(&["log", "-n", "30"], None).ok().stdout;
    assert!(
        log.contains("allowed for this run"),
        "the window's answer was not 'Allow for this run': {log}"
    );
    assert!(
        eventually(10, || !tool(&t, "xdotool", &["getwindowname", &window]).0),
        "the approval window stays open after the answer"
    );
    // `authsome status` knows the daemon is the tray's.
    let status = t.run(&["status"], None).ok().stdout;
    assert!(status.contains("in the tray app on port"), "{status}");

    // The main window's Activity view, for the record.
    tray.click(&t, "Open Authsome");
    let main = wait_for_window(&t, "^Authsome$");
    std::thread::sleep(Duration::from_millis(2500));
    screenshot(&t, "tray-activity.png", &main);

    // Quit from the menu: the daemon stops and the app exits 0.
    tray.click(&t, "Quit");
    let mut child = tray.child;
    assert_eq!(
        exit_code_within(&mut child, 15),
        Some(Some(0)),
        "the tray quits with 0"
    );
    assert!(
        ureq::get(&health).call().is_err(),
        "the daemon stopped with the app"
    );
    let _ = monitor.kill();
    let _ = monitor.wait();

    // With a StatusNotifierWatcher on the bus (a small one held here), the
    // icon shows, and the app starts without its window; `authsome open`
    // brings the window up (a second launch, with --open, that the running
    // app answers).
    let watcher = dbus::blocking::Connection::new_session().unwrap();
    watcher
        .request_name("org.kde.StatusNotifierWatcher", false, true, false)
        .unwrap();
    let log = std::fs::File::create(t.dir().join("tray2.log")).unwrap();
    let mut child = t
        .program(&bin)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start the tray app again");
    assert!(
        eventually(30, || ureq::get(&health).call().is_ok()),
        "/health never answered the second time"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !tool(&t, "xdotool", &["search", "--name", "^Authsome$"]).0,
        "the main window opened though the desktop shows tray icons"
    );
    let out = t.run(&["open"], None).ok();
    assert!(out.stdout.contains("Opening Authsome"), "{}", out.stdout);
    wait_for_window(&t, "^Authsome$");
    assert_eq!(
        t.daemon_pid(),
        Some(child.id() as i32),
        "one app, still serving"
    );
    let _ = child.kill();
    let _ = child.wait();
    drop(watcher);
}
