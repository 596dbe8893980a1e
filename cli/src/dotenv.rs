//! Reading `.env` files the way dotenv tools do: `KEY=value` lines, an
//! optional `export ` prefix, `#` comments, single quotes (literal), double
//! quotes (with `\n`, `\t`, `\"` and `\\` escapes) and quoted values over
//! several lines. `${VAR}` references are kept as written.

use zeroize::Zeroizing;

/// One assignment.
pub struct Entry {
    /// The variable.
    pub name: String,
    /// Its value (often a secret).
    pub value: Zeroizing<String>,
    /// The line it starts on (1-based).
    pub line: usize,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Entry {{ name: {:?}, line: {}, value: *** }}",
            self.name, self.line
        )
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
}

/// Every assignment in `text`, in order. Lines that are not assignments are
/// skipped.
pub fn parse(text: &str) -> Vec<Entry> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let start = i;
        let line = lines[i].trim_start();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .strip_prefix("export")
            .filter(|rest| rest.starts_with([' ', '\t']))
            .map_or(line, str::trim_start);
        let Some((name, rest)) = line.split_once('=') else {
            continue;
        };
        let name = name.trim();
        if !valid_name(name) {
            continue;
        }
        let rest = rest.trim_start();
        let value = match rest.chars().next() {
            Some(q @ ('"' | '\'' | '`')) => {
                // A quoted value, perhaps over several lines.
                let mut raw = rest[1..].to_string();
                let mut end = closing_quote(&raw, q);
                while end.is_none() && i < lines.len() {
                    raw.push('\n');
                    raw.push_str(lines[i]);
                    i += 1;
                    end = closing_quote(&raw, q);
                }
                let Some(end) = end else {
                    // Never closed: not an assignment; the lines after it are
                    // read on their own.
                    i = start + 1;
                    continue;
                };
                let body = &raw[..end];
                if q == '"' {
                    unescape(body)
                } else {
                    Zeroizing::new(body.to_string())
                }
            }
            _ => {
                let cut = rest
                    .char_indices()
                    .find(|&(j, c)| c == '#' && (j == 0 || rest[..j].ends_with([' ', '\t'])))
                    .map_or(rest.len(), |(j, _)| j);
                Zeroizing::new(rest[..cut].trim_end().to_string())
            }
        };
        out.push(Entry {
            name: name.to_string(),
            value,
            line: start + 1,
        });
    }
    out
}

/// The byte offset of the quote that closes a value opened with `q`.
fn closing_quote(raw: &str, q: char) -> Option<usize> {
    let mut escaped = false;
    for (j, c) in raw.char_indices() {
        if q == '"' && c == '\\' && !escaped {
            escaped = true;
            continue;
        }
        if c == q && !escaped {
            return Some(j);
        }
        escaped = false;
    }
    None
}

fn unescape(body: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(body.len()));
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String, usize)> {
        parse(text)
            .into_iter()
            .map(|e| (e.name, e.value.to_string(), e.line))
            .collect()
    }

    #[test]
    fn reads_assignments_as_dotenv_tools_do() {
        let text = "# comment\n\
                    OPENAI_API_KEY=sk-plain\n\
                    export  GROQ_API_KEY = gsk_x # trailing comment\n\
                    QUOTED=\"a # not a comment\\n\\\"q\\\"\"\n\
                    SINGLE='lit\\n $HOME'  # comment\n\
                    HASH=abc#def\n\
                    EMPTY=\n\
                    MULTI=\"line one\nline two\"\n\
                    not an assignment\n\
                    1BAD=x\n\
                    exported=kept\n\
                    UNCLOSED=\"never\n\
                    AFTER=read\n";
        assert_eq!(
            pairs(text),
            [
                ("OPENAI_API_KEY".into(), "sk-plain".into(), 2),
                ("GROQ_API_KEY".into(), "gsk_x".into(), 3),
                ("QUOTED".into(), "a # not a comment\n\"q\"".into(), 4),
                ("SINGLE".into(), "lit\\n $HOME".into(), 5),
                ("HASH".into(), "abc#def".into(), 6),
                ("EMPTY".into(), String::new(), 7),
                ("MULTI".into(), "line one\nline two".into(), 8),
                ("exported".into(), "kept".into(), 12),
                ("AFTER".into(), "read".into(), 14),
            ]
        );
    }

    #[test]
    fn debug_shows_no_value() {
        let e = &parse("K=secret-value-123")[0];
        assert!(!format!("{e:?}").contains("secret-value-123"));
    }
}
