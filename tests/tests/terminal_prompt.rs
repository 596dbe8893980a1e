//! `authsome login` on a real terminal: a pseudo-terminal drives the masked
//! prompt the way a person would.

use std::os::unix::fs::PermissionsExt;

use authsome_tests::TestHome;

const KEY: &str = "sk-typed-abcdefghijklmnopqrstuvwxyz";

/// Runs `authsome login openai` on a pty, answers the prompt with `answers`
/// (one per prompt) and returns everything the terminal showed.
fn login_on_a_terminal(t: &TestHome, answers: &[&str]) -> (i32, String) {
    let script = t.dir().join("drive_terminal.py");
    std::fs::write(
        &script,
        r#"import os, pty, sys, time, json, termios
answers = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
seen = b""
deadline = time.time() + 20
for i, a in enumerate(answers):
    # Answer each prompt only once it is shown, as a person would.
    while seen.count(b"API key: ") <= i and time.time() < deadline:
        try:
            seen += os.read(fd, 1024)
        except OSError:
            break
    # Type only once the prompt has turned echo off, as a person would.
    while termios.tcgetattr(fd)[3] & termios.ECHO and time.time() < deadline:
        time.sleep(0.005)
    os.write(fd, a.encode() + b"\n")
    seen += b"<answered>"
while time.time() < deadline:
    try:
        chunk = os.read(fd, 1024)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#,
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = authsome_tests::authsome_bin();
    let out = t
        .program("python3")
        .arg(&script)
        .arg(serde_json::to_string(answers).unwrap())
        .arg(&bin)
        .args(["login", "openai"])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn the_key_is_asked_for_with_a_masked_prompt_and_never_echoed() {
    let t = TestHome::new();
    let (code, screen) = login_on_a_terminal(&t, &[KEY]);
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("OpenAI API key: "), "{screen}");
    assert!(
        screen.contains("Successfully logged in to openai (default)"),
        "{screen}"
    );
    assert!(!screen.contains(KEY), "the typed key was echoed: {screen}");
    assert_eq!(t.secret("openai", "api_key"), KEY);
}

#[test]
fn a_mistyped_key_is_asked_for_again_with_the_hint() {
    let t = TestHome::new();
    let (code, screen) = login_on_a_terminal(&t, &["oops", KEY]);
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("start with sk-"), "{screen}");
    assert!(!screen.contains("oops"), "{screen}");
    assert_eq!(t.field("openai", "status"), "connected");
}
