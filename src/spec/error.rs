//! Located spec errors: every message names file:line:column and shows the line.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// The text of a run spec and where it came from, so that byte spans can be
/// turned into file:line:column messages.
#[derive(Debug, Clone)]
pub struct SpecSource {
    pub path: PathBuf,
    pub text: String,
}

impl SpecSource {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            text: text.into(),
        }
    }

    /// Reads a spec file (`-`: standard input); an unreadable file is a
    /// spec error at 1:1.
    pub fn read(path: &Path) -> Result<Self, SpecError> {
        let text = if path == Path::new("-") {
            std::io::read_to_string(std::io::stdin())
        } else {
            std::fs::read_to_string(path)
        };
        text.map(|text| Self::new(path, text))
            .map_err(|e| SpecError {
                path: path.display().to_string(),
                line: 1,
                column: 1,
                message: format!("cannot read the spec: {e}"),
                snippet: None,
            })
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
        SpecError {
            path: self.path.display().to_string(),
            line,
            column,
            message: message.into(),
            snippet: (!text.is_empty()).then(|| text.to_string()),
        }
    }
}

/// A bad run spec. Displayed as `file:line:column: message` followed by the
/// offending line and a caret, the way compilers show errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub snippet: Option<String>,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path, self.line, self.column, self.message
        )?;
        if let Some(text) = &self.snippet {
            let gutter = " ".repeat(self.line.to_string().len());
            let pad: String = text
                .chars()
                .take(self.column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(f, "\n{gutter} |\n{} | {text}\n{gutter} | {pad}^", self.line)?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecError {}

#[cfg(test)]
mod tests {
    use super::*;

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
}
