//! Shared validation plumbing: collect every diagnostic of a file instead of stopping at the first.

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::load::Loaded;
use crate::raw::Sp;

pub(crate) struct Checker<'a, T> {
    pub loaded: &'a Loaded<T>,
    diags: Vec<Diagnostic>,
}

impl<'a, T> Checker<'a, T> {
    pub(crate) fn new(loaded: &'a Loaded<T>) -> Self {
        Checker {
            loaded,
            diags: Vec::new(),
        }
    }

    /// A diagnostic pointing at `span`; push it with [`Checker::push`].
    pub(crate) fn at(&self, span: &Range<usize>, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(message).at(self.loaded.locate(span))
    }

    pub(crate) fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// `file:line:col` of a span, for notes that mention a second place.
    pub(crate) fn place(&self, span: &Range<usize>) -> String {
        self.loaded.locate(span).map_or_else(String::new, |l| {
            format!("{}:{}:{}", l.path.display(), l.line, l.column)
        })
    }

    pub(crate) fn finish<V>(self, value: V) -> Result<V, Diagnostics> {
        if self.diags.is_empty() {
            Ok(value)
        } else {
            Err(Diagnostics { items: self.diags })
        }
    }

    /// An integer that must be at least `min`; errors fall back to `min` so checking goes on.
    pub(crate) fn at_least(&mut self, v: &Sp<i64>, min: i64, key: &str) -> usize {
        if v.value < min {
            let d = self
                .at(&v.span, format!("`{key}` must be at least {min}"))
                .label(format!("found {}", v.value));
            self.push(d);
            return usize::try_from(min).unwrap_or(0);
        }
        usize::try_from(v.value).unwrap_or(usize::MAX)
    }

    pub(crate) fn opt_at_least(
        &mut self,
        v: &Option<Sp<i64>>,
        min: i64,
        key: &str,
        default: usize,
    ) -> usize {
        v.as_ref().map_or(default, |v| self.at_least(v, min, key))
    }

    /// A number that must be finite and greater than zero.
    pub(crate) fn positive(&mut self, v: &Sp<f64>, key: &str) -> f64 {
        if !(v.value.is_finite() && v.value > 0.0) {
            let d = self
                .at(&v.span, format!("`{key}` must be greater than 0"))
                .label(format!("found {}", v.value));
            self.push(d);
            return 1.0;
        }
        v.value
    }

    /// A path written in a file, resolved against that file's directory (`~/` against $HOME).
    pub(crate) fn path(&self, v: &Sp<String>) -> PathBuf {
        if let Some(rest) = v.value.strip_prefix("~/")
            && let Some(home) = std::env::var_os("HOME")
        {
            return Path::new(&home).join(rest);
        }
        self.loaded.dir_of(&v.span).join(&v.value)
    }

    /// Resolves a path and checks it names a readable file.
    pub(crate) fn readable_file(&mut self, v: &Sp<String>, what: &str) -> PathBuf {
        let path = self.path(v);
        if let Err(e) = std::fs::File::open(&path)
            .and_then(|f| f.metadata())
            .and_then(|m| {
                if m.is_file() {
                    Ok(())
                } else {
                    Err(std::io::Error::other("not a regular file"))
                }
            })
        {
            let d = self
                .at(&v.span, format!("cannot read {what} `{}`", v.value))
                .label(e.to_string())
                .note(format!("resolved to `{}`", path.display()));
            self.push(d);
        }
        path
    }

    /// One of a fixed set of names, with a suggestion when it is not.
    pub(crate) fn one_of<K: Copy>(
        &mut self,
        v: &Sp<String>,
        what: &str,
        all: &[(&str, K)],
    ) -> Option<K> {
        if let Some((_, k)) = all.iter().find(|(n, _)| *n == v.value) {
            return Some(*k);
        }
        let names: Vec<&str> = all.iter().map(|(n, _)| *n).collect();
        let d = self
            .at(&v.span, format!("unknown {what} `{}`", v.value))
            .label(format!("not a known {what}"))
            .help_opt(crate::diagnostic::did_you_mean(
                &v.value,
                &names,
                &format!("known {what}s"),
            ));
        self.push(d);
        None
    }

    /// A name that becomes a file name (board id, model name, variant): see [`crate::names`].
    pub(crate) fn path_component(&mut self, v: &Sp<String>, what: &str) {
        if let Err(problem) = crate::names::check_path_component(&v.value) {
            let d = self
                .at(&v.span, format!("invalid {what} {:?}", v.value))
                .label(format!("{problem}"))
                .help("it becomes part of file names in the run folder");
            self.push(d);
        }
    }

    /// A name shown in terminals and reports: control characters (an ESC starting a terminal
    /// escape sequence, a line break) would be obeyed or break the layout there.
    pub(crate) fn printable(&mut self, v: &Sp<String>, what: &str) {
        if let Some(c) = v.value.chars().find(|c| c.is_control()) {
            let d = self
                .at(&v.span, format!("invalid {what} {:?}", v.value))
                .label(format!(
                    "it contains the control character {}",
                    c.escape_unicode()
                ))
                .help("names are shown in terminals and reports: use printable characters");
            self.push(d);
        }
    }

    /// Reports the second occurrence of each repeated value.
    pub(crate) fn unique<'s>(
        &mut self,
        items: impl IntoIterator<Item = &'s Sp<String>>,
        what: &str,
    ) {
        let mut seen: Vec<&Sp<String>> = Vec::new();
        for item in items {
            if let Some(first) = seen.iter().find(|s| s.value == item.value) {
                let note = format!("first defined at {}", self.place(&first.span));
                let d = self
                    .at(&item.span, format!("duplicate {what} `{}`", item.value))
                    .label(format!("{what} already used"))
                    .note(note);
                self.push(d);
            } else {
                seen.push(item);
            }
        }
    }
}
