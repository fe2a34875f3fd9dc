//! The ingest contract's parser: NDJSON bytes in, validated [`Record`]s out, or the first bad
//! line with its number and field. Pure: it knows nothing of stored state (references to users
//! defined in earlier batches are checked by the engine), of HTTP or of SQL.

mod line;

pub use line::parse_line;

use crate::model::Record;

/// Input limits applied while parsing (the HTTP layer applies the body-size limit itself).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest accepted line, in bytes, without its line end.
    pub max_line_bytes: usize,
    /// Most records in one batch.
    pub max_records: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line_bytes: 1 << 20,
            max_records: 50_000_000,
        }
    }
}

/// One parsed line with its 1-based line number in the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Numbered {
    pub line: usize,
    pub record: Record,
}

/// Why a batch was refused. Always names the line; names the field where one is at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("line {line}: field '{field}': {message}")]
    Field {
        line: usize,
        field: &'static str,
        message: String,
    },
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("the batch has more than {max} records")]
    TooManyRecords { max: usize },
}

impl IngestError {
    pub fn line(&self) -> Option<usize> {
        match self {
            IngestError::Field { line, .. } | IngestError::Line { line, .. } => Some(*line),
            IngestError::TooManyRecords { .. } => None,
        }
    }
}

/// Parses a whole batch. Blank lines (and a `\r` before a `\n`) are skipped but still counted
/// in line numbers.
pub fn parse_batch(bytes: &[u8], limits: &Limits) -> Result<Vec<Numbered>, IngestError> {
    let mut out = Vec::new();
    let mut parser = BatchParser::new(*limits);
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        if let Some(n) = parser.push(i + 1, raw)? {
            out.push(n);
        }
    }
    Ok(out)
}

/// Incremental form of [`parse_batch`] for streaming a file line by line.
#[derive(Debug)]
pub struct BatchParser {
    limits: Limits,
    records: usize,
}

impl BatchParser {
    pub fn new(limits: Limits) -> Self {
        BatchParser { limits, records: 0 }
    }

    /// Parses line number `line` (1-based). `raw` may end with `\r` (and `\n`).
    pub fn push(&mut self, line: usize, raw: &[u8]) -> Result<Option<Numbered>, IngestError> {
        let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.len() > self.limits.max_line_bytes {
            return Err(IngestError::Line {
                line,
                message: format!(
                    "the line is {} bytes long; the limit is {} bytes",
                    raw.len(),
                    self.limits.max_line_bytes
                ),
            });
        }
        let Some(record) = parse_line(line, raw)? else {
            return Ok(None);
        };
        self.records += 1;
        if self.records > self.limits.max_records {
            return Err(IngestError::TooManyRecords {
                max: self.limits.max_records,
            });
        }
        Ok(Some(Numbered { line, record }))
    }
}
