//! Opening a login in the browser without putting anything secret on a
//! command line.
//!
//! A browser's argv is readable by every user of the machine (`ps`,
//! `/proc/PID/cmdline`). So Authsome never hands a browser a URL that
//! carries a `state`, a PKCE challenge, a bridge id or a device user code.
//! It writes a launch file (0600, in `HOME/launch/`) that sends the browser
//! on to a one-time launch URL on the daemon, and opens that file.
//!
//! The launch URL works once. It redirects to the real target and, for a
//! login that ends back at this daemon (the OAuth callback, a bridge form),
//! binds the login to that browser with an HttpOnly, `SameSite=Lax` cookie.
//! The bridge page, its form and the OAuth callback require the cookie; a
//! request without it is refused and changes nothing.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::secret::{constant_time_eq, random_token};

/// Where launch URLs live: `/bridge/launch/{token}`.
pub const LAUNCH_PATH: &str = "/bridge/launch";

/// The cookie that ties a login to the browser that launched it.
pub struct BrowserBinding {
    name: String,
    value: String,
}

impl BrowserBinding {
    /// A new binding with a random cookie name (so concurrent logins, and
    /// daemons of other homes on other ports, never share one) and value.
    pub fn new() -> Self {
        BrowserBinding {
            name: format!("authsome-login-{}", random_token(9)),
            value: random_token(32),
        }
    }

    /// True when `cookies` hold this binding.
    pub fn holds(&self, cookies: &Cookies) -> bool {
        cookies
            .values(&self.name)
            .any(|v| constant_time_eq(v, &self.value))
    }

    /// The `Set-Cookie` value that binds a browser, for `max_age` seconds.
    pub fn set_cookie(&self, max_age: u64) -> String {
        format!(
            "{}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}",
            self.name, self.value
        )
    }
}

impl Default for BrowserBinding {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for BrowserBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrowserBinding")
            .field("name", &self.name)
            .field("value", &"***")
            .finish()
    }
}

/// The cookies of a request.
#[derive(Default)]
pub struct Cookies(Vec<(String, String)>);

impl Cookies {
    /// Parses `Cookie` header values (`a=1; b=2`).
    pub fn parse<'a>(headers: impl IntoIterator<Item = &'a str>) -> Self {
        let pairs = headers
            .into_iter()
            .flat_map(|h| h.split(';'))
            .filter_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                Some((name.trim().to_string(), value.trim().to_string()))
            })
            .collect();
        Cookies(pairs)
    }

    /// The values sent for cookie `name` (a page on another port of this
    /// host can set a cookie of the same name, so there may be several).
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Debug for Cookies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(n, _)| format!("{n}=***")))
            .finish()
    }
}

/// Whether claiming a launch binds the browser to its login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// Set the login's cookie: the login ends back at this daemon (the
    /// OAuth callback, a bridge form), which then answers only this browser.
    Cookie,
    /// No cookie: the login ends at the provider (a device code).
    None,
}

/// One way into a login from the browser: a one-time token, where it leads,
/// and the launch file that carries it.
pub struct Launch {
    token: String,
    /// Where the launch URL redirects.
    pub target: String,
    /// Whether claiming it binds the browser to the login.
    pub binding: Binding,
    file: LaunchFile,
}

impl Launch {
    /// Writes a launch file in `dir` that leads to `base_url`'s launch URL
    /// for a fresh token, which redirects to `target`.
    pub fn create(dir: &Path, base_url: &str, target: String, binding: Binding) -> Result<Launch> {
        let token = random_token(32);
        let url = format!("{base_url}{LAUNCH_PATH}/{token}");
        let file = LaunchFile::write(dir, &url)?;
        Ok(Launch {
            token,
            target,
            binding,
            file,
        })
    }

    /// True when `token` is this launch's token (constant time).
    pub fn is(&self, token: &str) -> bool {
        constant_time_eq(&self.token, token)
    }

    /// The launch file to open in the browser.
    pub fn file(&self) -> &Path {
        &self.file.0
    }

    /// The one-time launch URL (for a person to open by hand).
    pub fn url(&self, base_url: &str) -> String {
        format!("{base_url}{LAUNCH_PATH}/{}", self.token)
    }
}

impl fmt::Debug for Launch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Launch")
            .field("token", &"***")
            .field("binding", &self.binding)
            .field("file", &self.file.0)
            .finish()
    }
}

/// A launch file; removed when dropped.
struct LaunchFile(PathBuf);

impl LaunchFile {
    fn write(dir: &Path, url: &str) -> Result<LaunchFile> {
        crate::home::ensure_private_dir(dir)?;
        let path = dir.join(format!("{}.html", random_token(12)));
        let html = page(url);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io(path.display().to_string(), e))?;
        f.write_all(html.as_bytes())
            .map_err(|e| Error::io(path.display().to_string(), e))?;
        Ok(LaunchFile(path))
    }
}

impl Drop for LaunchFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Removes launch files a previous daemon left behind.
pub fn clear_stale(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|e| e == "html") {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

fn page(url: &str) -> String {
    // The URL is the daemon's base URL and a base64url token: nothing to escape
    // but the quote and ampersand rules of an attribute, kept for safety.
    let url = url.replace('&', "&amp;").replace('"', "&quot;");
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <meta http-equiv=\"refresh\" content=\"0;url={url}\">\
         <title>Authsome</title></head>\
         <body><p>Opening Authsome. If nothing happens, <a href=\"{url}\">continue here</a>.</p></body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_launch_file_is_private_leads_to_the_launch_url_and_goes_with_the_launch() {
        let dir = tempfile::tempdir().unwrap();
        let launch = Launch::create(
            &dir.path().join("launch"),
            "http://127.0.0.1:7998",
            "https://example.com/authorize?state=s".into(),
            Binding::Cookie,
        )
        .unwrap();
        let path = launch.file().to_path_buf();
        assert_eq!(crate::home::mode_of(&path), Some(0o600));
        assert_eq!(crate::home::mode_of(path.parent().unwrap()), Some(0o700));
        let html = fs::read_to_string(&path).unwrap();
        let url = launch.url("http://127.0.0.1:7998");
        assert!(html.contains(&format!("content=\"0;url={url}\"")), "{html}");
        assert!(!html.contains("state=s"), "the target stays in the daemon");
        assert!(launch.is(url.rsplit('/').next().unwrap()));
        assert!(!launch.is("other"));
        assert!(!format!("{launch:?}").contains(url.rsplit('/').next().unwrap()));
        drop(launch);
        assert!(!path.exists());
    }

    #[test]
    fn the_binding_is_found_only_in_its_own_cookie() {
        let b = BrowserBinding::new();
        let set = b.set_cookie(300);
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Path=/"));
        let pair = set.split(';').next().unwrap();
        assert!(b.holds(&Cookies::parse(["x=1", pair])));
        assert!(b.holds(&Cookies::parse([format!("a=b; {pair}; c=d").as_str()])));
        let (name, _) = pair.split_once('=').unwrap();
        assert!(!b.holds(&Cookies::parse([format!("{name}=wrong").as_str()])));
        assert!(!b.holds(&Cookies::parse(["other=1"])));
        let tossed = format!("{name}=planted");
        assert!(
            b.holds(&Cookies::parse([tossed.as_str(), pair])),
            "a planted twin does not hide it"
        );
        assert!(!BrowserBinding::new().holds(&Cookies::parse([pair])));
        assert!(!format!("{b:?}").contains(pair.split_once('=').unwrap().1));
    }
}
