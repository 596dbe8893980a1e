//! The debug log, `logs/authsome.log`, rotated by size (five files of 10 MiB
//! kept), and an optional mirror on stderr.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

const MAX_BYTES: u64 = 10 * 1024 * 1024;
const KEEP: usize = 5;

/// A file writer that rotates `name` → `name.1` → … → `name.5` by size.
#[derive(Debug, Clone)]
pub struct RotatingFile {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    file: File,
    size: u64,
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

impl RotatingFile {
    /// Opens `path` for appending.
    pub fn open(path: &Path) -> io::Result<RotatingFile> {
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            inner: Arc::new(Mutex::new(Inner {
                path: path.to_path_buf(),
                file,
                size,
            })),
        })
    }
}

impl Inner {
    fn rotate(&mut self) -> io::Result<()> {
        let name = |i: usize| PathBuf::from(format!("{}.{i}", self.path.display()));
        let _ = fs::remove_file(name(KEEP));
        for i in (1..KEEP).rev() {
            let _ = fs::rename(name(i), name(i + 1));
        }
        fs::rename(&self.path, name(1))?;
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut inner = self.inner.lock().expect("log lock");
        if inner.size + buf.len() as u64 > MAX_BYTES {
            let _ = inner.rotate();
        }
        let n = inner.file.write(buf)?;
        inner.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.lock().expect("log lock").file.flush()
    }
}

impl<'a> MakeWriter<'a> for RotatingFile {
    type Writer = RotatingFile;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Where log lines go besides the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StderrLevel {
    /// Nothing on stderr (a detached daemon).
    Off,
    /// INFO and above (a daemon in the foreground).
    Info,
    /// DEBUG and above (`--verbose`).
    Debug,
}

/// Installs the global subscriber: DEBUG for Authsome's crates into the
/// file (INFO for dependencies), plus stderr at `stderr`. `RUST_LOG` overrides the file filter.
pub fn init(logs_dir: Option<&Path>, stderr: StderrLevel) {
    let file_layer = logs_dir.and_then(|dir| {
        let _ = crate::home::ensure_private_dir(dir);
        RotatingFile::open(&dir.join("authsome.log")).ok().map(|w| {
            let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                EnvFilter::new("info,authsome=debug,authsome_daemon=debug,authsome_tray=debug")
            });
            tracing_subscriber::fmt::layer()
                .with_writer(w)
                .with_ansi(false)
                .with_filter(filter)
        })
    });
    let stderr_layer = match stderr {
        StderrLevel::Off => None,
        StderrLevel::Info => Some(EnvFilter::new("info,sqlx=warn")),
        StderrLevel::Debug => Some(EnvFilter::new(
            "debug,sqlx=info,hyper=info,h2=info,reqwest=info",
        )),
    }
    .map(|filter| {
        tracing_subscriber::fmt::layer()
            .with_writer(io::stderr)
            .with_target(false)
            .with_filter(filter)
    });
    let _ = tracing_subscriber::registry()
        .with(file_layer)
        .with(stderr_layer)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_rotates_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authsome.log");
        let mut w = RotatingFile::open(&path).unwrap();
        let chunk = vec![b'x'; 1024 * 1024];
        for _ in 0..12 {
            w.write_all(&chunk).unwrap();
        }
        assert!(dir.path().join("authsome.log.1").exists());
        assert!(fs::metadata(&path).unwrap().len() <= MAX_BYTES);
    }
}
