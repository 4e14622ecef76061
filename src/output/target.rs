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
    #[error("the output's directory {0} is a file, not a directory; choose another output")]
    FileAsDirectory(PathBuf),
    #[error(
        "the output {0} is a directory path (it ends with /): give a file name, such as \
         {0}out.h5"
    )]
    DirectoryPath(PathBuf),
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
    /// `<output>.lock` is not a lock a run wrote: a directory, a link, a
    /// file of other contents. No run would ever release it.
    #[error(
        "{lock} is {what}, not a lock file sampo wrote; if no sampo run is writing {target}, \
         remove it ({remedy}) and run again"
    )]
    OddLock {
        target: PathBuf,
        lock: PathBuf,
        what: String,
        remedy: String,
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
    let dir = directory_of(target)?;
    check_file(target, force, false)?;
    check_file(&partial_path(target), force, true)?;
    probe_directory(&dir, target)
}

/// The directory an output goes in, which must be one: a path ending with
/// `/` names no file, and a file is no directory.
fn directory_of(target: &Path) -> Result<PathBuf, TargetError> {
    use std::os::unix::ffi::OsStrExt;
    if target.as_os_str().as_bytes().ends_with(b"/") {
        return Err(TargetError::DirectoryPath(target.to_path_buf()));
    }
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if dir.is_dir() {
        Ok(dir)
    } else if dir.exists() {
        Err(TargetError::FileAsDirectory(dir))
    } else {
        Err(TargetError::NoDirectory(dir))
    }
}

/// What `run` checks before any work, and `check` shows: no live run holds
/// the output, and [`check_target`].
pub fn preflight(target: &Path, force: bool) -> Result<(), TargetError> {
    // Where the output would go first: a lock cannot be beside a file that
    // cannot be.
    directory_of(target)?;
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

/// What `<output>.lock` says of its holder.
enum Holder {
    /// No lock file.
    None,
    /// A process of this host that has ended (or whose PID now belongs to a
    /// process started later): its lock may be taken over.
    Gone(i32),
    /// A live process of this host that has said it is ending (a run
    /// stopping after a failure or a signal): its lock is free once it has.
    Ending(i32, Option<u64>),
    /// A live holder, or a lock that cannot be taken: the error to give.
    Refused(TargetError),
}

/// How long a run waits for an ending holder of its output's lock (rank 0
/// of a job whose launcher has already returned, writing its checkpoint).
const ENDING_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// The locks this process holds, so that [`mark_ending`] can find them.
static HELD: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Says in every lock this process holds that its run is ending (a failure
/// or a signal): a run started meanwhile on the same output (`--resume`
/// right after the launcher returned) waits for this process to end
/// instead of refusing. Appends ` ending` to the lock's line in one write,
/// so that a reader sees the old line or the new one.
pub fn mark_ending() {
    let Ok(mut held) = HELD.lock() else { return };
    // Once per lock: forgotten here, removed by its `OutputLock` as before.
    for path in held.drain(..) {
        let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&path) else {
            continue;
        };
        let _ = f.write_all(b"ending\n");
    }
}

/// How long an empty lock file is taken for a run that is starting (it
/// writes its host and PID right after creating the file).
const STARTING: std::time::Duration = std::time::Duration::from_secs(10);

impl Holder {
    /// Reads the lock at `path` of `target` without following links or
    /// opening anything but a regular file (a FIFO would never answer).
    fn of(target: &Path, path: &Path) -> Holder {
        let odd = |what: String, remedy: String| {
            Holder::Refused(TargetError::OddLock {
                target: target.to_path_buf(),
                lock: path.to_path_buf(),
                what,
                remedy,
            })
        };
        let shown = path.display();
        let meta = match std::fs::symlink_metadata(path) {
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                return Holder::None
            }
            Err(e) => return odd(format!("unreadable ({e})"), format!("rm {shown}")),
            Ok(m) => m,
        };
        let kind = meta.file_type();
        if kind.is_symlink() {
            let to = std::fs::read_link(path).map_or("?".into(), |t| t.display().to_string());
            let dangling = if path.exists() {
                ""
            } else {
                ", which does not exist"
            };
            return odd(
                format!("a symbolic link to {to}{dangling}"),
                format!("rm {shown}"),
            );
        }
        if kind.is_dir() {
            return odd("a directory".into(), format!("rmdir {shown}"));
        }
        if !kind.is_file() {
            return odd("a device, FIFO or socket".into(), format!("rm {shown}"));
        }
        let text = match std::fs::File::open(path).and_then(|f| {
            let mut text = String::new();
            f.take(4096).read_to_string(&mut text).map(|_| text)
        }) {
            Ok(t) => t,
            // Removed by its run in between: nothing holds it now.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Holder::None,
            Err(e) => return odd(format!("unreadable ({e})"), format!("rm {shown}")),
        };
        let words: Vec<&str> = text.split_whitespace().collect();
        let marks = words.iter().rev().take_while(|w| **w == "ending").count();
        let ending = marks > 0;
        let words = &words[..words.len() - marks];
        let parsed = match words {
            [host, pid] => pid.parse::<i32>().ok().map(|p| (*host, p, None)),
            [host, pid, start] => match (pid.parse::<i32>(), start.parse::<u64>()) {
                (Ok(p), Ok(s)) => Some((*host, p, Some(s))),
                _ => None,
            },
            _ => None,
        };
        let locked = |holder: String| {
            Holder::Refused(TargetError::Locked {
                target: target.to_path_buf(),
                lock: path.to_path_buf(),
                holder,
            })
        };
        match parsed {
            Some((host, pid, start)) if pid > 0 => {
                if host == hostname() && !running(pid, start) {
                    Holder::Gone(pid)
                } else if host == hostname() && ending {
                    Holder::Ending(pid, start)
                } else {
                    locked(format!("process {pid} on {host}"))
                }
            }
            None if text.is_empty()
                && meta
                    .modified()
                    .ok()
                    .and_then(|m| m.elapsed().ok())
                    .is_some_and(|age| age < STARTING) =>
            {
                locked("a run that is starting".into())
            }
            _ => {
                let what = if text.is_empty() {
                    "an empty file (a run killed as it started, or another program's)".to_string()
                } else {
                    let mut shown: String = text.trim().chars().take(40).collect();
                    if text.trim().chars().count() > 40 {
                        shown.push('…');
                    }
                    format!("a file holding {shown:?} (sampo writes `host pid start`)")
                };
                odd(what, format!("rm {shown}"))
            }
        }
    }
}

impl OutputLock {
    /// Refuses, as `acquire` would, an output that a live run holds; takes
    /// nothing.
    pub fn check(target: &Path) -> Result<(), TargetError> {
        match Holder::of(target, &lock_path(target)) {
            Holder::Refused(e) => Err(e),
            // `run` waits for it, then takes it.
            Holder::None | Holder::Gone(_) | Holder::Ending(..) => Ok(()),
        }
    }

    pub fn acquire(target: &Path) -> Result<OutputLock, TargetError> {
        let path = lock_path(target);
        let host = hostname();
        let me = std::process::id();
        let mine = match start_time(me as i32) {
            Some(t) => format!("{host} {me} {t}"),
            None => format!("{host} {me}"),
        };
        for _ in 0..3 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    // The line ends with a space, for `mark_ending`'s word.
                    let _ = write!(f, "{mine} ");
                    if let Ok(mut held) = HELD.lock() {
                        held.push(path.clone());
                    }
                    return Ok(OutputLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    match Holder::of(target, &path) {
                        Holder::Refused(e) => return Err(e),
                        Holder::None => {}
                        Holder::Gone(pid) => {
                            tracing::warn!(
                                "removing the stale lock {} of process {pid}, which has ended",
                                path.display()
                            );
                            let _ = std::fs::remove_file(&path);
                        }
                        Holder::Ending(pid, start) => {
                            tracing::info!(
                                "waiting for process {pid}, which holds {} and is ending",
                                path.display()
                            );
                            let since = std::time::Instant::now();
                            while running(pid, start) {
                                if since.elapsed() > ENDING_WAIT {
                                    return Err(TargetError::Locked {
                                        target: target.to_path_buf(),
                                        lock: path,
                                        holder: format!(
                                            "process {pid} on this host, which said it was \
                                             ending {} s ago and still runs",
                                            ENDING_WAIT.as_secs()
                                        ),
                                    });
                                }
                                std::thread::sleep(std::time::Duration::from_millis(20));
                            }
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
        if let Ok(mut held) = HELD.lock() {
            held.retain(|p| p != &self.path);
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether process `pid` of this host still runs and is the one that took
/// the lock: a process started at `start` (clock ticks after boot, field 22
/// of `/proc/PID/stat`) when the lock says so, since a PID is reused once
/// its process has ended. A zombie has ended.
fn running(pid: i32, start: Option<u64>) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    let exists = rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    if !exists {
        return false;
    }
    match proc_stat(pid) {
        // Without /proc, a live PID is taken for the holder.
        None => true,
        Some((state, now)) => state != 'Z' && state != 'X' && start.is_none_or(|s| s == now),
    }
}

/// The start time of process `pid`, in clock ticks after boot.
fn start_time(pid: i32) -> Option<u64> {
    proc_stat(pid).map(|(_, start)| start)
}

/// A process's state letter and start time from `/proc/PID/stat` (fields 3
/// and 22; the command name, field 2, may hold spaces and parentheses, so
/// fields are counted after its last `)`).
fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    Some((state, fields.get(19)?.parse().ok()?))
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
