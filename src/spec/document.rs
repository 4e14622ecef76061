//! The spec as parsed TOML tables that keep their spans, from which each part
//! is deserialised by the code that owns it: `[run]` and `[parallel]` here,
//! a kind's `[sampler]` and per-state keys in its module, a second stage's
//! table in its. Every part is its own serde type with `deny_unknown_fields`,
//! so a key that belongs elsewhere is an error without any list naming it.
//!
//! Spans are offsets into the whole file, so an error in any part points at
//! file:line:column as a parse of the whole file would.

use std::ops::Range;

use serde::de::{DeserializeOwned, Visitor};
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::{SpecError, SpecSource};

/// A table of the spec whose keys are not yet deserialised.
#[derive(Debug, Clone)]
pub struct Table<'a> {
    span: Range<usize>,
    items: DeTable<'a>,
    /// How messages name it: `[sampler]`, `[[states]]`, `[transc]`.
    pub(crate) title: String,
    /// Keys of this table read apart ([`Table::split`]): still its keys,
    /// so messages list them and suggest them.
    apart: Vec<&'static str>,
}

impl<'a> Table<'a> {
    /// The whole document.
    pub(crate) fn parse(source: &'a SpecSource) -> Result<Self, SpecError> {
        let root = DeTable::parse(&source.text)
            .map_err(|e| source.error_at(e.span(), e.message().trim_end().to_string()))?;
        Ok(Self {
            span: root.span(),
            items: root.into_inner(),
            title: "the spec".into(),
            apart: Vec::new(),
        })
    }

    /// A value that must be a table (`title` names it in messages).
    pub(crate) fn from_value(
        value: Spanned<DeValue<'a>>,
        title: impl Into<String>,
        source: &SpecSource,
    ) -> Result<Self, SpecError> {
        let title = title.into();
        let span = value.span();
        match value.into_inner() {
            DeValue::Table(items) => Ok(Self {
                span,
                items,
                title,
                apart: Vec::new(),
            }),
            other => Err(source.error_at(
                Some(span),
                format!("{title} must be a table, found {}", other.type_str()),
            )),
        }
    }

    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// Removes a key, with its value unparsed.
    pub(crate) fn take(&mut self, key: &str) -> Option<Spanned<DeValue<'a>>> {
        self.items.remove(key)
    }

    /// Removes a key and deserialises its value.
    pub(crate) fn take_as<T: DeserializeOwned>(
        &mut self,
        key: &str,
        source: &SpecSource,
    ) -> Result<Option<Spanned<T>>, SpecError> {
        self.take(key)
            .map(|v| {
                let span = v.span();
                deserialize::<T>(v, source).map(|t| Spanned::new(span, t))
            })
            .transpose()
    }

    /// Moves `keys` (those written) into a table of their own, with this
    /// table's span and title: a shared part of the table (a state's name,
    /// its posterior) deserialised apart from the rest.
    pub(crate) fn split(&mut self, keys: &'static [&'static str]) -> Table<'a> {
        let mut part = Table {
            span: self.span.clone(),
            items: DeTable::new(),
            title: self.title.clone(),
            apart: Vec::new(),
        };
        self.apart.extend(keys);
        for key in keys {
            if let Some((k, v)) = self.items.remove_entry(*key) {
                part.items.insert(k, v);
            }
        }
        part
    }

    /// The keys left, with the span of each.
    pub fn keys(&self) -> impl Iterator<Item = (&str, Range<usize>)> {
        self.items
            .iter()
            .map(|(k, _)| (k.get_ref().as_ref(), k.span()))
    }

    /// Deserialises every key left into `T`. A key `T` does not have is
    /// named with the table it is in, where it is, and the nearest key `T`
    /// has; `foreign` may say more (for example which kind owns it).
    pub(crate) fn into<T: DeserializeOwned>(
        self,
        source: &SpecSource,
        foreign: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Spanned<T>, SpecError> {
        let span = self.span.clone();
        let unknown = unknown_key_paths(&self.items);
        let self_keys: Vec<Range<usize>> = self.items.iter().map(|(k, _)| k.span()).collect();
        let value = Spanned::new(span.clone(), DeValue::Table(self.items));
        match T::deserialize(ValueDeserializer::from(value)) {
            Ok(t) => Ok(Spanned::new(span, t)),
            Err(e) => {
                let message = e.message().trim_end().to_string();
                let Some((key, mut expected)) = parse_unknown_field(&message) else {
                    return Err(source.error_at(e.span(), message));
                };
                // Only for a key of this table itself: a nested table's
                // keys are its own.
                if e.span()
                    .is_some_and(|s| self_keys.iter().any(|k| k.start == s.start))
                {
                    expected.extend(self.apart.iter().map(|k| k.to_string()));
                }
                // The dotted path of the key inside this table, when the
                // error's span finds it (`stop.rhat`).
                // The error points at the key, or (inside a tagged table
                // such as `model`) at the table that holds it.
                let path = e
                    .span()
                    .and_then(|s| {
                        let named = |p: &str| p == key || p.ends_with(&format!(".{key}"));
                        let at_key = unknown.iter().find(|(_, at)| at.start == s.start);
                        let inside = unknown
                            .iter()
                            .find(|(p, at)| named(p) && s.start <= at.start && at.end <= s.end);
                        at_key.or(inside).map(|(p, _)| p.clone())
                    })
                    .unwrap_or_else(|| key.clone());
                let mut text = format!("`{path}` is not a key of {}", self.title);
                let list: Vec<String> = expected.iter().map(|k| format!("`{k}`")).collect();
                let keys = format!("its keys: {}", list.join(", "));
                match (foreign(&path), nearest(&key, &expected)) {
                    (Some(owner), _) if expected.is_empty() => {
                        text.push_str(&format!(" ({owner})"))
                    }
                    (Some(owner), _) => text.push_str(&format!(" ({owner}; {keys})")),
                    (None, Some(near)) => text.push_str(&format!("; did you mean `{near}`?")),
                    (None, None) if expected.is_empty() => {}
                    (None, None) => text.push_str(&format!(" ({keys})")),
                }
                Err(source.error_at(e.span(), text))
            }
        }
    }
}

/// Deserialises one value, with a located error.
pub(crate) fn deserialize<T: DeserializeOwned>(
    value: Spanned<DeValue<'_>>,
    source: &SpecSource,
) -> Result<T, SpecError> {
    T::deserialize(ValueDeserializer::from(value))
        .map_err(|e| source.error_at(e.span(), e.message().trim_end().to_string()))
}

/// Every key of a table and of the tables inside it, as a dotted path with
/// the span of the key, to name an unknown key by its full path.
fn unknown_key_paths(table: &DeTable<'_>) -> Vec<(String, Range<usize>)> {
    let mut out = Vec::new();
    fn walk(prefix: &str, t: &DeTable<'_>, out: &mut Vec<(String, Range<usize>)>) {
        for (k, v) in t.iter() {
            let path = if prefix.is_empty() {
                k.get_ref().to_string()
            } else {
                format!("{prefix}.{}", k.get_ref())
            };
            out.push((path.clone(), k.span()));
            if let DeValue::Table(inner) = v.get_ref() {
                walk(&path, inner, out);
            }
        }
    }
    walk("", table, &mut out);
    out
}

/// serde's "unknown field `x`, expected one of `a`, `b`" (or "expected `a`",
/// or "there are no fields"): the key and the keys expected.
fn parse_unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (key, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some((key.to_string(), expected))
}

/// The expected key nearest to a misspelt one, when it is near enough to be
/// a likely typo.
pub(crate) fn nearest<'k>(key: &str, expected: &'k [String]) -> Option<&'k str> {
    expected
        .iter()
        .map(|k| (strsim::damerau_levenshtein(key, k), k))
        .filter(|(d, k)| *d <= (k.len().max(key.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.as_str())
}

/// The keys a serde struct declares (its `FIELDS`), read by asking it to
/// deserialise itself from a deserializer that only records them. Lets the
/// registry tell which kind owns a key without a hand-kept list.
pub fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Fields(&'static [&'static str]);
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("fields recorded")
        }
    }
    impl std::error::Error for Stop {}
    impl serde::de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Stop
        }
    }
    impl<'de> serde::Deserializer<'de> for &mut Fields {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0 = fields;
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut fields = Fields(&[]);
    let _ = T::deserialize(&mut fields);
    fields.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        rhat: Option<f64>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        walkers: Option<usize>,
        stop: Option<Inner>,
    }

    fn sampler(text: &str) -> (SpecSource, Result<Spanned<Outer>, SpecError>) {
        let source = SpecSource::new("t.toml", text);
        let result = (|| {
            let mut root = Table::parse(&source)?;
            let value = root.take("sampler").expect("a [sampler]");
            Table::from_value(value, "[sampler]", &source)?.into::<Outer>(&source, &|_| None)
        })();
        (source, result)
    }

    #[test]
    fn a_part_deserialises_with_spans_into_the_whole_file() {
        let (_, r) = sampler("[run]\nseed = 1\n[sampler]\nwalkers = 8\n");
        let s = r.unwrap();
        assert_eq!(s.get_ref().walkers, Some(8));
        let (_, r) = sampler("[sampler]\nwalkers = \"x\"\n");
        let e = r.unwrap_err();
        assert_eq!((e.line, e.column), (2, 11), "{e}");
        assert!(e.message.contains("invalid type"), "{e}");
    }

    #[test]
    fn an_unknown_key_is_named_with_its_path_and_the_nearest_key() {
        let (_, r) = sampler("[sampler]\nwalker = 8\n");
        let e = r.unwrap_err();
        assert_eq!((e.line, e.column), (2, 1), "{e}");
        assert_eq!(
            e.message,
            "`walker` is not a key of [sampler]; did you mean `walkers`?"
        );
        let (_, r) = sampler("[sampler]\nwalkers = 8\n[sampler.stop]\ntau = 3.0\n");
        let e = r.unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        assert_eq!(
            e.message,
            "`stop.tau` is not a key of [sampler] (its keys: `rhat`)"
        );
    }

    #[test]
    fn fields_are_read_from_the_type() {
        assert_eq!(fields_of::<Outer>(), &["walkers", "stop"]);
        assert_eq!(fields_of::<Inner>(), &["rhat"]);
    }

    #[test]
    fn nearest_keys_are_typos_only() {
        let keys: Vec<String> = ["walkers", "steps", "burn"].map(String::from).to_vec();
        assert_eq!(nearest("walker", &keys), Some("walkers"));
        assert_eq!(nearest("stpes", &keys), Some("steps"));
        assert_eq!(nearest("particles", &keys), None);
    }
}
