//! Located spec errors: every message names file:line:column and shows the line.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::overrides::{self, LineOrigin, Origins, OverrideError};
use crate::limits::MAX_SPEC_BYTES;

/// The text of a run spec and where it came from, so that byte spans can be
/// turned into file:line:column messages.
#[derive(Debug, Clone)]
pub struct SpecSource {
    pub path: PathBuf,
    pub text: String,
    /// With `--set` overrides applied: where each line of `text` came from.
    origins: Option<Origins>,
}

impl SpecSource {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            text: text.into(),
            origins: None,
        }
    }

    /// The text with the `--set` overrides applied, whose errors are then
    /// located in the file or in the override that wrote the line.
    pub fn with_overrides(mut self, sets: &[String]) -> Result<Self, OverrideError> {
        let applied = overrides::apply(&self.text, sets)?;
        self.text = applied.text;
        self.origins = applied.origins;
        Ok(self)
    }

    /// Reads a spec file (`-`: standard input), of at most
    /// [`MAX_SPEC_BYTES`]; an unreadable file, one that is not a regular
    /// file (a device, a FIFO: they would never end), or one too large is a
    /// spec error at 1:1.
    pub fn read(path: &Path) -> Result<Self, SpecError> {
        use std::io::Read;
        let fail = |message: String| SpecError {
            path: path.display().to_string(),
            line: 1,
            column: 1,
            message,
            snippet: None,
            set: None,
        };
        let mut text = String::new();
        let read =
            if path == Path::new("-") {
                std::io::stdin()
                    .take(MAX_SPEC_BYTES + 1)
                    .read_to_string(&mut text)
            } else {
                match std::fs::metadata(path) {
                    Ok(m) if !m.is_file() => return Err(fail(
                        "cannot read the spec: not a regular file (a directory, device or FIFO)"
                            .into(),
                    )),
                    _ => std::fs::File::open(path)
                        .and_then(|f| f.take(MAX_SPEC_BYTES + 1).read_to_string(&mut text)),
                }
            };
        match read {
            Err(e) => Err(fail(format!("cannot read the spec: {e}"))),
            Ok(n) if n as u64 > MAX_SPEC_BYTES => Err(fail(format!(
                "the spec is larger than {} MiB: a run spec is a few lines of TOML (large data \
                 belong in files its models read)",
                MAX_SPEC_BYTES >> 20
            ))),
            Ok(_) => Ok(Self::new(path, text)),
        }
    }

    /// An error at a byte span of the text (the start of the span is reported).
    pub fn error_at(&self, span: Option<Range<usize>>, message: impl Into<String>) -> SpecError {
        let start = span.map_or(0, |s| s.start).min(self.text.len());
        let line_start = self.text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |i| start + i);
        let line = self.text[..start].matches('\n').count() + 1;
        let column = self.text[line_start..start].chars().count() + 1;
        let text = self.text[line_start..line_end].trim_end_matches('\r');
        let mut error = SpecError {
            path: self.path.display().to_string(),
            line,
            column,
            message: message.into(),
            snippet: (!text.is_empty()).then(|| text.to_string()),
            set: None,
        };
        match self.origins.as_ref().map(|o| (o, o.of_line(line - 1))) {
            None => {}
            // The same line of the file: only its number may differ.
            Some((_, LineOrigin::File(n))) => error.line = n + 1,
            Some((origins, LineOrigin::Set(n))) => {
                let set = &origins.sets[n];
                error.line = 1;
                error.column = Origins::column_in_set(set, text, column - 1) + 1;
                error.snippet = None;
                error.set = Some(set.clone());
            }
        }
        error
    }
}

/// A bad run spec. Displayed as `file:line:column: message` followed by the
/// offending line and a caret, the way compilers show errors; an error in a
/// `--set key=value` as `--set key=value: message` with the caret in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub snippet: Option<String>,
    /// The override the error is in (`column` is then a character of it).
    pub set: Option<String>,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(set) = &self.set {
            let shown = format!("--set {set}");
            let (shown, caret) = clip(&shown, self.column.saturating_sub(1) + "--set ".len());
            return write!(
                f,
                "{shown_set}: {}\n  |\n  | {shown}\n  | {}^",
                self.message,
                " ".repeat(caret),
                shown_set = format_args!("--set {set}"),
            );
        }
        write!(
            f,
            "{}:{}:{}: {}",
            self.path, self.line, self.column, self.message
        )?;
        if let Some(text) = &self.snippet {
            let gutter = " ".repeat(self.line.to_string().len());
            let (shown, caret) = clip(text, self.column.saturating_sub(1));
            let pad: String = shown
                .chars()
                .take(caret)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(
                f,
                "\n{gutter} |\n{} | {shown}\n{gutter} | {pad}^",
                self.line
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecError {}

/// Characters of a long line shown around the caret: a line of megabytes
/// (a huge array) is framed by a window of it, not echoed whole.
const FRAME_CHARS: usize = 160;

/// The part of `line` to show around character `column`, and the caret's
/// place in it.
fn clip(line: &str, column: usize) -> (String, usize) {
    if line.len() <= FRAME_CHARS {
        return (line.to_string(), column);
    }
    let first = column.saturating_sub(FRAME_CHARS / 2);
    let start = line
        .char_indices()
        .nth(first)
        .map_or(line.len(), |(b, _)| b);
    let end = line[start..]
        .char_indices()
        .nth(FRAME_CHARS)
        .map_or(line.len(), |(b, _)| start + b);
    let (before, after) = (
        if start > 0 { "…" } else { "" },
        if end < line.len() { "…" } else { "" },
    );
    (
        format!("{before}{}{after}", &line[start..end]),
        column - first + before.chars().count(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_line_is_framed_around_the_caret() {
        let line: String = (0..1000)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let (shown, caret) = clip(&line, 500);
        assert_eq!(shown.chars().count(), FRAME_CHARS + 2);
        assert!(shown.starts_with('…') && shown.ends_with('…'));
        assert_eq!(shown.chars().nth(caret), line.chars().nth(500));
        assert_eq!(clip("short", 3), ("short".to_string(), 3));
    }

    #[test]
    fn spans_become_line_and_column() {
        let src = SpecSource::new("a.toml", "[run]\nseed = -1\n");
        let e = src.error_at(Some(13..15), "expected a non-negative integer");
        assert_eq!((e.line, e.column), (2, 8));
        let shown = e.to_string();
        assert!(shown.starts_with("a.toml:2:8: expected"), "{shown}");
        assert!(shown.contains("2 | seed = -1"), "{shown}");
    }

    #[test]
    fn missing_span_points_at_start() {
        let src = SpecSource::new("a.toml", "");
        let e = src.error_at(None, "empty");
        assert_eq!((e.line, e.column), (1, 1));
        assert_eq!(e.to_string(), "a.toml:1:1: empty");
    }

    #[test]
    fn an_error_is_located_in_the_file_or_in_the_override() {
        let text = "[run]\nseed = 1\n\n[sampler]\nsteps = 10\n\n[[states]]\nname = \"a\"\n";
        let sets = ["sampler.walkers=7".to_string(), "foo.bar=1".to_string()];
        let src = SpecSource::new("a.toml", text)
            .with_overrides(&sets)
            .unwrap();
        // A line of the file after the inserted key: its own number.
        let at = src.text.find("name").unwrap();
        let e = src.error_at(Some(at..at + 4), "bad name");
        assert_eq!(
            (e.line, e.column, e.set.as_deref()),
            (8, 1, None),
            "{}",
            src.text
        );
        assert!(e.to_string().starts_with("a.toml:8:1: bad name"), "{e}");
        // The inserted value: in its override.
        let at = src.text.find('7').unwrap();
        let e = src.error_at(Some(at..at + 1), "too few");
        assert_eq!(e.set.as_deref(), Some("sampler.walkers=7"));
        let caret = format!("  | {}^", " ".repeat("--set sampler.walkers=".len()));
        assert_eq!(
            e.to_string(),
            format!("--set sampler.walkers=7: too few\n  |\n  | --set sampler.walkers=7\n{caret}")
        );
        // An appended table: at its key.
        let at = src.text.find("foo").unwrap();
        let e = src.error_at(Some(at..at + 3), "not a table");
        assert_eq!((e.set.as_deref(), e.column), (Some("foo.bar=1"), 1));
    }
}
