//! Request throttling as Graph applies it to report calls: sliding 600-second windows,
//! counted per report function (whatever its period) per app per tenant, and per tenant.
//! Pure bookkeeping over [`Instant`]s: no HTTP types; the API turns a refusal into a 429.

use std::collections::{HashMap, VecDeque};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Graph's window for report throttling.
pub const WINDOW: Duration = Duration::from_secs(600);

/// Limits per window. `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// CSV report calls per app per tenant.
    pub csv_per_app: Option<u32>,
    /// CSV report calls per tenant (all apps).
    pub csv_per_tenant: Option<u32>,
    /// JSON report calls per app per tenant.
    pub json_per_app: Option<u32>,
}

impl Limits {
    /// Graph's published limits: 14 CSV calls per app per tenant, 40 per tenant, 100 JSON.
    pub const GRAPH: Limits = Limits {
        csv_per_app: Some(14),
        csv_per_tenant: Some(40),
        json_per_app: Some(100),
    };

    pub fn is_off(&self) -> bool {
        *self == Limits::default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a throttle setting: use off, graph, or csv=N,tenant=N,json=N")]
pub struct ParseLimitsError(String);

impl FromStr for Limits {
    type Err = ParseLimitsError;

    /// `off`, `graph`, or any of `csv=N,tenant=N,json=N` (unnamed ones unlimited).
    fn from_str(s: &str) -> Result<Limits, ParseLimitsError> {
        match s.trim() {
            "off" | "" => return Ok(Limits::default()),
            "graph" => return Ok(Limits::GRAPH),
            _ => {}
        }
        let bad = || ParseLimitsError(s.to_string());
        let mut l = Limits::default();
        for part in s.split(',') {
            let (k, v) = part.split_once('=').ok_or_else(bad)?;
            let n: u32 = v.trim().parse().map_err(|_| bad())?;
            match k.trim() {
                "csv" => l.csv_per_app = Some(n),
                "tenant" => l.csv_per_tenant = Some(n),
                "json" => l.json_per_app = Some(n),
                _ => return Err(bad()),
            }
        }
        Ok(l)
    }
}

/// Which counters a report call touches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallKey {
    pub tenant: String,
    /// The calling app (`azp`/`appid`), or empty when the token names none.
    pub app: String,
    /// The report function (periods are not told apart).
    pub function: &'static str,
    pub json: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Counter {
    App {
        tenant: String,
        app: String,
        function: &'static str,
        json: bool,
    },
    Tenant {
        tenant: String,
        function: &'static str,
    },
}

/// In-process sliding-window counters. Shared counters for several nodes would implement the
/// same check against Redis or the store.
#[derive(Debug, Default)]
pub struct Throttle {
    limits: Limits,
    windows: Mutex<HashMap<Counter, VecDeque<Instant>>>,
}

impl Throttle {
    pub fn new(limits: Limits) -> Throttle {
        Throttle {
            limits,
            windows: Mutex::new(HashMap::new()),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The counters a call touches, by name, with their limits (for counting them in a
    /// shared store: [`crate::store::Store::throttle`]).
    pub fn counters(&self, key: &CallKey) -> Vec<(String, u32)> {
        let mut out = Vec::with_capacity(2);
        let app_limit = if key.json {
            self.limits.json_per_app
        } else {
            self.limits.csv_per_app
        };
        if let Some(limit) = app_limit {
            let kind = if key.json { "json" } else { "csv" };
            out.push((format!("app|{kind}|{}|{}", key.function, key.app), limit));
        }
        if let (false, Some(limit)) = (key.json, self.limits.csv_per_tenant) {
            out.push((format!("tenant|csv|{}", key.function), limit));
        }
        out
    }

    /// Counts the call if every applicable counter has room; otherwise counts nothing and
    /// returns how long until the fullest counter frees a slot (at least one second).
    pub fn check(&self, key: &CallKey, now: Instant) -> Result<(), Duration> {
        let mut counters = Vec::with_capacity(2);
        let app_limit = if key.json {
            self.limits.json_per_app
        } else {
            self.limits.csv_per_app
        };
        if let Some(limit) = app_limit {
            counters.push((
                Counter::App {
                    tenant: key.tenant.clone(),
                    app: key.app.clone(),
                    function: key.function,
                    json: key.json,
                },
                limit,
            ));
        }
        if let (false, Some(limit)) = (key.json, self.limits.csv_per_tenant) {
            counters.push((
                Counter::Tenant {
                    tenant: key.tenant.clone(),
                    function: key.function,
                },
                limit,
            ));
        }
        if counters.is_empty() {
            return Ok(());
        }
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = Duration::ZERO;
        for (counter, limit) in &counters {
            let w = windows.entry(counter.clone()).or_default();
            while w.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
                w.pop_front();
            }
            if w.len() >= *limit as usize {
                // The slot frees when the oldest call still counted leaves the window.
                let oldest = w.len() - *limit as usize;
                let frees = w
                    .get(oldest)
                    .map_or(WINDOW, |t| WINDOW.saturating_sub(now.duration_since(*t)));
                wait = wait.max(frees);
            }
        }
        if !wait.is_zero() || counters.iter().any(|(_, l)| *l == 0) {
            return Err(Duration::from_secs(
                wait.as_secs_f64().ceil().max(1.0) as u64
            ));
        }
        for (counter, _) in counters {
            windows.entry(counter).or_default().push_back(now);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(app: &str, function: &'static str, json: bool) -> CallKey {
        CallKey {
            tenant: "t".into(),
            app: app.into(),
            function,
            json,
        }
    }

    #[test]
    fn parses_settings() {
        assert_eq!("graph".parse::<Limits>().unwrap(), Limits::GRAPH);
        assert!("off".parse::<Limits>().unwrap().is_off());
        assert_eq!(
            "csv=2,json=5".parse::<Limits>().unwrap(),
            Limits {
                csv_per_app: Some(2),
                csv_per_tenant: None,
                json_per_app: Some(5)
            }
        );
        assert!("csv=x".parse::<Limits>().is_err());
        assert!("bogus=1".parse::<Limits>().is_err());
    }

    #[test]
    fn sliding_window_per_app_function_and_tenant() {
        let t = Throttle::new(Limits {
            csv_per_app: Some(2),
            csv_per_tenant: Some(3),
            json_per_app: Some(1),
        });
        let t0 = Instant::now();
        assert!(t.check(&key("a", "f", false), t0).is_ok());
        assert!(
            t.check(&key("a", "f", false), t0 + Duration::from_secs(10))
                .is_ok()
        );
        // Third call of app a: refused until the first leaves the window (590 s later).
        assert_eq!(
            t.check(&key("a", "f", false), t0 + Duration::from_secs(20)),
            Err(Duration::from_secs(580))
        );
        // Another function has its own counters.
        assert!(
            t.check(&key("a", "g", false), t0 + Duration::from_secs(20))
                .is_ok()
        );
        // App b: allowed once more, then the tenant counter (3) is full.
        assert!(
            t.check(&key("b", "f", false), t0 + Duration::from_secs(30))
                .is_ok()
        );
        assert!(
            t.check(&key("c", "f", false), t0 + Duration::from_secs(30))
                .is_err()
        );
        // JSON counts apart.
        assert!(t.check(&key("a", "f", true), t0).is_ok());
        assert!(t.check(&key("a", "f", true), t0).is_err());
        // After the window slides, app a may call again.
        assert!(
            t.check(&key("a", "f", false), t0 + Duration::from_secs(601))
                .is_ok()
        );
    }
}
