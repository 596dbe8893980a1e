//! Authsome in the tray: hosts the daemon, shows connections, asks for
//! credentials in native windows, and notifies when one needs attention.

fn main() {
    if let Err(e) = authsome_tray::run() {
        eprintln!("Error: {e}");
        std::process::exit(1);
    }
}
