//! Diagnostics rendered like rustc's: message, `--> file:line:col`, the source line with a caret
//! underline, then notes and a help line.
//!
//! Every file a load reads is placed in one global byte-offset space ([`SourceMap`]) so that a span
//! in a merged (`extends`) document still knows which file it came from.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Where a diagnostic points: resolved eagerly so a [`Diagnostics`] needs no source text later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// The whole source line the span starts on (without its line break).
    pub source_line: String,
    /// Characters to underline, at least 1; a span running past the line ends at the line's end.
    pub width: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub message: String,
    pub location: Option<Location>,
    /// Short text printed beside the underline.
    pub label: Option<String>,
    pub notes: Vec<String>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            location: None,
            label: None,
            notes: Vec::new(),
            help: None,
        }
    }

    pub fn at(mut self, location: Option<Location>) -> Self {
        self.location = location;
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn help_opt(mut self, help: Option<String>) -> Self {
        self.help = help.or(self.help);
        self
    }
}

/// One or more errors found in scenario or rig files. `Display` renders all of them rustc-style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub(crate) fn one(d: Diagnostic) -> Self {
        Diagnostics { items: vec![d] }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }

    /// Shows file paths relative to `base` where they lie under it (for stable test snapshots and
    /// shorter CLI output).
    pub fn relative_to(mut self, base: &Path) -> Self {
        let prefix = format!("{}/", base.display());
        for d in &mut self.items {
            if let Some(loc) = &mut d.location
                && let Ok(rel) = loc.path.strip_prefix(base)
            {
                loc.path = rel.to_path_buf();
            }
            let texts = d
                .notes
                .iter_mut()
                .chain(d.label.as_mut())
                .chain(d.help.as_mut());
            for text in std::iter::once(&mut d.message).chain(texts) {
                *text = text.replace(&prefix, "");
            }
        }
        self
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics::one(d)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        let gutter = self
            .location
            .as_ref()
            .map_or(1, |l| l.line.to_string().len());
        let pad = " ".repeat(gutter);
        if let Some(loc) = &self.location {
            writeln!(
                f,
                "{pad}--> {}:{}:{}",
                loc.path.display(),
                loc.line,
                loc.column
            )?;
            writeln!(f, "{pad} |")?;
            let (shown, column, width) = excerpt(&loc.source_line, loc.column, loc.width);
            writeln!(f, "{} | {}", loc.line, shown)?;
            let lead: String = shown
                .chars()
                .take(column - 1)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let carets = "^".repeat(width);
            match &self.label {
                Some(label) => writeln!(f, "{pad} | {lead}{carets} {label}")?,
                None => writeln!(f, "{pad} | {lead}{carets}")?,
            }
            if !self.notes.is_empty() || self.help.is_some() {
                writeln!(f, "{pad} |")?;
            }
        }
        for note in &self.notes {
            writeln!(f, "{pad} = note: {note}")?;
        }
        if let Some(help) = &self.help {
            writeln!(f, "{pad} = help: {help}")?;
        }
        Ok(())
    }
}

/// Characters of a source line shown at most: a minified or generated file can hold megabytes on
/// one line, which would flood the terminal.
const MAX_SHOWN_CHARS: usize = 160;

/// The part of `line` shown around `column` (1-based), with `…` where it is cut, and the column
/// and underline width within that part.
fn excerpt(line: &str, column: usize, width: usize) -> (String, usize, usize) {
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= MAX_SHOWN_CHARS {
        return (line.to_string(), column, width);
    }
    let at = (column - 1).min(chars.len());
    let start = at.saturating_sub(MAX_SHOWN_CHARS / 3);
    let end = (start + MAX_SHOWN_CHARS).min(chars.len());
    let prefix = usize::from(start > 0);
    let mut shown: String = if prefix == 1 {
        "…".into()
    } else {
        String::new()
    };
    shown.extend(&chars[start..end]);
    if end < chars.len() {
        shown.push('…');
    }
    (shown, at - start + prefix + 1, width.min(end - at).max(1))
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        if self.items.len() > 1 {
            writeln!(f, "\nerror: {} errors found", self.items.len())?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Every file read during one load, laid end to end in one offset space (one byte of gap between
/// files so an end-of-file span never lands in the next file).
#[derive(Debug, Default)]
pub(crate) struct SourceMap {
    files: Vec<(PathBuf, String, usize)>,
}

impl SourceMap {
    /// Registers a file and returns the offset its spans must be shifted by.
    pub(crate) fn add(&mut self, path: PathBuf, text: String) -> usize {
        let base = self.files.last().map_or(0, |(_, t, b)| b + t.len() + 1);
        self.files.push((path, text, base));
        base
    }

    pub(crate) fn text(&self, index: usize) -> &str {
        &self.files[index].1
    }

    pub(crate) fn path(&self, index: usize) -> &Path {
        &self.files[index].0
    }

    pub(crate) fn base(&self, index: usize) -> usize {
        self.files[index].2
    }

    pub(crate) fn len(&self) -> usize {
        self.files.len()
    }

    /// Resolves a global span to a location; `None` when it lies outside every file.
    pub(crate) fn locate(&self, span: Range<usize>) -> Option<Location> {
        let (path, text, base) = self
            .files
            .iter()
            .rev()
            .find(|(_, t, b)| span.start >= *b && span.start <= b + t.len())?;
        let start = span.start - base;
        let end = (span.end.max(span.start) - base).min(text.len());
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let source_line = text[line_start..line_end].trim_end_matches('\r');
        let column = text[line_start..start].chars().count() + 1;
        let width = text[start..end.min(line_end).max(start)].chars().count();
        Some(Location {
            path: path.clone(),
            line: text[..start].matches('\n').count() + 1,
            column,
            source_line: source_line.to_string(),
            width: width.max(1),
        })
    }
}

/// The closest candidate to `word`, if close enough to be a plausible typo.
pub(crate) fn suggest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| *d <= limit || (c.len() > 3 && c.starts_with(word)) || word.starts_with(c))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `did you mean ...?` for an unknown name, or the list of valid names when nothing is close.
pub(crate) fn did_you_mean(word: &str, candidates: &[&str], what: &str) -> Option<String> {
    match suggest(word, candidates.iter().copied()) {
        Some(c) => Some(format!("did you mean `{c}`?")),
        None if candidates.is_empty() => None,
        None => Some(format!(
            "{what}: {}",
            candidates
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_around_the_column() {
        let line = format!("{}x = @{}", "a".repeat(5_000), "b".repeat(5_000));
        let (shown, column, width) = excerpt(&line, 5_005, 1);
        assert!(
            shown.chars().count() <= MAX_SHOWN_CHARS + 2,
            "{}",
            shown.len()
        );
        assert!(shown.starts_with('…') && shown.ends_with('…'));
        assert_eq!(shown.chars().nth(column - 1), Some('@'));
        assert_eq!(width, 1);
        assert_eq!(excerpt("short", 2, 3), ("short".to_string(), 2, 3));
    }

    #[test]
    fn locate_maps_global_offsets_back_to_each_file() {
        let mut map = SourceMap::default();
        map.add("a.toml".into(), "x = 1\ny = 2\n".into());
        let b = map.add("b.toml".into(), "zz = \"é\"\n".into());
        let loc = map.locate(6..7).unwrap();
        assert_eq!(
            (loc.path.to_str().unwrap(), loc.line, loc.column),
            ("a.toml", 2, 1)
        );
        let loc = map.locate(b + 5..b + 9).unwrap();
        assert_eq!(
            (loc.path.to_str().unwrap(), loc.line, loc.column, loc.width),
            ("b.toml", 1, 6, 3)
        );
    }

    #[test]
    fn suggestion_finds_typos_but_not_unrelated_words() {
        let keys = ["shunt_ohms", "address", "i2c_bus"];
        assert_eq!(suggest("shunt_ohm", keys), Some("shunt_ohms"));
        assert_eq!(suggest("adress", keys), Some("address"));
        assert_eq!(suggest("voltage", keys), None);
    }

    #[test]
    fn render_has_rustc_shape() {
        let d = Diagnostic::new("unknown key `shunt_ohm`")
            .at(Some(Location {
                path: "rig.toml".into(),
                line: 12,
                column: 1,
                source_line: "shunt_ohm = 0.1".into(),
                width: 9,
            }))
            .label("unknown key")
            .help("did you mean `shunt_ohms`?");
        assert_eq!(
            d.to_string(),
            "error: unknown key `shunt_ohm`\n  --> rig.toml:12:1\n   |\n12 | shunt_ohm = 0.1\n   | ^^^^^^^^^ unknown key\n   |\n   = help: did you mean `shunt_ohms`?\n"
        );
    }
}
