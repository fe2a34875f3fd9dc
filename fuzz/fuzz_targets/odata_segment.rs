//! The OData report segment parser: any string must parse or give a classified error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = reportroot::api::odata::parse_report_segment(s);
    }
});
