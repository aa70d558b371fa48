//! Argument templates: `{device}`, `{severity}`, `{message}`, `{source}`, `{time}`, `{id}`,
//! `{count}`; `{{` and `}}` are literal braces. Parsed once at load time.

use mo_core::event::Event;

/// One field of an event a template can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Device,
    Severity,
    Message,
    Source,
    Time,
    Id,
    Count,
}

impl Field {
    const NAMES: [(&'static str, Field); 7] = [
        ("device", Field::Device),
        ("severity", Field::Severity),
        ("message", Field::Message),
        ("source", Field::Source),
        ("time", Field::Time),
        ("id", Field::Id),
        ("count", Field::Count),
    ];
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(Field),
}

/// What is wrong with a template: the template as written and the reason (an unknown field, a
/// lone brace, with its byte offset).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{template}`: {reason}")]
pub struct TemplateError {
    /// The template as written.
    pub template: String,
    /// What is wrong, and where.
    pub reason: String,
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parse a template; the error says what is wrong (an unknown field, a lone brace).
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let fail = |reason: String| TemplateError {
            template: text.to_owned(),
            reason,
        };
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|&(_, n)| n) == Some('{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().map(|&(_, n)| n) == Some('}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let rest = &text[at + 1..];
                    let end = rest
                        .find('}')
                        .ok_or_else(|| fail(format!("`{{` at byte {at} is not closed")))?;
                    let name = &rest[..end];
                    let field = Field::NAMES
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|&(_, f)| f)
                        .ok_or_else(|| {
                            fail(format!(
                                "unknown field `{{{name}}}` (known: device, severity, message, \
                                 source, time, id, count)"
                            ))
                        })?;
                    for _ in 0..=name.chars().count() {
                        chars.next();
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Field(field));
                }
                '}' => return Err(fail(format!("lone `}}` at byte {at} (write `}}}}`)"))),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template { parts })
    }

    /// The template with the event's fields filled in.
    pub fn render(&self, event: &Event) -> String {
        self.render_with(event, |value, out| out.push_str(value))
    }

    /// The template with the event's fields filled in, each through `escape` (which appends the
    /// field's value, escaped, to the output); the literal text is kept as written.
    pub fn render_with(&self, event: &Event, escape: impl Fn(&str, &mut String)) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Field(Field::Device) => escape(&event.device, &mut out),
                Part::Field(Field::Severity) => escape(event.severity.as_str(), &mut out),
                Part::Field(Field::Message) => escape(&event.message, &mut out),
                Part::Field(Field::Source) => escape(event.source.as_str(), &mut out),
                Part::Field(Field::Time) => escape(&super::rfc3339(event.time_ns), &mut out),
                Part::Field(Field::Id) => escape(&event.id.to_string(), &mut out),
                Part::Field(Field::Count) => escape(&event.count.to_string(), &mut out),
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use mo_core::event::EventSource;
    use mo_core::scan::Severity;
    use rand::{Rng, SeedableRng};

    use super::*;

    fn event() -> Event {
        Event {
            id: 12,
            time_ns: 1_795_000_000_123_456_789,
            last_ns: 0,
            device: "web1".into(),
            source: EventSource::Power,
            severity: Severity::Warning,
            message: "it {broke}".into(),
            context: vec![],
            count: 3,
            suppressed: false,
            acked_by: None,
            acked_ns: None,
            node: None,
        }
    }

    #[test]
    fn renders_every_field_and_escapes() {
        let t = Template::parse("{{{id}}} {device}/{severity}/{source} {message} x{count} {time}")
            .unwrap();
        assert_eq!(
            t.render(&event()),
            "{12} web1/warning/power it {broke} x3 2026-11-18T11:06:40.123456Z"
        );
        assert_eq!(Template::parse("plain").unwrap().render(&event()), "plain");
        assert_eq!(Template::parse("").unwrap().render(&event()), "");
    }

    #[test]
    fn refuses_unknown_fields_and_lone_braces() {
        for bad in ["{devcie}", "{device", "x}", "{}", "{ device}"] {
            let err = Template::parse(bad).unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn random_templates_never_panic() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let alphabet: Vec<char> = "{}devicmsagtx é".chars().collect();
        for _ in 0..20_000 {
            let len = rng.random_range(0..24);
            let text: String = (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            if let Ok(t) = Template::parse(&text) {
                let _ = t.render(&event());
            }
        }
    }
}
