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

#[test]
#[ignore = "needs a session bus; run through scripts/with-session.sh (make test does)"]
fn a_rejected_refresh_raises_one_desktop_notification_naming_the_provider() {
    let bus =
        std::env::var("DBUS_SESSION_BUS_ADDRESS").expect("run inside scripts/with-session.sh");
    let fake = FakeOAuth::start();
    let t = TestHome::new().env("DBUS_SESSION_BUS_ADDRESS", &bus);
    let monitor = Monitor::start(&bus, t.dir().join("notify.log"));
    let file = t.dir().join("provider.json");
    std::fs::write(&file, fake.provider("fake", "pkce").to_string()).unwrap();
    t.run(&["register", file.to_str().unwrap()], None).ok();
    // Device code needs no browser here.
    fake.state().switches.expires_in = Some(2);
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
    fake.state().switches.refresh_error = Some("invalid_grant".into());
    std::thread::sleep(Duration::from_millis(1100));
    t.run(
        &["get", "fake", "--field", "access_token", "--show-secret"],
        None,
    )
    .code(5);
    assert!(
        eventually(10, || monitor.calls() >= 1),
        "no Notify call seen"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let text = monitor.text();
    assert_eq!(monitor.calls(), 1, "{text}");
    assert!(
        text.contains("Fake fake (default) needs a new login"),
        "{text}"
    );
    assert!(text.contains("authsome login fake --force"), "{text}");
}
