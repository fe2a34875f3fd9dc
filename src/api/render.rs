//! Graph's wire formats for any catalogue report: CSV (UTF-8 BOM, RFC 4180, CRLF, `True`/
//! `False`, empty for a missing date, `+`-joined lists) and the beta JSON entries (nested
//! where the catalogue says so, `null` for a missing date). Both are [`Sink`]s, so a report
//! streams straight into them. Only the API layer knows these shapes.

use std::fmt::Write as _;
use std::io::Write;

use serde_json::{Map, Value};

use crate::reports::{Cell, ReportDef, Rows, Sink};

pub const BOM: &[u8] = b"\xEF\xBB\xBF";

fn csv_text<'c>(cell: &'c Cell<'_>, buf: &'c mut String) -> &'c str {
    buf.clear();
    match cell {
        Cell::Int(n) => {
            let _ = write!(buf, "{n}");
        }
        Cell::Period(n) => {
            let _ = write!(buf, "{n}");
        }
        Cell::Text(t) => return t,
        Cell::Date(Some(d)) => buf.push_str(std::str::from_utf8(&d.iso_bytes()).unwrap_or("")),
        Cell::Date(None) => {}
        Cell::Bool(true) => buf.push_str("True"),
        Cell::Bool(false) => buf.push_str("False"),
        Cell::List(items) => {
            for (i, t) in items.iter().enumerate() {
                if i > 0 {
                    buf.push('+');
                }
                buf.push_str(t);
            }
        }
    }
    buf
}

/// Writes a report as CSV into `W`: the BOM and header on creation, a record per row.
pub struct CsvSink<W: Write> {
    w: csv::Writer<W>,
    buf: String,
    err: Option<csv::Error>,
}

impl<W: Write> CsvSink<W> {
    pub fn new(out: W, def: &ReportDef) -> CsvSink<W> {
        let mut out = out;
        let err = out.write_all(BOM).err().map(csv::Error::from);
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(out);
        let err = err.or_else(|| w.write_record(def.columns.iter().map(|c| c.csv)).err());
        CsvSink {
            w,
            buf: String::new(),
            err,
        }
    }

    /// Flushes and hands back the writer, or the first error met.
    pub fn finish(self) -> Result<W, std::io::Error> {
        if let Some(e) = self.err {
            return Err(std::io::Error::other(e));
        }
        self.w.into_inner().map_err(|e| e.into_error())
    }
}

impl<W: Write> Sink for CsvSink<W> {
    fn row(&mut self, _entity: u32, cells: &[Cell<'_>]) {
        if self.err.is_some() {
            return;
        }
        for c in cells {
            let text = csv_text(c, &mut self.buf);
            if let Err(e) = self.w.write_field(text) {
                self.err = Some(e);
                return;
            }
        }
        if let Err(e) = self.w.write_record(None::<&[u8]>) {
            self.err = Some(e);
        }
    }

    fn entity_done(&mut self) -> bool {
        self.err.is_none()
    }
}

/// Renders a whole report held in memory as CSV bytes.
pub fn csv_bytes(def: &ReportDef, rows: &Rows) -> Vec<u8> {
    let mut sink = CsvSink::new(Vec::new(), def);
    for r in &rows.0 {
        sink.row(0, r);
    }
    // Writing to a Vec cannot fail.
    sink.finish().unwrap_or_default()
}

fn json_value(cell: &Cell<'_>) -> Value {
    match cell {
        Cell::Int(n) => Value::from(*n),
        Cell::Period(n) => Value::from(n.to_string()),
        Cell::Text(t) => Value::from(t.as_ref()),
        Cell::Date(Some(d)) => Value::from(d.to_string()),
        Cell::Date(None) => Value::Null,
        Cell::Bool(b) => Value::from(*b),
        Cell::List(items) => Value::Array(items.iter().map(|t| Value::from(t.as_ref())).collect()),
    }
}

/// Collects JSON entries, one per entity (nested per the catalogue), up to `limit` of them;
/// the entity that would have been one too many is remembered as where the next page starts.
pub struct JsonSink {
    def: &'static ReportDef,
    entries: Vec<Value>,
    current: Option<u32>,
    limit: usize,
    /// The first entity of the next page, once the page is full and more remain.
    pub next: Option<u32>,
}

impl JsonSink {
    pub fn new(def: &'static ReportDef, limit: usize) -> JsonSink {
        JsonSink {
            def,
            entries: Vec::new(),
            current: None,
            limit,
            next: None,
        }
    }

    pub fn into_entries(self) -> Vec<Value> {
        self.entries
    }
}

impl Sink for JsonSink {
    fn entities_wanted(&self) -> Option<usize> {
        // One more than the page holds: that one is where the next page starts.
        Some((self.limit + 1).saturating_sub(self.entries.len()))
    }

    fn row(&mut self, entity: u32, cells: &[Cell<'_>]) {
        if self.next.is_some() {
            return;
        }
        let columns = self.def.columns;
        let nest = self.def.nest;
        if self.current != Some(entity) {
            if self.entries.len() >= self.limit {
                self.next = Some(entity);
                return;
            }
            self.current = Some(entity);
            let own = nest.map_or(cells.len(), |n| n.from);
            let mut m = Map::new();
            for (c, cell) in columns.iter().zip(cells).take(own) {
                m.insert(c.json.into(), json_value(cell));
            }
            if let Some(n) = nest {
                m.insert(n.name.into(), Value::Array(Vec::new()));
            }
            self.entries.push(Value::Object(m));
        }
        if let Some(n) = nest {
            let mut inner = Map::new();
            for (c, cell) in columns.iter().zip(cells).skip(n.from) {
                inner.insert(c.json.into(), json_value(cell));
            }
            if let Some(Value::Array(list)) = self
                .entries
                .last_mut()
                .and_then(|e| e.as_object_mut())
                .and_then(|m| m.get_mut(n.name))
            {
                list.push(Value::Object(inner));
            }
        }
    }

    fn entity_done(&mut self) -> bool {
        self.next.is_none()
    }
}

/// JSON entries of a whole report held in memory.
pub fn json_entries(def: &'static ReportDef, rows: &Rows) -> Vec<Value> {
    let mut sink = JsonSink::new(def, usize::MAX);
    for (i, r) in rows.0.iter().enumerate() {
        sink.row(i as u32, r);
    }
    sink.into_entries()
}
