//! Logs on stderr, fit for pods and terminals: one format per stream (text or JSON lines,
//! and progress goes through the same log, see `progress`), colour only on a terminal,
//! JSON values of their own type (numbers as numbers, lists as arrays through [`json`]),
//! and the dependencies (AWS SDK, hyper, kube, rustls…) quiet unless asked for by name.

use std::fmt;
use std::io::{self, IsTerminal as _};
use std::sync::OnceLock;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime as _, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogFormat {
    /// `tracing`'s human-readable lines.
    Text,
    /// One JSON object per line (the layout of `tracing-subscriber`'s JSON formatter:
    /// `timestamp`, `level`, `fields`, `target`, `span`, `spans`), values typed.
    Json,
}

impl LogFormat {
    /// Text when stderr is a terminal, JSON otherwise (a pod's log, a file, a pipe).
    pub(crate) fn for_stderr() -> Self {
        if io::stderr().is_terminal() { Self::Text } else { Self::Json }
    }
}

/// The filter used when the one given cannot be parsed.
const DEFAULT_FILTER: &str = "warn";

/// The format [`init`] installed: what progress reports must be written as.
static INSTALLED: OnceLock<LogFormat> = OnceLock::new();

/// The format of the installed log, `None` before [`init`].
pub(crate) fn format() -> Option<LogFormat> {
    INSTALLED.get().copied()
}

/// Sends `tracing` to stderr in `format`, filtered by `filter` (the `LADDER_LOG` syntax of
/// [`directives`]). Colour only when stderr is a terminal and `NO_COLOR` is unset. An
/// unparsable filter is replaced by the default, with a warning saying so.
pub(crate) fn init(format: LogFormat, spec: &str) {
    let (filter, rejected) = match directives(spec).and_then(|d| EnvFilter::builder().parse(d)) {
        Ok(parsed) => (parsed, None),
        Err(e) => {
            let fallback = directives(DEFAULT_FILTER).expect("the default filter is valid");
            (EnvFilter::builder().parse_lossy(fallback), Some(e.to_string()))
        }
    };
    let colour = format == LogFormat::Text
        && io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    // A failed write to stderr (its reader went away) is not reported on stderr again.
    let layer = tracing_subscriber::fmt::layer().with_writer(StderrLines).with_ansi(colour).log_internal_errors(false);
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match format {
        LogFormat::Text => registry.with(layer).try_init(),
        LogFormat::Json => registry.with(layer.event_format(JsonLines).fmt_fields(JsonFields)).try_init(),
    };
    if installed.is_ok() {
        let _ = INSTALLED.set(format);
    }
    if let Some(error) = rejected {
        tracing::warn!(
            filter = spec,
            error,
            default = DEFAULT_FILTER,
            "LADDER_LOG is not a valid filter: using the default"
        );
    }
}

/// Turns a `LADDER_LOG` value into `EnvFilter` directives. ladder's own log is what a bare
/// level sets (`info` means `ladder=info`); every other crate logs errors only unless a
/// directive names it (`info,aws_smithy_runtime=debug`), so the AWS SDK's, hyper's or
/// kube's warnings do not bury ladder's one-line error. Progress reports
/// (`ladder::progress`, info) pass unless named: `--progress` turns them off.
pub(crate) fn directives(spec: &str) -> Result<String, tracing_subscriber::filter::ParseError> {
    let mut directives = vec!["error".to_owned()];
    let mut names_progress = false;
    for directive in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        if directive.parse::<LevelFilter>().is_ok() {
            directives.push(format!("ladder={directive}"));
        } else {
            // Checked here so that a mistake is reported as the user wrote it.
            directive.parse::<tracing_subscriber::filter::Directive>()?;
            names_progress |= directive.starts_with("ladder::progress");
            directives.push(directive.to_owned());
        }
    }
    if !names_progress {
        directives.push("ladder::progress=info".to_owned());
    }
    Ok(directives.join(","))
}

/// A field value written as its JSON form: an array or object in JSON logs (where
/// `tracing` alone would write the `Debug` text as a string), compact JSON in text logs.
/// `tracing::info!(chunks = logging::json(&done), "…")`.
pub(crate) fn json<T: serde::Serialize>(value: T) -> tracing::field::DebugValue<Json<T>> {
    tracing::field::debug(Json(value))
}

/// See [`json`].
pub(crate) struct Json<T>(T);

thread_local! {
    /// Set by [`Json`]'s `Debug` when it writes: tells the JSON visitor that the text it
    /// just formatted is JSON to embed rather than a string.
    static WROTE_JSON: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl<T: serde::Serialize> fmt::Debug for Json<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string(&self.0).map_err(|_| fmt::Error)?;
        WROTE_JSON.with(|w| w.set(true));
        f.write_str(&text)
    }
}

/// Collects fields as typed JSON values.
struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        let value = i64::try_from(value).map_or_else(|_| Value::String(value.to_string()), Value::from);
        self.0.insert(field.name().to_owned(), value);
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        let value = u64::try_from(value).map_or_else(|_| Value::String(value.to_string()), Value::from);
        self.0.insert(field.name().to_owned(), value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // The whole cause chain, as `error: {err:#}` prints it.
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        self.0.insert(field.name().to_owned(), Value::from(text));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        WROTE_JSON.with(|w| w.set(false));
        let text = format!("{value:?}");
        // A [`Json`] value nested in another `Debug` sets the flag too: only text that is
        // JSON as a whole is embedded.
        let embedded = WROTE_JSON.with(|w| w.replace(false)).then(|| serde_json::from_str(&text).ok()).flatten();
        self.0.insert(field.name().to_owned(), embedded.unwrap_or(Value::String(text)));
    }
}

/// Span fields as a JSON object (kept in the span's extensions, read by [`JsonLines`]).
struct JsonFields;

impl<'writer> FormatFields<'writer> for JsonFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut map = Map::new();
        fields.record(&mut JsonVisitor(&mut map));
        write!(writer, "{}", Value::Object(map))
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut map: Map<String, Value> = serde_json::from_str(&current.fields).unwrap_or_default();
        fields.record(&mut JsonVisitor(&mut map));
        current.fields = Value::Object(map).to_string();
        Ok(())
    }
}

/// One JSON object per event.
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'writer> FormatFields<'writer> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let mut fields = Map::new();
        event.record(&mut JsonVisitor(&mut fields));
        let mut line = Map::new();
        line.insert("timestamp".to_owned(), Value::String(timestamp));
        line.insert("level".to_owned(), Value::from(meta.level().as_str()));
        line.insert("fields".to_owned(), Value::Object(fields));
        line.insert("target".to_owned(), Value::from(meta.target()));
        if let Some(scope) = ctx.event_scope() {
            let spans: Vec<Value> = scope
                .from_root()
                .map(|span| {
                    let extensions = span.extensions();
                    let mut object: Map<String, Value> = extensions
                        .get::<FormattedFields<N>>()
                        .and_then(|f| serde_json::from_str(&f.fields).ok())
                        .unwrap_or_default();
                    object.insert("name".to_owned(), Value::from(span.name()));
                    Value::Object(object)
                })
                .collect();
            if let Some(current) = spans.last() {
                line.insert("span".to_owned(), current.clone());
            }
            line.insert("spans".to_owned(), Value::Array(spans));
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// stderr, one whole event per write, with the progress bars (if drawn) moved out of the way.
struct StderrLines;

impl<'a> MakeWriter<'a> for StderrLines {
    type Writer = StderrLine;
    fn make_writer(&'a self) -> Self::Writer {
        StderrLine
    }
}

struct StderrLine;

impl io::Write for StderrLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        crate::progress::clear_bars_while(|| io::stderr().write_all(buf))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_level_is_ladders_and_dependencies_log_errors_unless_named() {
        assert_eq!(directives("warn").unwrap(), "error,ladder=warn,ladder::progress=info");
        assert_eq!(
            directives("info, aws_config=debug").unwrap(),
            "error,ladder=info,aws_config=debug,ladder::progress=info"
        );
        assert_eq!(directives("ladder::progress=off,debug").unwrap(), "error,ladder::progress=off,ladder=debug");
        assert_eq!(directives("").unwrap(), "error,ladder::progress=info");
        assert!(directives("ladder=loud").is_err());
    }

    /// The JSON lines `emit` logs, parsed.
    fn json_lines_of(emit: impl FnOnce()) -> Vec<Value> {
        #[derive(Clone, Default)]
        struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl io::Write for Buffer {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let written = buffer.clone();
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(move || written.clone())
            .event_format(JsonLines)
            .fmt_fields(JsonFields);
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), emit);
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
    }

    #[test]
    fn json_values_keep_their_type() {
        let lines = json_lines_of(|| {
            let span = tracing::info_span!("chunk", chunk = 3u64, rungs = json(["v0", "v1"]));
            let _entered = span.enter();
            tracing::info!(
                chunks = json([0, 3]),
                seconds = 1.5,
                frames = 7u64,
                done = true,
                plain = ?vec![1],
                nested = ?Some(Json(1)),
                name = %"v0",
                "stored"
            );
        });
        let [line] = lines.as_slice() else { panic!("one line: {lines:?}") };
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["target"], "ladder::logging::tests");
        let fields = &line["fields"];
        assert_eq!(fields["message"], "stored");
        assert_eq!(fields["chunks"], serde_json::json!([0, 3]));
        assert_eq!(fields["seconds"], 1.5);
        assert_eq!(fields["frames"], 7);
        assert_eq!(fields["done"], true);
        assert_eq!(fields["plain"], "[1]", "plain Debug stays a string");
        assert_eq!(fields["nested"], "Some(1)", "only a value that is JSON as a whole is embedded");
        assert_eq!(fields["name"], "v0");
        assert_eq!(line["span"], serde_json::json!({"name": "chunk", "chunk": 3, "rungs": ["v0", "v1"]}));
        assert_eq!(line["spans"].as_array().unwrap().len(), 1);
    }
}
