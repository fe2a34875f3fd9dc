//! Bearer-token verification: any string must verify or be refused, never panic. A tenant
//! of the built-in issuer is set up once in a temporary data dir.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use reportroot::auth::{Authority, Verifier};

struct Env {
    rt: tokio::runtime::Runtime,
    verifier: Verifier,
    _dir: tempfile::TempDir,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let authority = Authority::open(dir.path()).expect("authority");
        let verifier = rt.block_on(Verifier::new(authority, None, None)).expect("verifier");
        Env { rt, verifier, _dir: dir }
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let e = env();
        let _ = e.rt.block_on(e.verifier.verify(s, Some("http://127.0.0.1:1")));
        let _ = jsonwebtoken::decode_header(s);
    }
});
