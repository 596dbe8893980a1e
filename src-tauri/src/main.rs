//! Authsome in the tray: hosts the daemon, shows connections, asks for
//! credentials in native windows, and notifies when one needs attention.

fn main() {
    // Single-threaded here: no window, browser or child inherits the key.
    authsome_daemon::vault::keys::take_master_key_from_env();
    if let Err(e) = authsome_tray::run() {
        eprintln!("Error: {e}");
        std::process::exit(1);
    }
}
