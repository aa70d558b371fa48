//! The lexical level of `conserver.cf`: quoting, comments, `#include`, and blocks of
//! `keyword value;` entries, each remembering its file and line.
//!
//! As in conserver: `{`, `}` and `;` separate words; `#` starts a comment; `\c` and `"…"` quote.
//! Whitespace separates words only where a block type or keyword is expected: block names and
//! values may contain spaces (trimmed at both ends). `#include FILE` in column 0 reads another
//! file, at most 10 deep.

use super::ConfigError;

/// Reads an `#include`d file by name: its text, or why not.
pub type Loader = dyn Fn(&str) -> Result<String, String>;

/// How deep `#include` may nest (conserver's limit).
const MAX_INCLUDE_DEPTH: usize = 10;

/// Where something was written: index into the file list, and 1-based line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Loc {
    pub file: usize,
    pub line: usize,
}

/// One `keyword value;` entry.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub keyword: String,
    pub value: String,
    pub loc: Loc,
}

/// One `type name { … }` block.
#[derive(Debug, Clone)]
pub(crate) struct Block {
    pub kind: String,
    pub name: String,
    pub loc: Loc,
    pub entries: Vec<Entry>,
}

#[derive(Clone, Copy)]
struct Ch {
    c: char,
    quoted: bool,
    loc: Loc,
}

impl Ch {
    fn is(&self, c: char) -> bool {
        !self.quoted && self.c == c
    }
    fn is_space(&self) -> bool {
        !self.quoted && self.c.is_whitespace()
    }
    fn is_token(&self) -> bool {
        !self.quoted && matches!(self.c, '{' | '}' | ';')
    }
}

/// The result of lexing: the blocks, and the names of the files they came from.
pub(crate) struct Lexed {
    pub blocks: Vec<Block>,
    pub files: Vec<String>,
}

/// Lex `text` (the file `file`), reading `#include`s with `loader`.
pub(crate) fn lex(text: &str, file: &str, loader: &Loader) -> Result<Lexed, ConfigError> {
    let mut files = vec![file.to_string()];
    let mut chars = Vec::new();
    expand(text, 0, 0, loader, &mut files, &mut chars)?;
    let blocks = Parser {
        chars: &chars,
        pos: 0,
        files: &files,
    }
    .blocks()?;
    Ok(Lexed { blocks, files })
}

/// Resolve quoting, comments and includes of one file into characters with their origin.
fn expand(
    text: &str,
    file: usize,
    depth: usize,
    loader: &Loader,
    files: &mut Vec<String>,
    out: &mut Vec<Ch>,
) -> Result<(), ConfigError> {
    let name = files.get(file).cloned().unwrap_or_default();
    let mut in_quote: Option<Loc> = None;
    for (index, raw_line) in text.split('\n').enumerate() {
        let loc = Loc {
            file,
            line: index + 1,
        };
        if in_quote.is_none()
            && let Some(rest) = raw_line.strip_prefix("#include")
            && (rest.is_empty() || rest.starts_with([' ', '\t']))
        {
            let target = rest.trim();
            if depth + 1 >= MAX_INCLUDE_DEPTH {
                return Err(ConfigError::at(
                    &name,
                    loc.line,
                    format!("#include {target}: more than {MAX_INCLUDE_DEPTH} levels deep"),
                ));
            }
            let body = loader(target)
                .map_err(|e| ConfigError::at(&name, loc.line, format!("#include {target}: {e}")))?;
            files.push(target.to_string());
            let index = files.len() - 1;
            expand(&body, index, depth + 1, loader, files, out)?;
            out.push(Ch {
                c: '\n',
                quoted: false,
                loc,
            });
            continue;
        }
        let mut it = raw_line.chars();
        while let Some(c) = it.next() {
            if in_quote.is_some() {
                match c {
                    '"' => in_quote = None,
                    '\\' => match it.next() {
                        Some('"') => out.push(Ch {
                            c: '"',
                            quoted: true,
                            loc,
                        }),
                        Some(other) => {
                            out.push(Ch {
                                c: '\\',
                                quoted: true,
                                loc,
                            });
                            out.push(Ch {
                                c: other,
                                quoted: true,
                                loc,
                            });
                        }
                        None => out.push(Ch {
                            c: '\\',
                            quoted: true,
                            loc,
                        }),
                    },
                    other => out.push(Ch {
                        c: other,
                        quoted: true,
                        loc,
                    }),
                }
                continue;
            }
            match c {
                '#' => break,
                '"' => {
                    in_quote = Some(loc);
                    // An empty "" still makes a (quoted, empty) value: mark it with a zero-width
                    // quoted character the parser drops.
                    out.push(Ch {
                        c: '\0',
                        quoted: true,
                        loc,
                    });
                }
                '\\' => match it.next() {
                    Some(next) => out.push(Ch {
                        c: next,
                        quoted: true,
                        loc,
                    }),
                    None => out.push(Ch {
                        c: '\n',
                        quoted: true,
                        loc,
                    }),
                },
                other => out.push(Ch {
                    c: other,
                    quoted: false,
                    loc,
                }),
            }
        }
        if in_quote.is_some() {
            out.push(Ch {
                c: '\n',
                quoted: true,
                loc,
            });
        } else {
            out.push(Ch {
                c: '\n',
                quoted: false,
                loc,
            });
        }
    }
    if let Some(start) = in_quote {
        return Err(ConfigError::at(
            &name,
            start.line,
            "unterminated double quote",
        ));
    }
    Ok(())
}

struct Parser<'a> {
    chars: &'a [Ch],
    pos: usize,
    files: &'a [String],
}

impl Parser<'_> {
    fn error(&self, loc: Loc, reason: impl Into<String>) -> ConfigError {
        ConfigError::at(
            self.files.get(loc.file).map_or("", String::as_str),
            loc.line,
            reason,
        )
    }

    fn end_loc(&self) -> Loc {
        self.chars
            .last()
            .map_or(Loc { file: 0, line: 1 }, |c| c.loc)
    }

    fn skip_space(&mut self) {
        while self.chars.get(self.pos).is_some_and(Ch::is_space) {
            self.pos += 1;
        }
    }

    /// A whitespace-delimited word (block type or keyword).
    fn word(&mut self) -> String {
        let mut w = String::new();
        while let Some(ch) = self.chars.get(self.pos) {
            if ch.is_space() || ch.is_token() {
                break;
            }
            if ch.c != '\0' {
                w.push(ch.c);
            }
            self.pos += 1;
        }
        w
    }

    /// Text up to (not including) an unquoted token, trimmed of unquoted whitespace.
    fn text(&mut self) -> String {
        let start = self.pos;
        while self.chars.get(self.pos).is_some_and(|c| !c.is_token()) {
            self.pos += 1;
        }
        let mut slice = self.chars.get(start..self.pos).unwrap_or_default();
        while slice.first().is_some_and(Ch::is_space) {
            slice = slice.get(1..).unwrap_or_default();
        }
        while slice.last().is_some_and(Ch::is_space) {
            slice = slice.get(..slice.len() - 1).unwrap_or_default();
        }
        slice.iter().filter(|c| c.c != '\0').map(|c| c.c).collect()
    }

    fn blocks(mut self) -> Result<Vec<Block>, ConfigError> {
        let mut blocks = Vec::new();
        loop {
            self.skip_space();
            let Some(first) = self.chars.get(self.pos).copied() else {
                return Ok(blocks);
            };
            if first.is_token() {
                return Err(self.error(
                    first.loc,
                    format!(
                        "expected a block type (console, default, …), found `{}`",
                        first.c
                    ),
                ));
            }
            let kind = self.word();
            let name = self.text();
            match self.chars.get(self.pos) {
                Some(ch) if ch.is('{') => self.pos += 1,
                Some(ch) => {
                    return Err(self.error(
                        ch.loc,
                        format!("`{kind} {name}`: expected `{{`, found `{}`", ch.c),
                    ));
                }
                None => {
                    return Err(self.error(
                        self.end_loc(),
                        format!("`{kind} {name}`: expected `{{` before the end of the file"),
                    ));
                }
            }
            if name.is_empty() {
                return Err(self.error(first.loc, format!("`{kind}` block without a name")));
            }
            let mut entries = Vec::new();
            loop {
                self.skip_space();
                let Some(ch) = self.chars.get(self.pos).copied() else {
                    return Err(self.error(
                        first.loc,
                        format!("`{kind} {name}` is not closed with `}}`"),
                    ));
                };
                if ch.is('}') {
                    self.pos += 1;
                    break;
                }
                if ch.is(';') {
                    self.pos += 1;
                    continue;
                }
                if ch.is('{') {
                    return Err(self.error(ch.loc, "unexpected `{` (a missing `}` before it?)"));
                }
                let keyword = self.word();
                let value = self.text();
                if self.chars.get(self.pos).is_some_and(|c| c.is(';')) {
                    self.pos += 1;
                } else if self.chars.get(self.pos).is_some_and(|c| c.is('{')) {
                    return Err(self.error(
                        ch.loc,
                        format!("`{keyword}`: missing `;` or `}}` (found `{{`)"),
                    ));
                }
                entries.push(Entry {
                    keyword: keyword.to_ascii_lowercase(),
                    value,
                    loc: ch.loc,
                });
            }
            blocks.push(Block {
                kind: kind.to_ascii_lowercase(),
                name,
                loc: first.loc,
                entries,
            });
        }
    }
}

/// A loader that refuses every `#include` (for text without a file system).
pub(crate) fn no_includes(name: &str) -> Result<String, String> {
    Err(format!("cannot read `{name}` here (no file system)"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn quoting_comments_and_spaces() {
        let text = "\"defa\"ult my\\ defs { rw *; in\\clude \"other defs\"  ; } # c\nconsole x{exec a \"b;c\" # x\n;}\n";
        let lexed = lex(text, "c.cf", &no_includes).unwrap();
        assert_eq!(lexed.blocks.len(), 2);
        let b = &lexed.blocks[0];
        assert_eq!((b.kind.as_str(), b.name.as_str()), ("default", "my defs"));
        assert_eq!(b.entries[1].keyword, "include");
        assert_eq!(b.entries[1].value, "other defs");
        let c = &lexed.blocks[1];
        assert_eq!(c.entries[0].value, "a b;c");
        assert_eq!(c.entries[0].loc.line, 2);
    }

    #[test]
    fn empty_quotes_and_includes() {
        let loader = |name: &str| -> Result<String, String> {
            match name {
                "inc.cf" => Ok("console y { rw \"\"; }\n".into()),
                "loop.cf" => Ok("#include loop.cf\n".into()),
                _ => Err("missing".into()),
            }
        };
        let lexed = lex(
            "#include inc.cf\nconsole x { type exec; }\n",
            "main.cf",
            &loader,
        )
        .unwrap();
        assert_eq!(lexed.blocks[0].name, "y");
        assert_eq!(lexed.blocks[0].entries[0].value, "");
        assert_eq!(lexed.files[lexed.blocks[0].loc.file], "inc.cf");
        assert_eq!(lexed.blocks[1].loc.line, 2);
        let e = lex("\n#include loop.cf\n", "m.cf", &loader)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("levels deep"), "{e}");
        let e = lex("\n\n#include nope.cf\n", "m.cf", &loader)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.starts_with("m.cf line 3: #include nope.cf: missing"),
            "{e}"
        );
    }

    #[test]
    fn errors_have_lines() {
        for (text, line) in [
            ("console x {\n rw a;\n", 1),
            ("console x { rw a; }\n}\n", 2),
            ("console x\n { exec \"abc;\n }\n", 2),
            ("\n\nconsole x ; exec a; }", 3),
            ("console x { a { }", 1),
        ] {
            let e = lex(text, "f.cf", &no_includes).err().unwrap().to_string();
            assert!(
                e.starts_with(&format!("f.cf line {line}:")),
                "{text:?}: {e}"
            );
        }
    }
}
