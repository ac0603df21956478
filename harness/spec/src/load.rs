//! Reading a TOML file and the chain of files it `extends`, merging them, and deserializing the
//! result into raw types while keeping every span tied to the file it came from.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diagnostic::{Diagnostic, Diagnostics, Location, SourceMap, did_you_mean};

/// A raw document together with the sources its spans point into.
pub(crate) struct Loaded<T> {
    pub raw: T,
    pub sources: SourceMap,
    /// SHA-256 over the bytes of every file read, most-derived first.
    pub sha256: String,
}

impl<T> Loaded<T> {
    pub(crate) fn locate(&self, span: &Range<usize>) -> Option<Location> {
        self.sources.locate(span.clone())
    }

    /// The directory of the file a span lies in: relative paths resolve against it.
    pub(crate) fn dir_of(&self, span: &Range<usize>) -> PathBuf {
        let loc = self.sources.locate(span.clone());
        let file = loc.map_or_else(|| self.sources.path(0).to_path_buf(), |l| l.path);
        let dir = file.parent().unwrap_or(Path::new("")).to_path_buf();
        std::path::absolute(&dir).unwrap_or(dir)
    }
}

/// Reads `path`, follows `extends` (a top-level key naming a file relative to the file holding it),
/// deep-merges tables (arrays and values of the extending file replace), then deserializes.
pub(crate) fn load<T: DeserializeOwned>(path: &Path, what: &str) -> Result<Loaded<T>, Diagnostics> {
    let mut sources = SourceMap::default();
    read_chain(path, what, &mut sources)?;
    let mut hasher = Sha256::new();
    for i in 0..sources.len() {
        hasher.update(sources.text(i).as_bytes());
    }
    let sha256 = hex::encode(hasher.finalize());
    let raw = deserialize(&sources)?;
    Ok(Loaded {
        raw,
        sources,
        sha256,
    })
}

/// Same as [`load`] for text that is not on disk (the embedded default rig).
pub(crate) fn load_str<T: DeserializeOwned>(
    name: &Path,
    text: &str,
) -> Result<Loaded<T>, Diagnostics> {
    let mut sources = SourceMap::default();
    sources.add(name.to_path_buf(), text.to_string());
    parse(&sources, 0)?;
    let sha256 = hex::encode(Sha256::digest(text.as_bytes()));
    let raw = deserialize(&sources)?;
    Ok(Loaded {
        raw,
        sources,
        sha256,
    })
}

fn read_chain(path: &Path, what: &str, sources: &mut SourceMap) -> Result<(), Diagnostics> {
    let mut next = Some((path.to_path_buf(), None::<Location>));
    let mut seen: Vec<PathBuf> = Vec::new();
    while let Some((path, named_at)) = next.take() {
        let bytes = std::fs::read(&path).map_err(|e| {
            Diagnostic::new(format!("failed to read {what} `{}`: {e}", path.display()))
                .at(named_at.clone())
                .label("named here")
        })?;
        let text = String::from_utf8(bytes).map_err(|e| not_utf8(&path, what, e.as_bytes()))?;
        let canonical = path.canonicalize().unwrap_or_else(|_| path.clone());
        if let Some(first) = seen.iter().position(|p| *p == canonical) {
            let chain: Vec<String> = seen[first..]
                .iter()
                .chain(std::iter::once(&canonical))
                .map(|p| format!("`{}`", file_name(p)))
                .collect();
            return Err(Diagnostic::new("circular `extends`")
                .at(named_at)
                .label("extends a file that extends this one")
                .note(format!("chain: {}", chain.join(" → ")))
                .into());
        }
        seen.push(canonical);
        let index = sources.len();
        sources.add(path.clone(), text);
        let doc = parse(sources, index)?;
        if let Some(value) = doc.get_ref().get("extends") {
            let span = value.span();
            let Some(target) = value.get_ref().as_str() else {
                return Err(Diagnostic::new("`extends` must be a string naming a file")
                    .at(sources.locate(span))
                    .label(format!("found {}", value.get_ref().type_str()))
                    .into());
            };
            let dir = path.parent().unwrap_or(Path::new(""));
            next = Some((dir.join(target), sources.locate(span)));
        }
    }
    Ok(())
}

/// A file that is not UTF-8 text (TOML must be): located at the first bad byte.
fn not_utf8(path: &Path, what: &str, bytes: &[u8]) -> Diagnostics {
    let valid = std::str::from_utf8(bytes).map_or_else(|e| e.valid_up_to(), |_| bytes.len());
    let line_start = bytes[..valid]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line_end = bytes[valid..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |i| valid + i);
    let before = String::from_utf8_lossy(&bytes[line_start..valid]);
    let location = Location {
        path: path.to_path_buf(),
        line: bytes[..valid].iter().filter(|&&b| b == b'\n').count() + 1,
        column: before.chars().count() + 1,
        source_line: String::from_utf8_lossy(&bytes[line_start..line_end])
            .trim_end_matches('\r')
            .to_string(),
        width: 1,
    };
    Diagnostic::new(format!(
        "failed to read {what} `{}`: it is not UTF-8 text (byte offset {valid})",
        path.display()
    ))
    .at(Some(location))
    .label(format!(
        "byte 0x{:02x} here",
        bytes.get(valid).copied().unwrap_or(0)
    ))
    .help("TOML files are UTF-8; re-save the file as UTF-8")
    .into()
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Parses file `index` with spans shifted into the global offset space.
fn parse(sources: &SourceMap, index: usize) -> Result<Spanned<DeTable<'_>>, Diagnostics> {
    let base = sources.base(index);
    let doc = DeTable::parse(sources.text(index)).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim_end().replace('\n', "; ");
        Diagnostic::new(format!("invalid TOML: {message}"))
            .at(sources.locate(span.start + base..span.end + base))
            .label("TOML syntax error")
    })?;
    let span = doc.span();
    let mut table = doc.into_inner();
    shift_table(&mut table, base);
    Ok(Spanned::new(span.start + base..span.end + base, table))
}

fn shift_table(table: &mut DeTable<'_>, by: usize) {
    let old = std::mem::take(table);
    for (key, mut value) in old {
        let ks = key.span();
        shift_value(&mut value, by);
        table.insert(
            Spanned::new(ks.start + by..ks.end + by, key.into_inner()),
            value,
        );
    }
}

fn shift_value(value: &mut Spanned<DeValue<'_>>, by: usize) {
    let span = value.span();
    let mut inner = std::mem::replace(value.get_mut(), DeValue::Boolean(false));
    match &mut inner {
        DeValue::Table(t) => shift_table(t, by),
        DeValue::Array(items) => items.iter_mut().for_each(|v| shift_value(v, by)),
        _ => {}
    }
    *value = Spanned::new(span.start + by..span.end + by, inner);
}

/// Tables merge key by key; anything else in `over` replaces what `base` had.
fn merge<'s>(base: &mut DeTable<'s>, over: DeTable<'s>) {
    for (key, value) in over {
        let span = value.span();
        match (base.get_mut(key.get_ref().as_ref()), value.into_inner()) {
            (Some(existing), DeValue::Table(over_table))
                if matches!(existing.get_ref(), DeValue::Table(_)) =>
            {
                if let DeValue::Table(base_table) = existing.get_mut() {
                    merge(base_table, over_table);
                }
            }
            (_, value) => {
                base.remove(key.get_ref().as_ref());
                base.insert(key, Spanned::new(span, value));
            }
        }
    }
}

fn deserialize<T: DeserializeOwned>(sources: &SourceMap) -> Result<T, Diagnostics> {
    // Most-derived file first in `sources`; merge from the root base outwards.
    let mut merged: Option<Spanned<DeTable<'_>>> = None;
    for i in (0..sources.len()).rev() {
        let doc = parse(sources, i)?;
        merged = Some(match merged {
            None => doc,
            Some(mut base) => {
                let span = doc.span();
                merge(base.get_mut(), doc.into_inner());
                Spanned::new(span, base.into_inner())
            }
        });
    }
    let mut doc = merged.expect("at least one file was read");
    doc.get_mut().remove("extends");
    let root_span = doc.span();
    T::deserialize(toml::de::Deserializer::from(doc))
        .map_err(|e| serde_diagnostic(sources, &e, root_span).into())
}

/// Turns serde's terse messages into diagnostics with a suggestion for unknown keys and values.
fn serde_diagnostic(sources: &SourceMap, e: &toml::de::Error, root: Range<usize>) -> Diagnostic {
    let span = e.span().unwrap_or(root.clone());
    let loc = sources.locate(span);
    let msg = e.message();
    if let Some((word, expected)) = unknown(msg, "unknown field `") {
        return Diagnostic::new(format!("unknown key `{word}`"))
            .at(loc)
            .label("unknown key")
            .help_opt(did_you_mean(&word, &as_strs(&expected), "valid keys here"));
    }
    if let Some((word, expected)) = unknown(msg, "unknown variant `") {
        return Diagnostic::new(format!("unknown value `{word}`"))
            .at(loc)
            .label("not one of the accepted values")
            .help_opt(did_you_mean(&word, &as_strs(&expected), "accepted values"));
    }
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let field = rest.trim_end_matches('`');
        let whole_file = e.span().is_none_or(|s| s == root);
        return Diagnostic::new(format!("missing required key `{field}`"))
            .at(loc)
            .label(if whole_file {
                format!("this file needs `{field}`")
            } else {
                format!("this table needs `{field}`")
            });
    }
    if let Some(rest) = msg.strip_prefix("invalid type: ") {
        let (found, expected) = rest
            .split_once(", expected ")
            .unwrap_or((rest, "another type"));
        return Diagnostic::new(format!("wrong type: expected {}", friendly(expected)))
            .at(loc)
            .label(format!("found {}", friendly(found)));
    }
    Diagnostic::new(friendly(msg)).at(loc)
}

/// `unknown field `x`, expected one of `a`, `b`` → (`x`, [a, b]).
fn unknown(msg: &str, prefix: &str) -> Option<(String, Vec<String>)> {
    let rest = msg.strip_prefix(prefix)?;
    let (word, tail) = rest.split_once('`')?;
    let expected = tail
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some((word.to_string(), expected))
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Serde speaks Rust (`i64`, `sequence`, `map`); TOML users think in integers, arrays and tables.
fn friendly(s: &str) -> String {
    let s = s.trim();
    let replaced = match s {
        "i64" | "u64" | "u32" | "u16" | "u8" | "usize" | "i32" => "an integer".to_string(),
        "f64" | "f32" => "a number".to_string(),
        "a sequence" => "an array".to_string(),
        "sequence" => "an array".to_string(),
        "a map" | "map" => "a table".to_string(),
        _ if s.starts_with("struct ") => "a table".to_string(),
        _ => s.to_string(),
    };
    replaced
        .replace("floating point", "float")
        .replace("sequence", "array")
}
