//! Native notifications from the headless daemon over a real session bus
//! (`scripts/with-session.sh`), observed with `dbus-monitor`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use authsome_tests::fake_oauth::FakeOAuth;
use authsome_tests::{eventually, TestHome};

struct Monitor {
    child: Child,
    log: std::path::PathBuf,
}

impl Monitor {
    fn start(bus: &str, log: std::path::PathBuf) -> Monitor {
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("dbus-monitor")
            .args([
                "--session",
                "type='method_call',interface='org.freedesktop.Notifications',member='Notify'",
            ])
            .env("DBUS_SESSION_BUS_ADDRESS", bus)
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-monitor");
        std::thread::sleep(Duration::from_millis(300));
        Monitor { child, log }
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn calls(&self) -> usize {
        self.text().matches("member=Notify").count()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A home on the session bus with provider `fake` connected by device code
/// (no browser needed) with an access token living `expires_in` seconds,
/// and a monitor of the bus's notifications.
/// Refreshed tokens live an hour.
fn connected_on_the_bus(expires_in: i64) -> (FakeOAuth, TestHome, Monitor) {
    let bus =
        std::env::var("DBUS_SESSION_BUS_ADDRESS").expect("run inside scripts/with-session.sh");
    let fake = FakeOAuth::start();
    let t = TestHome::new().env("DBUS_SESSION_BUS_ADDRESS", &bus);
    let monitor = Monitor::start(&bus, t.dir().join("notify.log"));
    let file = t.dir().join("provider.json");
    std::fs::write(&file, fake.provider("fake", "pkce").to_string()).unwrap();
    t.run(&["register", file.to_str().unwrap()], None).ok();
    fake.state().switches.expires_in = Some(expires_in);
    fake.state().switches.refresh_expires_in = Some(3600);
    fake.state().switches.device_pending_polls = 0;
    t.run(
        &[
            "login",
            "fake",
            "--flow",
            "device_code",
            "--client-id",
            "c",
            "--stdin",
        ],
        Some("fake-client-secret"),
    )
    .ok();
    (fake, t, monitor)
}

#[test]
#[ignore = "needs a session bus; run through scripts/with-session.sh (make test does)"]
fn a_rejected_refresh_raises_one_desktop_notification_naming_the_provider() {
    let (fake, t, monitor) = connected_on_the_bus(6);
    fake.state().switches.refresh_error = Some("invalid_grant".into());
    // Past due (half the lifetime).
    std::thread::sleep(Duration::from_millis(3300));
    t.run(
        &["get", "fake", "--field", "access_token", "--show-secret"],
        None,
    )
    .code(5);
    assert!(
        eventually(10, || monitor.calls() >= 1),
        "no Notify call seen"
    );
    // Time for a second Notify to arrive, were one sent.
    std::thread::sleep(Duration::from_millis(3000));
    let text = monitor.text();
    assert_eq!(monitor.calls(), 1, "{text}");
    assert!(
        text.contains("Fake fake (default) needs a new login"),
        "{text}"
    );
    assert!(text.contains("authsome login fake --force"), "{text}");
}

#[test]
#[ignore = "needs a session bus; run through scripts/with-session.sh (make test does)"]
fn an_outage_raises_one_notification_on_the_bus_and_the_recovery_one_more() {
    // A 4 s token: valid through the first failed refresh, expired later.
    let (fake, t, monitor) = connected_on_the_bus(4);
    fake.state().switches.refresh_status = Some(503);
    // Past expiry: the read fails and the connection moves to `expired`.
    std::thread::sleep(Duration::from_millis(4500));
    let read = || {
        t.run(
            &["get", "fake", "--field", "access_token", "--show-secret"],
            None,
        )
    };
    read().code(5);
    assert!(
        eventually(10, || monitor.calls() >= 1),
        "no Notify call seen"
    );
    // More failing reads while expired raise nothing more.
    for _ in 0..3 {
        read().code(5);
    }
    // Time for a second Notify to arrive, were one sent.
    std::thread::sleep(Duration::from_millis(3000));
    assert_eq!(monitor.calls(), 1, "{}", monitor.text());
    assert!(
        monitor
            .text()
            .contains("Fake fake (default) could not be refreshed"),
        "{}",
        monitor.text()
    );
    // The provider is back: the next read recovers, and one more Notify says so.
    fake.state().switches.refresh_status = None;
    assert!(eventually(10, || read().code == 0));
    assert!(
        eventually(10, || monitor.calls() >= 2),
        "{}",
        monitor.text()
    );
    // Time for a second Notify to arrive, were one sent.
    std::thread::sleep(Duration::from_millis(3000));
    assert_eq!(monitor.calls(), 2, "{}", monitor.text());
    assert!(
        monitor
            .text()
            .contains("Fake fake (default) is connected again"),
        "{}",
        monitor.text()
    );
}
