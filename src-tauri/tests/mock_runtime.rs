//! The tray on Tauri's mock runtime: commands through the real IPC, and the
//! prompter opening a window whose form completes a login. No display needed.

use authsome_daemon::home::{Home, KeyBackendKind};
use authsome_daemon::names::{ConnectionName, ProviderName};
use authsome_daemon::vault::keys::MasterKeyLoader;
use authsome_daemon::wire::{InputMode, LoginRequest};
use authsome_tray::TrayState;
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{
    get_ipc_response, mock_builder, mock_context, noop_assets, MockRuntime, INVOKE_KEY,
};
use tauri::webview::InvokeRequest;
use tauri::{Manager, WebviewWindow, WebviewWindowBuilder};

fn app_with_daemon() -> (tauri::App<MockRuntime>, tempfile::TempDir) {
    app_on(mock_context(noop_assets()))
}

/// The app on the mock runtime with `context`, its daemon started in a temp home.
fn app_on(context: tauri::Context<MockRuntime>) -> (tauri::App<MockRuntime>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path().join("home"));
    MasterKeyLoader::new(home.clone())
        .init(Some(KeyBackendKind::File))
        .unwrap();
    let app = authsome_tray::builder(mock_builder())
        .build(context)
        .unwrap();
    tauri::async_runtime::block_on(authsome_tray::start_daemon(
        app.handle().clone(),
        home,
        Some(0),
    ))
    .unwrap();
    (app, dir)
}

fn invoke(
    window: &WebviewWindow<MockRuntime>,
    cmd: &str,
    body: serde_json::Value,
) -> Result<serde_json::Value, serde_json::Value> {
    get_ipc_response(
        window,
        InvokeRequest {
            cmd: cmd.into(),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            url: "tauri://localhost".parse().unwrap(),
            body: InvokeBody::Json(body),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        },
    )
    .map(|b| b.deserialize::<serde_json::Value>().unwrap())
}

#[test]
fn commands_answer_through_ipc_with_code_and_message_errors() {
    let (app, _dir) = app_with_daemon();
    let main = WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .unwrap();
    let snap = invoke(&main, "snapshot", serde_json::json!({})).unwrap();
    assert!(snap["list"]["providers"].as_array().unwrap().len() >= 80);
    assert_eq!(snap["key_source"], "file");
    assert_eq!(
        snap["ca_fingerprint"]
            .as_str()
            .unwrap()
            .matches(':')
            .count(),
        31
    );
    // A window that is not a prompt cannot read or answer one.
    let err = invoke(&main, "prompt_request", serde_json::json!({})).unwrap_err();
    assert_eq!(err["code"], "not_found");
    let err = invoke(
        &main,
        "revoke",
        serde_json::json!({"provider": "openai", "connection": "default"}),
    )
    .unwrap_err();
    assert_eq!(
        err,
        serde_json::json!({"code": "connection_not_found", "message": "connection not found: openai (default)"})
    );
    let err = invoke(
        &main,
        "open_external",
        serde_json::json!({"url": "file:///etc/passwd"}),
    )
    .unwrap_err();
    assert_eq!(err["code"], "invalid_input");
}

#[test]
fn the_prompter_opens_a_window_whose_form_completes_the_login() {
    let (app, _dir) = app_with_daemon();
    let daemon = app.state::<TrayState>().daemon().unwrap().clone();
    let profile = daemon.home().default_profile().unwrap();
    let resp = tauri::async_runtime::block_on(daemon.logins().begin_login(
        &profile,
        LoginRequest {
            provider: ProviderName::parse("openai").unwrap(),
            connection: None,
            force: false,
            flow: None,
            mode: InputMode::Prompter,
            inputs: Default::default(),
            scopes: None,
            base_url: None,
            client_id: None,
        },
    ))
    .unwrap();
    assert!(
        resp.open_url.is_none(),
        "the tray shows the form itself, no browser page"
    );
    let window = app
        .get_webview_window(&format!("prompt-{}", resp.id))
        .expect("a prompt window opened");
    let req = invoke(&window, "prompt_request", serde_json::json!({})).unwrap();
    assert_eq!(req["fields"][0]["name"], "api_key");
    assert_eq!(req["fields"][0]["secret"], true);
    assert!(req["docs_url"].as_str().unwrap().starts_with("https://"));
    let err = invoke(
        &window,
        "submit_prompt",
        serde_json::json!({"values": {"api_key": "nope"}}),
    )
    .unwrap_err();
    assert_eq!(err["code"], "key_pattern_mismatch");
    invoke(
        &window,
        "submit_prompt",
        serde_json::json!({"values": {"api_key": "sk-tray-abcdefghijklmnopqrstuvwx"}}),
    )
    .unwrap();
    let view = tauri::async_runtime::block_on(daemon.connections().get(
        &profile,
        "openai",
        &ConnectionName::default_name(),
        authsome_daemon::vault::store::Reveal::Secrets,
    ))
    .unwrap();
    assert_eq!(view.secrets["api_key"], "sk-tray-abcdefghijklmnopqrstuvwx");
}

#[test]
fn each_window_may_call_only_the_commands_of_its_kind() {
    // The access control list `tauri_build` resolved from capabilities/*.json,
    // as the real tray embeds it.
    let (app, _dir) = app_on(tauri::generate_context!(test = true));
    let window = |label: &str| {
        WebviewWindowBuilder::new(&app, label, Default::default())
            .build()
            .unwrap()
    };
    let main = window("main");
    let prompt = window("prompt-someid");
    let device = window("device-someid");
    let approval = window("approval-run-x-raw");
    let denied = |w: &WebviewWindow<MockRuntime>, cmd: &str| {
        let err = invoke(w, cmd, serde_json::json!({})).unwrap_err();
        err.to_string().contains("not allowed")
    };
    // The main window reads the snapshot; no window calls another kind's commands.
    assert!(invoke(&main, "snapshot", serde_json::json!({})).is_ok());
    let refused: [(&WebviewWindow<MockRuntime>, &[&str]); 4] = [
        (
            &prompt,
            &[
                "snapshot",
                "connect",
                "reconnect",
                "revoke",
                "login_state",
                "open_device_page",
            ],
        ),
        (
            &device,
            &[
                "snapshot",
                "prompt_request",
                "submit_prompt",
                "cancel_prompt",
                "open_external",
            ],
        ),
        (
            &main,
            &[
                "prompt_request",
                "submit_prompt",
                "cancel_prompt",
                "login_state",
                "open_device_page",
                "approval_request",
                "answer_approval",
            ],
        ),
        (
            &approval,
            &[
                "snapshot",
                "activity",
                "connect",
                "revoke",
                "prompt_request",
                "submit_prompt",
                "login_state",
                "open_external",
            ],
        ),
    ];
    for (w, cmds) in refused {
        for cmd in cmds {
            assert!(denied(w, cmd), "{} may call {cmd}", w.label());
        }
    }
    // A prompt window's own commands are allowed (it has no login here, so
    // the command itself answers).
    let own = invoke(&prompt, "prompt_request", serde_json::json!({}));
    assert!(
        !own.as_ref()
            .is_err_and(|e| e.to_string().contains("not allowed")),
        "{own:?}"
    );
    // An approval window with no question (its run is gone) is told so,
    // and cannot answer.
    let own = invoke(&approval, "approval_request", serde_json::json!({})).unwrap_err();
    assert_eq!(own["code"], "not_found", "{own}");
    let answer = invoke(
        &approval,
        "answer_approval",
        serde_json::json!({ "answer": "run" }),
    )
    .unwrap_err();
    assert_eq!(answer["code"], "not_found", "{answer}");
    assert!(invoke(&main, "activity", serde_json::json!({})).is_ok());
    assert!(denied(&approval, "set_autostart") && denied(&prompt, "set_autostart"));
}

#[test]
fn the_main_window_switch_writes_and_removes_the_autostart_entry() {
    let (app, dir) = app_with_daemon();
    // Tests never touch the real user's config: XDG_CONFIG_HOME is the temp dir.
    std::env::set_var("XDG_CONFIG_HOME", dir.path().join("config"));
    let main = WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .unwrap();
    assert_eq!(
        invoke(&main, "autostart_state", serde_json::json!({})).unwrap(),
        serde_json::Value::Null
    );
    let exec = invoke(&main, "set_autostart", serde_json::json!({"on": true})).unwrap();
    let exec = exec.as_str().unwrap().to_string();
    assert!(
        exec.ends_with("authsome-tray") || exec.contains("authsome-tray"),
        "{exec}"
    );
    let file = dir.path().join("config/autostart/authsome.desktop");
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains(&format!("Exec={exec}")));
    assert_eq!(
        invoke(&main, "set_autostart", serde_json::json!({"on": false})).unwrap(),
        serde_json::Value::Null
    );
    assert!(!file.exists());
}
