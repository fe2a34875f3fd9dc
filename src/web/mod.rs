//! The browser dashboard's static files, embedded in the binary at compile time.
//!
//! The sources, the npm lockfile and the build script live in `web/`; the built files in
//! `web/dist/` are committed, so `cargo build` needs neither npm nor a network. `index.html`
//! refers to the other files as `/assets/NAME?v=HASH` (the build script writes the hash), so
//! they may be cached for good while the page itself is revalidated on every load.

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// The name under `/assets/` (the page itself is `index.html`).
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

static INDEX: Asset = Asset {
    name: "index.html",
    content_type: "text/html; charset=utf-8",
    bytes: include_bytes!("../../web/dist/index.html"),
};

static ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../web/dist/app.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../web/dist/app.css"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../../web/dist/favicon.svg"),
    },
];

/// The dashboard page.
pub fn index() -> &'static Asset {
    &INDEX
}

/// A file under `/assets/`.
pub fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

impl Asset {
    /// A strong entity tag: the first 128 bits of the bytes' SHA-256, computed once.
    pub fn etag(&'static self) -> &'static str {
        static TAGS: OnceLock<Vec<(&'static str, String)>> = OnceLock::new();
        let tags = TAGS.get_or_init(|| {
            std::iter::once(&INDEX)
                .chain(ASSETS.iter())
                .map(|a| {
                    let h = Sha256::digest(a.bytes);
                    let hex: String = h[..16].iter().map(|b| format!("{b:02x}")).collect();
                    (a.name, format!("\"{hex}\""))
                })
                .collect()
        });
        tags.iter()
            .find(|(n, _)| *n == self.name)
            .map_or("\"\"", |(_, t)| t.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_links_every_asset_it_needs() {
        let page = std::str::from_utf8(index().bytes).expect("utf8 page");
        for a in ["app.js", "app.css"] {
            assert!(page.contains(&format!("/assets/{a}?v=")), "{a}");
            assert!(asset(a).is_some());
        }
        assert!(
            !page.contains("<script>"),
            "no inline script: the CSP forbids it"
        );
        assert_ne!(asset("app.js").map(|a| a.etag()), Some(index().etag()));
    }
}
