//! Text from results (names, messages a board sent) shown where control characters would act:
//! an ESC starts a terminal escape sequence, a carriage return overwrites a line.

use std::borrow::Cow;

/// `text` with every control character except line breaks and tabs written as a visible
/// `\u{…}` escape.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if hidden(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn hidden(c: char) -> bool {
    c.is_control() && !matches!(c, '\n' | '\t')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_a_terminal_would_obey() {
        assert_eq!(printable("rig \x1b[2Jx"), "rig \\u{1b}[2Jx");
        assert_eq!(printable("a\rb\0"), "a\\u{d}b\\u{0}");
        assert!(matches!(printable("plain\ttext\n"), Cow::Borrowed(_)));
    }
}
