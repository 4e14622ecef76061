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
