//! The commands that help a user write a spec: `sampo schema` (and the
//! committed reference it generates), `sampo new` and `sampo man`.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;

/// docs/spec-reference.md and docs/sampo.schema.json are what the binary
/// generates now: a change to the spec's types must regenerate them
/// (`sampo schema --format markdown > docs/spec-reference.md` and
/// `sampo schema > docs/sampo.schema.json`).
#[test]
fn the_committed_reference_and_schema_are_current() {
    let sb = Sandbox::new();
    for (args, file) in [
        (
            &["schema", "--format", "markdown"][..],
            "docs/spec-reference.md",
        ),
        (&["schema"][..], "docs/sampo.schema.json"),
    ] {
        let out = sb.sampo(args);
        assert_ok(&out);
        let committed = std::fs::read_to_string(repo().join(file)).expect(file);
        assert!(
            stdout(&out) == committed,
            "{file} is stale: regenerate it with `sampo {}`",
            args.join(" ")
        );
    }
}

/// Every link within the generated reference (`[type](#anchor)`) lands on
/// one of its headings, with the anchor GitHub gives a heading.
#[test]
fn the_reference_links_land_on_its_headings() {
    let sb = Sandbox::new();
    let out = sb.sampo(&["schema", "--format", "markdown"]);
    assert_ok(&out);
    let text = stdout(&out);
    let anchors: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|h| {
            h.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect()
        })
        .collect();
    let links: Vec<&str> = text
        .match_indices("](#")
        .map(|(at, m)| {
            let rest = &text[at + m.len()..];
            &rest[..rest.find(')').expect("a closed link")]
        })
        .collect();
    assert!(links.len() > 10, "the reference links its types");
    let broken: Vec<&&str> = links
        .iter()
        .filter(|l| !anchors.iter().any(|a| a == *l))
        .collect();
    assert!(broken.is_empty(), "links to no heading: {broken:?}");
}

/// `sampo check -` on `text`.
fn check_stdin(sb: &Sandbox, text: &str) -> std::process::Output {
    let mut child = Command::new(sampo_bin())
        .args(["check", "-"])
        .current_dir(sb.path("."))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sampo starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("spec written");
    child.wait_with_output().expect("sampo ends")
}

/// Every starter spec `sampo new` writes passes `sampo check` unedited, and
/// runs; a kind that does not exist is a usage error naming the kinds.
#[test]
fn new_writes_specs_that_check_accepts() {
    let sb = Sandbox::new();
    for args in [
        &["new", "ensemble"][..],
        &["new", "chains", "--states", "3"],
        &["new", "smc"],
        &["new", "batch"],
        &["new", "paths", "--states", "2"],
        &["new", "ensemble", "--stage", "transc"],
    ] {
        let out = sb.sampo(args);
        assert_ok(&out);
        let text = stdout(&out);
        assert!(text.starts_with("# "), "{args:?}: a commented header");
        let checked = check_stdin(&sb, &text);
        assert!(
            checked.status.success(),
            "{args:?}: check refused the starter:\n{}\n{text}",
            stderr(&checked)
        );
    }
    let spec = sb.write("starter.toml", &stdout(&sb.sampo(&["new", "chains"])));
    let out = sb.sampo(&["run", spec.to_str().unwrap(), "-q"]);
    assert_ok(&out);
    assert!(sb.path("chains.h5").exists());
    for bad in [
        &["new", "mcmc"][..],
        &["new", "chains", "--stage", "nested"],
    ] {
        let out = sb.sampo(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(stderr(&out).contains("expected one of"), "{}", stderr(&out));
    }
}

/// `sampo man` renders the page of sampo and of each command, from the
/// same definitions as `--help`.
#[test]
fn man_pages_render() {
    let sb = Sandbox::new();
    let out = sb.sampo(&["man"]);
    assert_ok(&out);
    let page = stdout(&out);
    assert!(
        page.starts_with(".ie") || page.contains(".TH sampo"),
        "{page}"
    );
    for command in ["run", "check", "summary", "new", "schema"] {
        assert!(page.contains(command), "`{command}` missing from sampo.1");
    }
    let out = sb.sampo(&["man", "run"]);
    assert_ok(&out);
    let page = stdout(&out);
    assert!(page.contains(".TH sampo-run"), "{page}");
    assert!(
        page.contains("resume") && page.contains("walltime"),
        "{page}"
    );
    let out = sb.sampo(&["man", "nope"]);
    assert_eq!(out.status.code(), Some(2));
}

/// The commands `sampo --help` lists (the first word of each entry under
/// "Commands:"), without `help`.
fn commands(sb: &Sandbox) -> Vec<String> {
    let help = stdout(&sb.sampo(&["--help"]));
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// scripts/install-man.sh (which scripts/quickstart.sh runs) writes
/// `sampo man` as sampo.1 and each command's page as sampo-COMMAND.1, and
/// `man -l` renders every one without a warning, with its NAME and SYNOPSIS;
/// a directory it cannot write is a warning, not a failure.
#[test]
fn the_set_up_installs_man_pages_that_man_renders() {
    let sb = Sandbox::new();
    let dir = sb.path("man/man1");
    let o = Command::new("bash")
        .arg(repo().join("scripts/install-man.sh"))
        .arg(sampo_bin())
        .arg(&dir)
        .output()
        .expect("bash runs");
    assert_ok(&o);
    let commands = commands(&sb);
    assert!(commands.len() >= 6, "{commands:?}");
    let pages = std::iter::once(("sampo.1".to_string(), None))
        .chain(commands.iter().map(|c| (format!("sampo-{c}.1"), Some(c))));
    for (file, command) in pages {
        let path = dir.join(&file);
        let installed = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        let mut args = vec!["man"];
        args.extend(command.map(String::as_str));
        assert_eq!(installed, stdout(&sb.sampo(&args)), "{file}");
        let shown = Command::new("man")
            .arg("-l")
            .arg(&path)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "80")
            .output()
            .expect("man runs (man-db: scripts/install-deps.sh)");
        assert_ok(&shown);
        assert!(
            shown.stderr.is_empty(),
            "{file}: man warns:\n{}",
            stderr(&shown)
        );
        let text = stdout(&shown);
        let title = file.trim_end_matches(".1");
        assert!(text.starts_with(&format!("{title}(1)")), "{file}:\n{text}");
        for section in ["NAME", "SYNOPSIS"] {
            assert!(
                text.lines().any(|l| l == section),
                "{file}: no {section} section:\n{text}"
            );
        }
        let name = text.lines().skip_while(|l| *l != "NAME").nth(1);
        assert!(
            name.is_some_and(|l| l.trim_start().starts_with(&format!("{title} "))),
            "{file}: NAME:\n{text}"
        );
    }
    let o = Command::new("bash")
        .arg(repo().join("scripts/install-man.sh"))
        .arg(sampo_bin())
        .arg("/proc/sampo-man/man1")
        .output()
        .expect("bash runs");
    assert_ok(&o);
    assert!(stderr(&o).contains("cannot write"), "{}", stderr(&o));
}
