//! Where a run writes, and making sure it is alone there: a run refuses an
//! output that exists (unless `--force`, and then only a sampo output, never
//! a directory, a device, a link or any other file), and holds an exclusive
//! lock file beside its output from before it touches anything until its
//! file is in place. The lock works where HDF5's own file locking is turned
//! off (`HDF5_USE_FILE_LOCKING=FALSE`, common on Lustre and NFS).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{0} exists; pass --force to overwrite it")]
    Exists(PathBuf),
    #[error(
        "{0} exists (left by a paused, interrupted or failed run): run again with --resume \
         to go on from its last checkpoint, or --force to discard it"
    )]
    PartialExists(PathBuf),
    /// A `.partial` HDF5 cannot open: nothing in it can be resumed or read.
    #[error(
        "{0} exists but cannot be opened as HDF5 (a run was killed while creating it, or its \
         disk filled): nothing in it can be resumed; run again with --force to replace it"
    )]
    PartialUnreadable(PathBuf),
    #[error("{0} is a symbolic link; sampo does not write through links: give the real path")]
    Symlink(PathBuf),
    #[error("{path} is {what}, not a file sampo may write; choose another output")]
    NotRegular { path: PathBuf, what: &'static str },
    #[error(
        "{0} is not a sampo output (no HDF5 file with a `sampo_version` attribute); refusing to \
         overwrite it, even with --force"
    )]
    NotSampo(PathBuf),
    #[error("the output's directory {0} does not exist")]
    NoDirectory(PathBuf),
    #[error("cannot create files in {dir}: {cause}")]
    NotWritable { dir: PathBuf, cause: String },
    #[error(
        "another sampo run is writing {target} (lock {lock}: {holder}); wait for it to end, \
         or remove the lock if that run is gone"
    )]
    Locked {
        target: PathBuf,
        lock: PathBuf,
        holder: String,
    },
}

impl TargetError {
    /// True when `run` would refuse it even with `--force`.
    pub fn is_hard(&self) -> bool {
        !matches!(
            self,
            Self::Exists(_) | Self::PartialExists(_) | Self::PartialUnreadable(_)
        )
    }
}

/// `<output>.partial`: where the file lives until the run completes.
pub fn partial_path(target: &Path) -> PathBuf {
    with_suffix(target, ".partial")
}

/// `<output>.lock`: held by the run writing `<output>`.
pub fn lock_path(target: &Path) -> PathBuf {
    with_suffix(target, ".lock")
}

fn with_suffix(target: &Path, suffix: &str) -> PathBuf {
    let mut s = target.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Everything `run` checks of its output before any work (and `check`
/// shows): the directory exists and takes new files; the output and its
/// `.partial` are absent, or, with `force`, sampo files; no links, no
/// directories, no devices.
pub fn check_target(target: &Path, force: bool) -> Result<(), TargetError> {
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(TargetError::NoDirectory(dir));
    }
    check_file(target, force, false)?;
    check_file(&partial_path(target), force, true)?;
    probe_directory(&dir, target)
}

/// What `run` checks before any work, and `check` shows: no live run holds
/// the output, and [`check_target`].
pub fn preflight(target: &Path, force: bool) -> Result<(), TargetError> {
    OutputLock::check(target)?;
    check_target(target, force)
}

/// A file in the way of a run (its output, or its `.partial` when
/// `partial`): refused but for a sampo output with `force`. A `.partial` is
/// sampo's own scratch: `force` also replaces one HDF5 cannot open (a run
/// killed while creating it, a full disk), which nothing else could clear.
fn check_file(path: &Path, force: bool, partial: bool) -> Result<(), TargetError> {
    let meta = match std::fs::symlink_metadata(path) {
        Err(_) => return Ok(()),
        Ok(m) => m,
    };
    let kind = meta.file_type();
    if kind.is_symlink() {
        return Err(TargetError::Symlink(path.to_path_buf()));
    }
    if kind.is_dir() {
        return Err(TargetError::NotRegular {
            path: path.to_path_buf(),
            what: "a directory",
        });
    }
    if !kind.is_file() {
        return Err(TargetError::NotRegular {
            path: path.to_path_buf(),
            what: "a device, socket or pipe",
        });
    }
    let found = if meta.len() == 0 {
        Found::Unreadable
    } else {
        inspect(path, partial)
    };
    match (found, partial, force) {
        (Found::Unreadable, true, false) => Err(TargetError::PartialUnreadable(path.to_path_buf())),
        (_, true, false) => Err(TargetError::PartialExists(path.to_path_buf())),
        (_, false, false) => Err(TargetError::Exists(path.to_path_buf())),
        (Found::Sampo, _, true) | (Found::Unreadable, true, true) => Ok(()),
        _ => Err(TargetError::NotSampo(path.to_path_buf())),
    }
}

/// What a file in the way of a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// An HDF5 file whose root has the `sampo_version` attribute.
    Sampo,
    /// Another file, HDF5 or not, that opens.
    Other,
    /// A file HDF5 cannot open: empty, truncated, or not HDF5 at all.
    Unreadable,
}

/// What `path` is (a `.partial` when `partial`: one without HDF5's
/// signature is a cut one, as sampo writes nothing else there).
fn inspect(path: &Path, partial: bool) -> Found {
    let mut head = [0u8; 8];
    let signature = std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && head == *b"\x89HDF\r\n\x1a\n";
    if !signature {
        // Text, or an HDF5 file cut before its signature's end.
        return if partial {
            Found::Unreadable
        } else {
            Found::Other
        };
    }
    // Opened read-only; this process holds the output's lock (or `check`
    // found none live), so no sampo run is writing it.
    match hdf5::File::open(path) {
        Ok(f) if f.attr("sampo_version").is_ok() => Found::Sampo,
        Ok(_) => Found::Other,
        // Another program holding HDF5's lock on it: not ours to replace.
        Err(e) if e.to_string().contains("unable to lock") => Found::Other,
        Err(_) => Found::Unreadable,
    }
}

/// Creates and removes a file beside the output: the directory takes new
/// files (not read-only, not full of names, permissions allow it).
fn probe_directory(dir: &Path, target: &Path) -> Result<(), TargetError> {
    let probe = with_suffix(target, &format!(".probe-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(TargetError::NotWritable {
            dir: dir.to_path_buf(),
            cause: e.to_string(),
        }),
    }
}

/// The exclusive right to write an output: `<output>.lock`, created with
/// O_EXCL and holding this process's host and PID, removed when dropped. A
/// lock left by a dead process on this host is taken over; one held by a
/// live process, or by another host, is refused.
#[derive(Debug)]
pub struct OutputLock {
    path: PathBuf,
}

impl OutputLock {
    /// Refuses, as `acquire` would, an output that a live run holds; takes
    /// nothing.
    pub fn check(target: &Path) -> Result<(), TargetError> {
        let path = lock_path(target);
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(());
        };
        let mut words = text.split_whitespace();
        let (holder_host, pid) = (words.next(), words.next().and_then(|p| p.parse().ok()));
        match (holder_host, pid) {
            (Some(h), Some(pid)) if h == hostname() && !alive(pid) => Ok(()),
            _ => Err(TargetError::Locked {
                target: target.to_path_buf(),
                lock: path,
                holder: holder(holder_host, pid),
            }),
        }
    }

    pub fn acquire(target: &Path) -> Result<OutputLock, TargetError> {
        let path = lock_path(target);
        let host = hostname();
        for _ in 0..3 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    let _ = writeln!(f, "{} {}", host, std::process::id());
                    return Ok(OutputLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let mut words = text.split_whitespace();
                    let (holder_host, pid) =
                        (words.next(), words.next().and_then(|p| p.parse().ok()));
                    match (holder_host, pid) {
                        (Some(h), Some(pid)) if h == host && !alive(pid) => {
                            tracing::warn!(
                                "removing the stale lock {} of process {pid}, which has ended",
                                path.display()
                            );
                            let _ = std::fs::remove_file(&path);
                        }
                        _ => {
                            return Err(TargetError::Locked {
                                target: target.to_path_buf(),
                                lock: path.clone(),
                                holder: holder(holder_host, pid),
                            })
                        }
                    }
                }
                Err(e) => {
                    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
                    return Err(TargetError::NotWritable {
                        dir,
                        cause: e.to_string(),
                    });
                }
            }
        }
        Err(TargetError::Locked {
            target: target.to_path_buf(),
            lock: path,
            holder: "a run that keeps taking it".into(),
        })
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn holder(host: Option<&str>, pid: Option<i32>) -> String {
    match (host, pid) {
        (Some(h), Some(p)) => format!("process {p} on {h}"),
        _ => "a run that is starting".to_string(),
    }
}

/// Whether a process of this host is running (signal 0 checks, sends nothing).
fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// This host's name (empty if it cannot be read).
pub(crate) fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its length.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
