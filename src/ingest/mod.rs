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

/// Parses a block of whole lines on `threads` threads, numbering lines from
/// `first_line`. The result is the same as [`parse_batch`] (same records, same first error).
pub fn parse_block(
    bytes: &[u8],
    first_line: usize,
    limits: &Limits,
    threads: usize,
) -> Result<Vec<Numbered>, IngestError> {
    let mut out = Vec::new();
    for piece in parse_block_pieces(bytes, first_line, limits, threads)? {
        out.extend(piece);
    }
    Ok(out)
}

/// [`parse_block`] without joining the threads' results: the records in order as up to
/// `threads` consecutive pieces (saves copying a block's records once more).
pub fn parse_block_pieces(
    bytes: &[u8],
    first_line: usize,
    limits: &Limits,
    threads: usize,
) -> Result<Vec<Vec<Numbered>>, IngestError> {
    let threads = threads.clamp(1, 64);
    // Split at line ends into `threads` pieces of about equal size.
    let mut cuts = vec![0usize];
    for k in 1..threads {
        let target = bytes.len() * k / threads;
        let from = target.max(*cuts.last().unwrap_or(&0));
        match memchr::memchr(b'\n', &bytes[from..]) {
            Some(i) => cuts.push(from + i + 1),
            None => break,
        }
    }
    cuts.push(bytes.len());
    cuts.dedup();
    let pieces: Vec<(&[u8], usize)> = {
        let mut line = first_line;
        cuts.windows(2)
            .map(|w| {
                let piece = &bytes[w[0]..w[1]];
                let start = line;
                line += memchr::memchr_iter(b'\n', piece).count();
                (piece, start)
            })
            .collect()
    };
    let results: Vec<Result<Vec<Numbered>, IngestError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = pieces
            .iter()
            .map(|(piece, start)| {
                scope.spawn(move || {
                    // About one record per 300 bytes on bulk loads: growing the list by
                    // doubling copied and faulted in each block's records more than once.
                    let mut out = Vec::with_capacity(piece.len() / 256);
                    let mut parser = BatchParser::new(Limits {
                        max_records: usize::MAX,
                        ..*limits
                    });
                    let piece = piece.strip_suffix(b"\n").unwrap_or(piece);
                    if piece.is_empty() {
                        return Ok(out);
                    }
                    let mut from = 0;
                    for (i, end) in memchr::memchr_iter(b'\n', piece)
                        .chain(std::iter::once(piece.len()))
                        .enumerate()
                    {
                        if let Some(n) = parser.push(start + i, &piece[from..end])? {
                            out.push(n);
                        }
                        from = end + 1;
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(IngestError::Line {
                        line: first_line,
                        message: "the parser failed".into(),
                    })
                })
            })
            .collect()
    });
    let mut out = Vec::with_capacity(results.len());
    let mut records = 0usize;
    for r in results {
        // The first failing piece holds the batch's first bad line.
        let piece = r?;
        records += piece.len();
        if records > limits.max_records {
            return Err(IngestError::TooManyRecords {
                max: limits.max_records,
            });
        }
        out.push(piece);
    }
    Ok(out)
}

/// Incremental form of [`parse_batch`] for streaming a file line by line.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_parse_matches_sequential() {
        let mut text = String::new();
        for i in 0..500 {
            text.push_str(&format!("{{\"type\":\"user\",\"id\":\"u{i}\",\"userPrincipalName\":\"u@x\",\"displayName\":\"\"}}\n"));
            if i % 7 == 0 {
                text.push('\n');
            }
        }
        let seq = parse_batch(text.as_bytes(), &Limits::default()).unwrap();
        for threads in 1..5 {
            assert_eq!(
                parse_block(text.as_bytes(), 1, &Limits::default(), threads).unwrap(),
                seq
            );
        }
        let bad = text.replacen("\"u300\"", "5", 1);
        let want = parse_batch(bad.as_bytes(), &Limits::default()).unwrap_err();
        assert_eq!(
            parse_block(bad.as_bytes(), 1, &Limits::default(), 3).unwrap_err(),
            want
        );
    }
}

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
