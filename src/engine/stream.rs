//! One batch from a byte stream, never held parsed whole: blocks of whole lines are parsed on
//! every core while the previous block is planned (a two-stage pipeline: the planner is
//! single-threaded), then the batch is committed once. Used by `reportroot ingest` (files of
//! gigabytes: holding a 4 GB file's records took 3 GB) and by the HTTP ingest endpoint.

use std::io::Read;

use super::registry::{EngineError, Feeder, IngestOutcome, Registry};
use crate::ingest::{IngestError, Limits, Numbered, parse_block_pieces};
use crate::model::TenantId;

/// Block size for bulk loads from files: big enough that thread start-up per block is noise.
pub const BULK_BLOCK_BYTES: usize = 64 << 20;

/// How a stream is cut and parsed.
#[derive(Debug, Clone, Copy)]
pub struct StreamOptions {
    pub limits: Limits,
    /// Bytes read at a time; a block is this plus the rest of its last line.
    pub block_bytes: usize,
    /// Parser threads per block.
    pub threads: usize,
    /// Store rows while planning (see [`Registry::ingest_blocks`]): for bulk loads only.
    pub write_early: bool,
}

/// Runs `f` on a new thread whose scheduling priority is lowered (nice +10 on Linux; the
/// threads it starts inherit it), so that a big batch parsed and planned on every core
/// leaves the CPU to report calls first. The thread ends with `f`, so no priority has to be
/// restored (raising it back would need a privilege).
pub fn in_background<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        let worker = s.spawn(|| {
            lower_this_threads_priority();
            f()
        });
        match worker.join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

#[cfg(target_os = "linux")]
fn lower_this_threads_priority() {
    // SAFETY: setpriority takes plain integers and touches no memory of ours; with
    // PRIO_PROCESS and who = 0 it applies, on Linux, to the calling thread only (nice is a
    // per-thread attribute there). Failure only leaves the priority as it was.
    let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
}

#[cfg(not(target_os = "linux"))]
fn lower_this_threads_priority() {}

impl Registry {
    /// Ingests everything `input` yields as one atomic batch (see [`Registry::ingest`]).
    /// `progress` is told the bytes read so far after each read. Errors come in line
    /// order: a block's plan is checked before the next block's parse result.
    pub fn ingest_stream(
        &self,
        tid: &TenantId,
        mut input: impl Read,
        opts: &StreamOptions,
        audit: Option<&crate::store::AuditRecord>,
        mut progress: impl FnMut(u64),
    ) -> Result<IngestOutcome, EngineError> {
        let StreamOptions {
            limits,
            block_bytes,
            threads,
            write_early,
        } = *opts;
        self.ingest_blocks(tid, write_early, audit, |planner| {
            let block_bytes = block_bytes.max(1);
            let mut records = 0usize;
            let mut first_line = 1usize;
            // Two byte buffers reused for the whole stream: `cur` is read into and parsed,
            // `spare` takes the unfinished last line for the next round. Fresh buffers per
            // block cost more in page faults than the parsing they fed.
            let mut cur: Vec<u8> = Vec::with_capacity(block_bytes * 2);
            let mut spare: Vec<u8> = Vec::with_capacity(block_bytes * 2);
            let mut total = 0u64;
            let mut pending: Option<Vec<Vec<Numbered>>> = None;
            loop {
                let old = cur.len();
                cur.resize(old + block_bytes, 0);
                let read = match input.read(&mut cur[old..]) {
                    Ok(n) => n,
                    Err(e) => return Err(EngineError::Read(e)),
                };
                cur.truncate(old + read);
                total += read as u64;
                progress(total);
                let end = if read == 0 {
                    cur.len()
                } else {
                    match memchr::memrchr(b'\n', &cur) {
                        Some(i) => i + 1,
                        // One unfinished line: keep reading, but not past the line limit
                        // (a file with no line ends must not fill memory).
                        None if cur.len() > limits.max_line_bytes => {
                            return Err(IngestError::Line {
                                line: first_line,
                                message: format!(
                                    "the line is longer than the limit of {} bytes",
                                    limits.max_line_bytes
                                ),
                            }
                            .into());
                        }
                        None => continue,
                    }
                };
                spare.clear();
                spare.extend_from_slice(&cur[end..]);
                cur.truncate(end);
                let block = &cur[..];
                let lines = memchr::memchr_iter(b'\n', block).count()
                    + usize::from(!block.is_empty() && !block.ends_with(b"\n"));
                let start = first_line;
                let parsed = std::thread::scope(|s| -> Result<_, EngineError> {
                    let parsing = s.spawn(|| parse_block_pieces(block, start, &limits, threads));
                    if let Some(prev) = pending.take() {
                        feed_pieces(planner, &prev)?;
                        // Freeing a block's records (millions of small strings) is left
                        // to another thread: the planner is the pipeline's serial stage.
                        s.spawn(move || drop(prev));
                    }
                    parsing
                        .join()
                        .unwrap_or_else(|_| {
                            Err(IngestError::Line {
                                line: start,
                                message: "the parser failed".into(),
                            })
                        })
                        .map_err(EngineError::from)
                })?;
                records += parsed.iter().map(Vec::len).sum::<usize>();
                if records > limits.max_records {
                    return Err(IngestError::TooManyRecords {
                        max: limits.max_records,
                    }
                    .into());
                }
                pending = Some(parsed);
                first_line += lines;
                std::mem::swap(&mut cur, &mut spare);
                if read == 0 {
                    break;
                }
            }
            if let Some(last) = pending.take() {
                feed_pieces(planner, &last)?;
            }
            Ok(records)
        })
    }
}

/// Plans one parsed block, whose records come as the parser threads' pieces, in order.
fn feed_pieces(feeder: &mut Feeder<'_, '_>, pieces: &[Vec<Numbered>]) -> Result<(), EngineError> {
    for piece in pieces {
        feeder.feed(piece)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::ingest::parse_batch;
    use crate::store::SqliteStore;

    const GOOD: &str = concat!(
        "{\"type\":\"user\",\"id\":\"u1\",\"userPrincipalName\":\"a@x\",\"displayName\":\"A\"}\n",
        "\n",
        "{\"type\":\"serviceLicense\",\"userId\":\"u1\",\"service\":\"teams\",\"assignedDate\":\"2026-01-01\"}\r\n",
        "{\"type\":\"user\",\"id\":\"u2\",\"userPrincipalName\":\"b@x\",\"displayName\":\"B\"}\n",
        "{\"type\":\"activity\",\"userId\":\"u2\",\"service\":\"teams\",\"dates\":[\"2026-02-01\",\"2026-02-02\"]}\n",
        "{\"type\":\"activity\",\"userId\":\"u1\",\"service\":\"teams\",\"date\":\"2026-02-03\"}",
    );

    fn run(text: &str, block_bytes: usize, write_early: bool) -> Result<IngestOutcome, String> {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::new(Arc::new(SqliteStore::open(dir.path()).unwrap()), None);
        let tid = TenantId::parse("t1").unwrap();
        let opts = StreamOptions {
            limits: Limits::default(),
            block_bytes,
            threads: 2,
            write_early,
        };
        registry
            .ingest_stream(&tid, text.as_bytes(), &opts, None, |_| {})
            .map_err(|e| e.to_string())
    }

    #[test]
    fn block_size_changes_neither_result_nor_first_error() {
        let whole = parse_batch(GOOD.as_bytes(), &Limits::default()).unwrap();
        for block in [1, 2, 7, 64, 4096] {
            for early in [false, true] {
                let o = run(GOOD, block, early).unwrap();
                assert_eq!(o.ingested, whole.len(), "block {block}");
                assert_eq!(
                    o.refresh_date.map(|d| d.to_string()).as_deref(),
                    Some("2026-02-03")
                );
            }
        }
        // A bad line after good ones, and an unknown user after that: the parse error on
        // line 4 comes first, whatever the cut.
        let bad = GOOD.replacen("\"u2\",\"userPrincipalName\"", "5,\"userPrincipalName\"", 1);
        let unknown = format!(
            "{bad}\n{{\"type\":\"activity\",\"userId\":\"nobody\",\"service\":\"teams\",\"date\":\"2026-02-03\"}}\n"
        );
        for block in [1, 3, 50, 4096] {
            for early in [false, true] {
                let e = run(&unknown, block, early).unwrap_err();
                assert!(e.starts_with("line 4: field 'id'"), "block {block}: {e}");
            }
        }
        // An unknown user alone: named by its line, found by the planner.
        let late = format!(
            "{GOOD}\n{{\"type\":\"activity\",\"userId\":\"nobody\",\"service\":\"teams\",\"date\":\"2026-02-03\"}}\n"
        );
        for block in [1, 5, 4096] {
            let e = run(&late, block, true).unwrap_err();
            assert!(
                e.starts_with("line 7: field 'userId'"),
                "block {block}: {e}"
            );
        }
    }

    #[test]
    fn a_stream_without_line_ends_stops_at_the_line_limit() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::new(Arc::new(SqliteStore::open(dir.path()).unwrap()), None);
        let tid = TenantId::parse("t1").unwrap();
        let opts = StreamOptions {
            limits: Limits {
                max_line_bytes: 1000,
                ..Limits::default()
            },
            block_bytes: 64,
            threads: 1,
            write_early: false,
        };
        // An endless source of bytes with no '\n': must end with an error, not fill memory.
        let endless = std::io::repeat(b'x');
        let e = registry
            .ingest_stream(&tid, endless, &opts, None, |_| {})
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("longer than the limit of 1000 bytes"),
            "{e}"
        );
    }
}
