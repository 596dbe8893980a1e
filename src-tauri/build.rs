fn main() {
    // Every command gets allow-/deny- permissions, so a window can call only
    // what its capability (capabilities/*.json) grants it.
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(
        tauri_build::AppManifest::new().commands(&[
            "snapshot",
            "connect",
            "reconnect",
            "revoke",
            "prompt_request",
            "submit_prompt",
            "cancel_prompt",
            "login_state",
            "open_device_page",
            "open_external",
            "approval_request",
            "answer_approval",
            "activity",
            "autostart_state",
            "set_autostart",
        ]),
    ))
    .expect("tauri build");
}
