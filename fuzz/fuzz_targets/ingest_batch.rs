//! The NDJSON ingest parser, sequential and parallel: any bytes must parse or be refused
//! naming a line, and both paths must agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reportroot::ingest::{Limits, parse_batch, parse_block};

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_line_bytes: 1 << 16, max_records: 10_000 };
    let seq = parse_batch(data, &limits);
    let par = parse_block(data, 1, &limits, 3);
    assert_eq!(seq, par);
});
