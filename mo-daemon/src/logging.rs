//! The daemon's own diagnostics on stderr: `--log-format text` (one line per record) or `json`
//! (one JSON object per line: `timestamp`, `level`, `target`, `spans`, `fields`).
//!
//! The binary crate is named `mod`, a keyword, so Rust names its module paths `r#mod::…`; the
//! records say `mod::…` instead, and a `--log` filter may say `mod` (or `mo_daemon`) for them.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// How records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `2026-01-02T03:04:05.123456Z  INFO mod::ssh: password login user=alice`.
    Text,
    /// `{"timestamp":"…","level":"INFO","target":"mod::ssh","fields":{"message":"password login","user":"alice"}}`.
    Json,
}

/// The daemon's module paths as Rust names them.
const RAW_CRATE: &str = "r#mod";

/// `target` as the records show it: `mod::…` for the daemon's own modules.
pub fn shown_target(target: &str) -> &str {
    match target.strip_prefix("r#") {
        Some(rest) if target == RAW_CRATE || target.starts_with("r#mod::") => rest,
        _ => target,
    }
}

/// A `--log` filter with `mod` (or `mo_daemon`) directives aimed at the daemon's real module
/// paths (`r#mod`).
pub fn filter_directives(filter: &str) -> String {
    filter
        .split(',')
        .map(|d| {
            let d = d.trim();
            for alias in ["mod", "mo_daemon"] {
                if let Some(rest) = d.strip_prefix(alias)
                    && (rest.is_empty()
                        || rest.starts_with("::")
                        || rest.starts_with('=')
                        || rest.starts_with('['))
                {
                    return format!("{RAW_CRATE}{rest}");
                }
            }
            d.to_owned()
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Install the subscriber: `filter` (tracing syntax; `info` when it does not parse) and `format`.
pub fn init(filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter_directives(filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .event_format(Format { format })
        .init();
}

/// The record format.
struct Format {
    format: LogFormat,
}

/// The time now, RFC 3339 in UTC.
fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl<S, N> FormatEvent<S, N> for Format
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let target = shown_target(meta.target());
        match self.format {
            LogFormat::Text => {
                write!(writer, "{} {:>5} ", now(), meta.level())?;
                if let Some(scope) = ctx.event_scope() {
                    for span in scope.from_root() {
                        write!(writer, "{}", span.name())?;
                        let ext = span.extensions();
                        if let Some(fields) = ext.get::<FormattedFields<N>>()
                            && !fields.is_empty()
                        {
                            write!(writer, "{{{fields}}}")?;
                        }
                        write!(writer, ":")?;
                    }
                    write!(writer, " ")?;
                }
                write!(writer, "{target}: ")?;
                ctx.field_format().format_fields(writer.by_ref(), event)?;
                writeln!(writer)
            }
            LogFormat::Json => {
                let mut fields = JsonFields::default();
                event.record(&mut fields);
                let spans: Vec<serde_json::Value> = ctx
                    .event_scope()
                    .map(|scope| {
                        scope
                            .from_root()
                            .map(|s| serde_json::Value::String(s.name().to_owned()))
                            .collect()
                    })
                    .unwrap_or_default();
                let mut record = serde_json::Map::new();
                record.insert("timestamp".into(), now().into());
                record.insert("level".into(), meta.level().as_str().into());
                record.insert("target".into(), target.into());
                if !spans.is_empty() {
                    record.insert("spans".into(), spans.into());
                }
                record.insert("fields".into(), fields.0.into());
                writeln!(writer, "{}", serde_json::Value::Object(record))
            }
        }
    }
}

/// An event's fields as JSON values.
#[derive(Default)]
struct JsonFields(serde_json::Map<String, serde_json::Value>);

impl Visit for JsonFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daemon_is_named_mod() {
        assert_eq!(shown_target("r#mod::ssh"), "mod::ssh");
        assert_eq!(shown_target("r#mod"), "mod");
        assert_eq!(shown_target("r#model"), "r#model");
        assert_eq!(shown_target("mo_core::scan"), "mo_core::scan");
        assert_eq!(
            filter_directives("info,mod::ssh=debug, mo_daemon=trace,module=warn,mod"),
            "info,r#mod::ssh=debug,r#mod=trace,module=warn,r#mod"
        );
    }
}
