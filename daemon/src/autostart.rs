//! Starting with the session: an XDG autostart entry
//! (`$XDG_CONFIG_HOME/autostart/authsome.desktop`, `~/.config/autostart/`
//! by default) that starts the tray app when the person logs in. Used by
//! `authsome tray autostart on|off` and the tray's main window.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The entry's file name.
pub const FILE: &str = "authsome.desktop";

/// Where the entry lives.
pub fn path() -> Result<PathBuf> {
    let config = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => dirs_home()?.join(".config"),
    };
    Ok(config.join("autostart").join(FILE))
}

fn dirs_home() -> Result<PathBuf> {
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| Error::InvalidInput("HOME is not set".into()))
}

/// One argument of an `Exec` line as the Desktop Entry specification
/// asks: quoted when it needs it, with `"`, `` ` ``, `$` and `\` escaped
/// inside the quotes; then, as the value is a string, every backslash
/// doubled; and `%` written `%%` (a field code otherwise). A line break or
/// other control character cannot be written at all.
fn exec_arg(arg: &str) -> Result<String> {
    if arg.chars().any(char::is_control) {
        return Err(Error::InvalidInput(format!(
            "{arg:?} cannot go in an autostart entry (a control character)"
        )));
    }
    let quoted = if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=+:,@".contains(c))
    {
        arg.to_string()
    } else {
        let mut out = String::from("\"");
        for c in arg.chars() {
            if matches!(c, '"' | '`' | '$' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
        out
    };
    Ok(quoted.replace('\\', "\\\\").replace('%', "%%"))
}

/// The entry's text for the tray binary `tray`. A home other than the
/// default (`AUTHSOME_HOME`) goes with it.
pub fn entry(tray: &Path, home: Option<&Path>) -> Result<String> {
    let mut exec = Vec::new();
    if let Some(h) = home {
        exec.push("env".to_string());
        exec.push(exec_arg(&format!("AUTHSOME_HOME={}", h.display()))?);
    }
    exec.push(exec_arg(&tray.display().to_string())?);
    Ok(format!(
        "[Desktop Entry]\nType=Application\nName=Authsome\n\
         Comment=Credential broker for AI agents\nExec={}\nIcon=authsome\n\
         Terminal=false\nX-GNOME-Autostart-enabled=true\n",
        exec.join(" ")
    ))
}

/// Writes the entry (0600, atomically, never through a symlink). Returns
/// its path.
pub fn enable(tray: &Path, home: Option<&Path>) -> Result<PathBuf> {
    let file = path()?;
    let dir = file.parent().expect("autostart dir");
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
    crate::home::write_private_file(&file, entry(tray, home)?.as_bytes())?;
    Ok(file)
}

/// Removes the entry; true when there was one.
pub fn disable() -> Result<bool> {
    let file = path()?;
    match std::fs::remove_file(&file) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(file.display().to_string(), e)),
    }
}

/// The entry's `Exec` line, when there is an entry.
pub fn exec_line() -> Result<Option<String>> {
    let file = path()?;
    match std::fs::read_to_string(&file) {
        Ok(text) => Ok(text
            .lines()
            .find_map(|l| l.strip_prefix("Exec="))
            .map(str::to_string)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(file.display().to_string(), e)),
    }
}

/// The tray binary beside this program (`authsome` and `authsome-tray`
/// are installed together).
pub fn tray_beside_me() -> Result<PathBuf> {
    let me = std::env::current_exe().map_err(|e| Error::io("the current program", e))?;
    let tray = if me.file_name().is_some_and(|n| n == "authsome-tray") {
        me
    } else {
        me.with_file_name("authsome-tray")
    };
    Ok(tray)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_lines_quote_what_needs_quoting() {
        let e = entry(Path::new("/usr/bin/authsome-tray"), None).unwrap();
        assert!(e.contains("\nExec=/usr/bin/authsome-tray\n"), "{e}");
        // Quoted, `$` escaped in the quotes, and that backslash doubled as
        // the value is a string; `%` doubled.
        let e = entry(
            Path::new("/opt/my apps/authsome-tray"),
            Some(Path::new("/home/a/my $home 100%")),
        )
        .unwrap();
        assert!(
            e.contains(
                "\nExec=env \"AUTHSOME_HOME=/home/a/my \\\\$home 100%%\" \"/opt/my apps/authsome-tray\"\n"
            ),
            "{e}"
        );
        // A line break would start a new key of the entry: refused.
        assert!(entry(Path::new("/tmp/x\nExec=/bin/evil"), None).is_err());
    }
}
