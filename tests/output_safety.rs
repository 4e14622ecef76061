//! An output no second run can corrupt and no `--force` can misuse: the
//! lock beside the output, the kinds of paths refused, and `check` refusing
//! what `run` would.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// About 6 s of work on one thread.
const SLOW: &str = r#"
[run]
name = "slow"
seed = 5
[parallel]
threads = 1
[sampler]
walkers = 16
steps = 1500
[[states]]
name = "g"
model = { kind = "gaussian", mean = [0.0, 1.0], cov = [[1.0, 0.5], [0.5, 2.0]] }
prior = { kind = "uniform", low = [-10.0, -10.0], high = [10.0, 10.0] }
cost_us = 250
"#;

fn hostname() -> String {
    let out = Command::new("hostname").output().expect("hostname runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_second_run_on_a_live_output_is_refused_even_without_hdf5_locking() {
    let sb = Sandbox::new();
    let spec = sb.write("slow.toml", SLOW);
    let mut first = Command::new(sampo_bin())
        .current_dir(sb.dir.path())
        .args(["run", spec.to_str().unwrap(), "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !sb.path("slow.h5.lock").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no lock appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for env in [vec![], vec![("HDF5_USE_FILE_LOCKING", "FALSE")]] {
        for force in [false, true] {
            let mut args = vec!["run", "slow.toml", "-q"];
            if force {
                args.push("--force");
            }
            let o = sb.sampo_env(&args, &env);
            assert_eq!(
                o.status.code(),
                Some(2),
                "{env:?} force={force}: {}",
                stderr(&o)
            );
            assert!(
                stderr(&o).contains("another sampo run is writing slow.h5"),
                "{}",
                stderr(&o)
            );
            let o = sb.sampo_env(&["check", "slow.toml"], &env);
            assert_eq!(o.status.code(), Some(2), "check: {}", stderr(&o));
        }
    }
    let status = first.wait().unwrap();
    assert!(status.success());
    // The first run's file is whole.
    assert_eq!(
        read_str_attr(&sb.path("slow.h5"), "/", "status"),
        "complete"
    );
    let (shape, chain) = read_f64(&sb.path("slow.h5"), "states/g/chain");
    assert_eq!(shape, vec![1500, 16, 2]);
    assert!(chain.iter().all(|v| v.is_finite()));
    assert!(
        !sb.path("slow.h5.lock").exists(),
        "the lock is gone with its run"
    );
}

#[test]
fn a_stale_lock_of_a_dead_process_is_taken_over() {
    let sb = Sandbox::new();
    let spec = sb.write(
        "s.toml",
        &SLOW
            .replace("cost_us = 250", "")
            .replace("name = \"slow\"", "name = \"s\""),
    );
    // A PID that cannot be running: above the kernel's maximum.
    sb.write("s.h5.lock", &format!("{} 2147483646\n", hostname()));
    let o = sb.sampo(&["run", spec.to_str().unwrap(), "-q"]);
    assert_ok(&o);
    assert!(
        stderr(&o).contains("removing the stale lock"),
        "{}",
        stderr(&o)
    );
    assert!(sb.path("s.h5").exists() && !sb.path("s.h5.lock").exists());
    // A lock of another host cannot be checked: refused, naming it.
    std::fs::remove_file(sb.path("s.h5")).unwrap();
    sb.write("s.h5.lock", "some-other-node 1234\n");
    let o = sb.sampo(&["run", spec.to_str().unwrap(), "-q"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("process 1234 on some-other-node"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn force_replaces_only_sampo_outputs() {
    let sb = Sandbox::new();
    let spec = sb.write(
        "q.toml",
        &SLOW
            .replace("cost_us = 250", "")
            .replace("name = \"slow\"", "name = \"q\""),
    );
    let text = std::fs::read_to_string(&spec).unwrap();
    std::fs::create_dir(sb.path("dir.h5")).unwrap();
    std::os::unix::fs::symlink(sb.path("nowhere.h5"), sb.path("dangling.h5")).unwrap();
    std::os::unix::fs::symlink(sb.path("real.h5"), sb.path("link.h5")).unwrap();
    sb.write("notes.h5", "my notes\n");
    let cases: [(&str, &str); 6] = [
        ("/dev/null", "is a device, socket or pipe"),
        ("q.toml", "is not a sampo output"),
        ("dir.h5", "is a directory"),
        ("dangling.h5", "is a symbolic link"),
        ("link.h5", "is a symbolic link"),
        ("notes.h5", "is not a sampo output"),
    ];
    for (output, message) in cases {
        for command in ["run", "check"] {
            let mut args = vec![command, "q.toml", "-o", output];
            if command == "run" {
                args.push("--force");
            }
            let o = sb.sampo(&args);
            assert_eq!(
                o.status.code(),
                Some(2),
                "{output} {command}: {}",
                stderr(&o)
            );
            assert!(stderr(&o).contains(message), "{output}: {}", stderr(&o));
        }
    }
    assert_eq!(
        std::fs::read_to_string(&spec).unwrap(),
        text,
        "the spec is untouched"
    );
    assert_eq!(
        std::fs::read_to_string(sb.path("notes.h5")).unwrap(),
        "my notes\n"
    );
    assert!(!sb.path("nowhere.h5").exists() && !sb.path("real.h5").exists());
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
    // A sampo output is replaced with --force, and only then.
    assert_ok(&sb.sampo(&["run", "q.toml", "-q"]));
    let o = sb.sampo(&["run", "q.toml", "-q"]);
    assert_eq!(o.status.code(), Some(2));
    assert_ok(&sb.sampo(&["run", "q.toml", "-q", "--force"]));
}

/// A lock that no run wrote (a directory, a dangling link, a FIFO, other
/// contents) is named with what it is and how to clear it, by `check` and
/// `run` alike, at once; a lock whose PID now belongs to a process started
/// after the lock's holder is stale.
#[test]
fn odd_lock_files_say_what_they_are_and_how_to_clear_them() {
    let sb = Sandbox::new();
    sb.write(
        "s.toml",
        &SLOW
            .replace("cost_us = 250", "")
            .replace("name = \"slow\"", "name = \"s\""),
    );
    let lock = sb.path("s.h5.lock");
    let clear = |p: &std::path::Path| {
        let _ = std::fs::remove_dir(p);
        let _ = std::fs::remove_file(p);
    };
    let cases: [(&str, &dyn Fn(), &str); 4] = [
        (
            "a directory",
            &|| std::fs::create_dir(&lock).unwrap(),
            "(rmdir ",
        ),
        (
            "a file holding \"hello world\" (sampo writes `host pid start`)",
            &|| std::fs::write(&lock, "hello world\n").unwrap(),
            "(rm ",
        ),
        (
            "a symbolic link to gone, which does not exist",
            &|| std::os::unix::fs::symlink("gone", &lock).unwrap(),
            "(rm ",
        ),
        (
            "a device, FIFO or socket",
            &|| {
                assert!(Command::new("mkfifo")
                    .arg(&lock)
                    .status()
                    .unwrap()
                    .success());
            },
            "(rm ",
        ),
    ];
    for (what, make, remedy) in cases {
        clear(&lock);
        make();
        for command in ["check", "run"] {
            let o = sb.sampo(&[command, "s.toml"]);
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{what} {command}: {err}");
            assert!(
                err.contains(&format!("s.h5.lock is {what}, not a lock file sampo wrote"))
                    && err.contains(remedy),
                "{what} {command}: {err}"
            );
        }
        assert!(!sb.path("s.h5").exists() && !sb.path("s.h5.partial").exists());
    }
    clear(&lock);
    // A live process that is not the holder: its start time differs.
    let mut other = Command::new("sleep").arg("60").spawn().unwrap();
    let start = start_ticks(other.id());
    sb.write(
        "s.h5.lock",
        &format!("{} {} {}\n", hostname(), other.id(), start + 1),
    );
    let o = sb.sampo(&["run", "s.toml", "-q"]);
    assert_ok(&o);
    assert!(
        stderr(&o).contains("removing the stale lock"),
        "{}",
        stderr(&o)
    );
    // The same PID with its own start time is the holder: refused.
    std::fs::remove_file(sb.path("s.h5")).unwrap();
    sb.write(
        "s.h5.lock",
        &format!("{} {} {start}\n", hostname(), other.id()),
    );
    let o = sb.sampo(&["run", "s.toml", "-q"]);
    other.kill().unwrap();
    let _ = other.wait();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("process {} on", other.id())),
        "{}",
        stderr(&o)
    );
    // A holder that said it is ending (a run stopping after a failure or a
    // signal, perhaps after its launcher returned) is waited for: the run
    // starts once it has ended, here 1.5 s later.
    let mut ending = Command::new("sleep").arg("1.5").spawn().unwrap();
    let start = start_ticks(ending.id());
    sb.write(
        "s.h5.lock",
        &format!("{} {} {start} ending\n", hostname(), ending.id()),
    );
    // `check` says what `run` will do: go ahead.
    assert_ok(&sb.sampo(&["check", "s.toml"]));
    let reaper = std::thread::spawn(move || ending.wait());
    let since = Instant::now();
    let o = sb.sampo(&["run", "s.toml", "-q"]);
    assert_ok(&o);
    assert!(
        since.elapsed() > Duration::from_millis(500),
        "it did not wait"
    );
    assert!(sb.path("s.h5").exists() && !sb.path("s.h5.lock").exists());
    let _ = reaper.join();
}

/// The start time of process `pid` in clock ticks after boot, as a lock
/// records it (field 22 of /proc/PID/stat, counted after the command name).
fn start_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn outputs_that_cannot_be_created_are_found_by_check_and_run_alike() {
    let sb = Sandbox::new();
    sb.write(
        "q.toml",
        &SLOW
            .replace("cost_us = 250", "")
            .replace("name = \"slow\"", "name = \"q\""),
    );
    for command in ["check", "run"] {
        let o = sb.sampo(&[command, "q.toml", "-o", "missing/dir/out.h5"]);
        assert_eq!(o.status.code(), Some(2), "{command}: {}", stderr(&o));
        assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
    }
    // A directory path names no file; a file is no directory.
    sb.write("afile", "");
    for (output, message) in [
        (
            "newdir/",
            "the output newdir/ is a directory path (it ends with /): give a file name",
        ),
        (
            "afile/x.h5",
            "the output's directory afile is a file, not a directory",
        ),
    ] {
        for command in ["check", "run"] {
            let o = sb.sampo(&[command, "q.toml", "-o", output]);
            assert_eq!(o.status.code(), Some(2), "{command}: {}", stderr(&o));
            assert!(stderr(&o).contains(message), "{command}: {}", stderr(&o));
        }
    }
    assert!(!sb.path("newdir").exists());
    // A name that would put the default output elsewhere is a spec error.
    let outside = sb.dir.path().parent().unwrap().join("x.h5");
    let was_there = outside.exists();
    let bad = SLOW.replace("name = \"slow\"", "name = \"../x\"");
    sb.write("n.toml", &bad);
    for command in ["check", "run"] {
        let o = sb.sampo(&[command, "n.toml"]);
        assert_eq!(o.status.code(), Some(2), "{command}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("n.toml:3:8: run.name must be a plain name"),
            "{}",
            stderr(&o)
        );
    }
    assert_eq!(outside.exists(), was_there);
}

/// A small tmpfs, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: std::path::PathBuf, size: &str) -> Option<Self> {
        std::fs::create_dir_all(&dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Self(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_fails_in_one_line_and_leaves_a_readable_file() {
    let sb = Sandbox::new();
    let Some(disk) = Tmpfs::mount(sb.path("small"), "8m") else {
        eprintln!("skipped: this machine does not let the test mount a tmpfs (needs root)");
        return;
    };
    // About 10 MB of chain on an 8 MB filesystem.
    std::fs::write(
        disk.0.join("f.toml"),
        SLOW.replace("cost_us = 250", "")
            .replace("name = \"slow\"", "name = \"f\"")
            .replace("walkers = 16\nsteps = 1500", "walkers = 32\nsteps = 20000"),
    )
    .unwrap();
    let o = Command::new(sampo_bin())
        .current_dir(&disk.0)
        .args(["run", "f.toml", "-q"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    let line = err.lines().find(|l| l.starts_with("error: ")).unwrap();
    assert!(
        line.contains("no space left on device") && line.contains("f.h5.partial"),
        "{err}"
    );
    assert!(!err.contains("errno"), "no HDF5 dump: {err}");
    let partial = disk.0.join("f.h5.partial");
    let status = read_str_attr(&partial, "/", "status");
    assert!(
        status.starts_with("failed: ") && status.contains("no space left on device"),
        "{status}"
    );
    // The extent is the rows that are in the file, and every one of them reads back.
    let it = read_i64_attr(&partial, "states/g", "iteration") as usize;
    assert!(it > 0);
    let (_, chain) = read_f64(&partial, "states/g/chain");
    let (_, log_prob) = read_f64(&partial, "states/g/log_prob");
    assert!(chain.len() >= it * 32 * 2 && log_prob.len() >= it * 32);
    assert!(chain[..it * 32 * 2]
        .iter()
        .all(|v| v.is_finite() && *v != 0.0));
    assert!(log_prob[..it * 32].iter().all(|v| v.is_finite()));
}

/// A `.partial` HDF5 cannot open (empty, cut short, not HDF5) is no dead
/// end: a plain run and `check` say to pass --force, `--resume` and
/// `summary` refuse it without changing a byte and say the same, and
/// `--force` replaces it.
#[test]
fn a_partial_that_cannot_be_opened_is_replaced_with_force() {
    let sb = Sandbox::new();
    sb.write(
        "q.toml",
        &SLOW
            .replace("cost_us = 250", "")
            .replace("steps = 1500", "steps = 50")
            .replace("name = \"slow\"", "name = \"q\""),
    );
    assert_ok(&sb.sampo(&["run", "q.toml", "-q", "-o", "whole.h5"]));
    let whole = std::fs::read(sb.path("whole.h5")).unwrap();
    let cases: [(&str, Vec<u8>); 3] = [
        ("empty", Vec::new()),
        ("cut", whole[..whole.len() / 3].to_vec()),
        ("garbage", b"not hdf5 at all\n".to_vec()),
    ];
    for (what, bytes) in cases {
        let partial = sb.path("q.h5.partial");
        std::fs::write(&partial, &bytes).unwrap();
        let o = sb.sampo(&["run", "q.toml", "-q"]);
        assert_eq!(o.status.code(), Some(2), "{what}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("cannot be opened") && stderr(&o).contains("--force"),
            "{what}: {}",
            stderr(&o)
        );
        let o = sb.sampo(&["check", "q.toml"]);
        assert!(stdout(&o).contains("--force"), "{what}: {}", stdout(&o));
        for args in [
            &["run", "q.toml", "-q", "--resume"][..],
            &["summary", "q.h5.partial"][..],
        ] {
            let o = sb.sampo(args);
            assert_eq!(o.status.code(), Some(2), "{what} {args:?}: {}", stderr(&o));
            assert!(
                stderr(&o).contains("--force"),
                "{what} {args:?}: {}",
                stderr(&o)
            );
            assert_eq!(
                std::fs::read(&partial).unwrap(),
                bytes,
                "{what} {args:?}: the file is untouched"
            );
        }
        assert_ok(&sb.sampo(&["run", "q.toml", "-q", "--force"]));
        assert_eq!(read_str_attr(&sb.path("q.h5"), "/", "status"), "complete");
        assert!(!partial.exists());
        std::fs::remove_file(sb.path("q.h5")).unwrap();
    }
    // An HDF5 file of another program stays refused, even with --force.
    let partial = sb.path("q.h5.partial");
    drop(hdf5::File::create(&partial).unwrap());
    let o = sb.sampo(&["run", "q.toml", "-q", "--force"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a sampo output"), "{}", stderr(&o));
}

/// Chunks follow the data: many short chains (a chunk per chain once) or
/// a few long ones make a file close to the size of their samples.
#[test]
fn chain_files_are_about_the_size_of_their_samples() {
    let sb = Sandbox::new();
    sb.write(
        "c.toml",
        r#"
[run]
seed = 3
[sampler]
kind = "chains"
chains = CHAINS
steps = STEPS
burn = 1
[[states]]
name = "g"
params = ["x", "y"]
model = { kind = "gaussian", mean = [1.0, -1.0], cov = [[1.0, 0.8], [0.8, 2.0]] }
prior = { kind = "uniform", low = [-10.0, -10.0], high = [10.0, 10.0] }
"#,
    );
    for (chains, steps) in [(300, 2), (20, 3000)] {
        let text = std::fs::read_to_string(sb.path("c.toml"))
            .unwrap()
            .replace("CHAINS", &chains.to_string())
            .replace("STEPS", &steps.to_string());
        sb.write("d.toml", &text);
        assert_ok(&sb.sampo(&["run", "d.toml", "-q", "--force", "-o", "d.h5"]));
        let size = std::fs::metadata(sb.path("d.h5")).unwrap().len();
        // chain and log_prob: (2 + 1) floats per chain and step.
        let samples = (chains * steps * 3 * 8) as u64;
        assert!(
            size < 2 * samples + (1 << 20),
            "{chains} chains × {steps} steps: {size} bytes for {samples} bytes of samples"
        );
    }
}

/// `check`'s size is an upper bound of the file `run` writes, and within
/// twice its size, for every kind at a few sizes (SMC's assumes a typical
/// number of temperatures); an estimate over the free space is a warning.
#[test]
fn the_size_estimate_bounds_every_kind_within_twice() {
    let sb = Sandbox::new();
    let ensemble = sb.write(
        "e.toml",
        r#"
[run]
seed = 3
[sampler]
walkers = 8
steps = 20
[[states]]
name = "g"
params = ["x", "y"]
model = { kind = "gaussian", mean = [1.0, -1.0], cov = [[1.0, 0.8], [0.8, 2.0]] }
prior = { kind = "uniform", low = [-10.0, -10.0], high = [10.0, 10.0] }
"#,
    );
    let chains = sb.write(
        "c.toml",
        &std::fs::read_to_string(&ensemble).unwrap().replace(
            "walkers = 8\nsteps = 20",
            "kind = \"chains\"\nchains = 4\nsteps = 20\nburn = 1",
        ),
    );
    let config = |name: &str| repo().join("configs").join(name).display().to_string();
    let (e, c) = (ensemble.display().to_string(), chains.display().to_string());
    let cases: Vec<(String, Vec<&str>)> = vec![
        (e.clone(), vec![]),
        (e.clone(), vec!["sampler.walkers=64", "sampler.steps=3000"]),
        (
            e,
            vec![
                "sampler.walkers=16",
                "sampler.steps=200",
                "run.replicates=3",
            ],
        ),
        (c.clone(), vec![]),
        (c.clone(), vec!["sampler.chains=1000", "sampler.steps=2"]),
        (c, vec!["sampler.chains=20", "sampler.steps=3000"]),
        (config("batch.toml"), vec!["sampler.items=1000"]),
        (config("batch.toml"), vec![]),
        (
            config("paths.toml"),
            vec!["sampler.paths=1000", "sampler.steps=10"],
        ),
        (config("paths.toml"), vec![]),
        (config("smc.toml"), vec![]),
        (
            config("transc.toml"),
            vec!["sampler.steps=300", "transc.steps=500"],
        ),
        (
            config("transc.toml"),
            vec![
                "sampler.steps=300",
                "transc.steps=500",
                "transc.walkers=2000",
            ],
        ),
    ];
    for (spec, sets) in cases {
        let mut args = vec![spec.as_str(), "-o", "size.h5"];
        for s in &sets {
            args.extend(["--set", s]);
        }
        let o = sb.sampo(&[&["check"][..], &args].concat());
        assert_ok(&o);
        let text = stdout(&o);
        let line = text
            .lines()
            .find(|l| l.starts_with("size "))
            .unwrap_or_else(|| panic!("no size in:\n{text}"));
        let estimate: u64 = line
            .split('(')
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{line}"));
        assert_ok(&sb.sampo(&[&["run", "-q", "--force"][..], &args].concat()));
        let size = std::fs::metadata(sb.path("size.h5")).unwrap().len();
        assert!(
            size <= estimate && estimate <= 2 * size,
            "{spec} {sets:?}: {size} bytes written, {estimate} estimated"
        );
    }
    let o = sb.sampo(&[
        "check",
        chains.to_str().unwrap(),
        "--set",
        "sampler.chains=100000",
        "--set",
        "sampler.steps=100000000",
    ]);
    assert_ok(&o);
    assert!(
        stdout(&o).contains("more than the") && stdout(&o).contains("free on its filesystem"),
        "{}",
        stdout(&o)
    );
}
