//! Message templates: parsed and checked against their regex once, rendered per match.

use regex::bytes::{Captures, Regex};

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Group(usize),
    Device,
    Pattern,
    Severity,
    Line,
}

/// A parsed message template (syntax in [`super::Pattern`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Template {
    parts: Vec<Part>,
}

/// What a rendered message is built from.
pub(super) struct RenderInput<'a> {
    pub(super) captures: Option<&'a Captures<'a>>,
    pub(super) line: &'a str,
    pub(super) device: &'a str,
    pub(super) pattern: &'a str,
    pub(super) severity: &'a str,
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Resolves a group reference (`1` or `name`) against `regex`.
fn resolve(reference: &str, regex: &Regex) -> Result<usize, String> {
    if reference.is_empty() {
        return Err("empty group reference".to_owned());
    }
    if reference.bytes().all(|b| b.is_ascii_digit()) {
        let index: usize = reference
            .parse()
            .map_err(|_| format!("group number {reference} is too large"))?;
        if index >= regex.captures_len() {
            return Err(format!(
                "group ${index} does not exist (the regex has {} groups)",
                regex.captures_len().saturating_sub(1)
            ));
        }
        return Ok(index);
    }
    regex
        .capture_names()
        .position(|name| name == Some(reference))
        .ok_or_else(|| format!("the regex has no group named `{reference}`"))
}

impl Template {
    /// Parses `message`, checking every group reference against `regex`.
    pub(super) fn parse(message: &str, regex: &Regex) -> Result<Template, String> {
        if message.is_empty() {
            return Ok(Template {
                parts: vec![Part::Line],
            });
        }
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = message;
        while let Some(c) = rest.chars().next() {
            if c == '{' {
                let known = [
                    ("{device}", Part::Device),
                    ("{pattern}", Part::Pattern),
                    ("{severity}", Part::Severity),
                ];
                if let Some((key, part)) = known.into_iter().find(|(key, _)| rest.starts_with(key))
                {
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(part);
                    rest = rest.get(key.len()..).unwrap_or("");
                    continue;
                }
            }
            if c != '$' {
                literal.push(c);
                rest = rest.get(c.len_utf8()..).unwrap_or("");
                continue;
            }
            let after = rest.get(1..).unwrap_or("");
            let (reference, consumed) = if after.starts_with('$') {
                literal.push('$');
                rest = after.get(1..).unwrap_or("");
                continue;
            } else if let Some(braced) = after.strip_prefix('{') {
                let end = braced
                    .find('}')
                    .ok_or_else(|| "`${` without a closing `}`".to_owned())?;
                (braced.get(..end).unwrap_or(""), 2 + end + 1)
            } else if after.starts_with(|c: char| c.is_ascii_digit()) {
                let end = after
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(after.len());
                (after.get(..end).unwrap_or(""), 1 + end)
            } else if after.starts_with(is_ident) {
                let end = after.find(|c| !is_ident(c)).unwrap_or(after.len());
                (after.get(..end).unwrap_or(""), 1 + end)
            } else {
                return Err(
                    "`$` must be followed by a group number or name, `{name}` or `$`".to_owned(),
                );
            };
            let index = resolve(reference, regex)?;
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            parts.push(Part::Group(index));
            rest = rest.get(consumed..).unwrap_or("");
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template { parts })
    }

    /// Whether rendering needs the regex's capture groups.
    pub(super) fn needs_captures(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Group(_)))
    }

    /// Renders the message.
    pub(super) fn render(&self, input: &RenderInput<'_>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Group(index) => {
                    if let Some(group) = input.captures.and_then(|c| c.get(*index)) {
                        out.push_str(&String::from_utf8_lossy(group.as_bytes()));
                    }
                }
                Part::Device => out.push_str(input.device),
                Part::Pattern => out.push_str(input.pattern),
                Part::Severity => out.push_str(input.severity),
                Part::Line => out.push_str(input.line),
            }
        }
        out
    }
}
