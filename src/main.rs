//! The `reportroot` binary: command-line parsing over the library. `anyhow` lives here only.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use reportroot::auth::signin;
use reportroot::auth::{
    Authority, DEFAULT_APP_NAME, DEFAULT_USER_NAME, ExternalIssuer, JwksSource, UserIdentity, apps,
    default_upn,
};
use reportroot::engine::{BULK_BLOCK_BYTES, Registry, StreamOptions};
use reportroot::generate;
use reportroot::ingest::Limits;
use reportroot::model::{Day, TenantId};
use reportroot::server::{Config, Server};
use reportroot::store::{SqliteStore, Store, StoreKind};
use reportroot::telemetry::{LogFormat, init_logging};
use reportroot::tls::TlsSource;

/// mimalloc instead of glibc malloc: glibc keeps per-thread arenas that grow the server's
/// resident memory over hours of mixed load (measured: +39% RSS in a 10-minute soak with
/// glibc's default arenas, +8% with them bounded; see RELIABILITY.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` (its place in `mi_option_e` of mimalloc.h, v2 and v3 alike; the
/// sys crate names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Memory freed is given back to the OS after 1 s instead of mimalloc's 10 ms. A bulk load
/// frees each block's parsed records and allocates the next block's at once; with the
/// default delay the pages went back to the OS in between and came back zeroed by page
/// faults (a fifth of the ingest's CPU at 100k users in `perf`). Idle memory still goes
/// back, a second later.
fn tune_allocator() {
    // SAFETY: `mi_option_set` takes two integers and stores the value in mimalloc's option
    // table; it reads and writes no memory of ours. An unknown option index is ignored
    // with a warning, never undefined behaviour.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 1000) }
}

#[derive(Parser)]
#[command(
    name = "reportroot",
    version,
    about = "A self-hostable, Microsoft Graph-compatible server for the Office 365 usage reports"
)]
struct Cli {
    /// Log format (logs go to stderr).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "REPORTROOT_LOG_FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Graph-compatible API.
    Serve(Box<ServeArgs>),
    /// Start a server on a fresh demo tenant and print ready-to-paste curl lines.
    Demo(DemoArgs),
    /// Ingest NDJSON files straight into the store (server not running); one file = one batch.
    Ingest(IngestArgs),
    /// Print a token signed by the server's own key.
    Token(TokenArgs),
    /// Print a one-time dashboard sign-in link for a tenant (works with a running server).
    SigninLink(SigninLinkArgs),
    /// Write a deterministic synthetic tenant as ingest NDJSON.
    Generate(GenerateArgs),
    /// Manage app registrations for the built-in token endpoint.
    #[command(subcommand)]
    App(AppCommand),
    /// The signing keys of tokens and download links: list them, or rotate them (the old
    /// keys keep verifying what they signed until its lifetime is over).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Inspect and delete tenants in a data dir (server stopped).
    #[command(subcommand)]
    Tenants(TenantsCommand),
    /// Write a consistent backup of a data dir to one file (safe while the server runs).
    Backup {
        #[arg(long, default_value = "./reportroot-data", env = "REPORTROOT_DATA")]
        data: PathBuf,
        /// The backup file to write (a tar archive).
        #[arg(long)]
        out: PathBuf,
        /// Refused with a PostgreSQL store: back the database up with pg_dump.
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Write one tenant as ingest NDJSON (re-ingested into an empty store of either kind, it
    /// gives the same reports): moves tenants between SQLite and PostgreSQL.
    Export(ExportArgs),
    /// Copy tenants from this data dir's store (or --database-url) into another store, e.g.
    /// from the embedded SQLite file into PostgreSQL (server stopped).
    Migrate(MigrateArgs),
    /// Show and verify the audit trail (safe while the server runs).
    Audit(AuditArgs),
    /// Restore a backup into a new or empty data dir.
    Restore {
        /// A file written by `reportroot backup`.
        #[arg(long)]
        from: PathBuf,
        #[arg(long, env = "REPORTROOT_DATA")]
        data: PathBuf,
    },
}

#[derive(Args)]
struct AuditArgs {
    #[arg(long, default_value = "./reportroot-data", env = "REPORTROOT_DATA")]
    data: PathBuf,
    /// Only this tenant's chain.
    #[arg(long)]
    tenant: Option<String>,
    /// Check every chain (exit status 1 if an entry was altered, removed or reordered) and
    /// print each chain's head, to keep elsewhere.
    #[arg(long)]
    verify: bool,
    /// Find the erasure of the user with this id (needs --tenant): the trail names erased
    /// users only by a keyed digest of their id.
    #[arg(long, requires = "tenant")]
    erased: Option<String>,
    /// One JSON object per line instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Subcommand)]
enum TenantsCommand {
    /// Every tenant with stored data, one per line with its users and data version.
    List {
        #[arg(long, default_value = "./reportroot-data", env = "REPORTROOT_DATA")]
        data: PathBuf,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// What is stored of one tenant (JSON, as `GET /admin/v1/tenants/{tid}`).
    Show {
        #[arg(long, default_value = "./reportroot-data", env = "REPORTROOT_DATA")]
        data: PathBuf,
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Delete everything of one tenant: store rows, snapshot (server stopped).
    Delete {
        #[arg(long, default_value = "./reportroot-data", env = "REPORTROOT_DATA")]
        data: PathBuf,
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Erase one user of a tenant as if never ingested (server stopped; with a server, use
    /// `DELETE /admin/v1/tenants/{tid}/users/{id}`).
    Erase {
        #[arg(long, default_value = "./reportroot-data", env = "REPORTROOT_DATA")]
        data: PathBuf,
        #[arg(long)]
        tenant: String,
        /// The user's id, as ingested.
        #[arg(long)]
        user: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Retire the current token and link keys and sign with new ones from now on; prints
    /// the new key ids. Safe while servers run: they verify the new keys at once and sign
    /// with them within seconds.
    Rotate {
        #[arg(long, default_value = "./reportroot-data", env = "REPORTROOT_DATA")]
        data: PathBuf,
        /// How long the retired keys still verify (default 24h: the longest lifetime of
        /// what the server signs with default settings). `0s` stops them at once, e.g.
        /// after a leak; what they signed is then refused.
        #[arg(long, default_value = "24h", value_parser = parse_duration)]
        grace: Duration,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Every key: kind, key id, created, retired, and until when it verifies.
    List {
        #[arg(long, default_value = "./reportroot-data", env = "REPORTROOT_DATA")]
        data: PathBuf,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Subcommand)]
enum AppCommand {
    /// Register an app; prints its client id and secret (shown only once).
    Add {
        #[arg(long, default_value = "./reportroot-data", env = "REPORTROOT_DATA")]
        data: PathBuf,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        /// App roles, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "Reports.Read.All")]
        roles: Vec<String>,
        /// Print JSON instead of labelled lines.
        #[arg(long)]
        json: bool,
    },
    /// List registered apps (never their secrets).
    List {
        #[arg(long, default_value = "./reportroot-data", env = "REPORTROOT_DATA")]
        data: PathBuf,
        /// Only this tenant's apps.
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Remove an app; its secret stops working at once.
    Remove {
        #[arg(long, default_value = "./reportroot-data", env = "REPORTROOT_DATA")]
        data: PathBuf,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        client_id: String,
    },
}

/// Where tenants are stored.
#[derive(Args, Clone, Default)]
struct DatabaseArgs {
    /// Keep tenants in this PostgreSQL database instead of the data dir's SQLite file, e.g.
    /// postgres://reportroot:PASSWORD@db.example:5432/reportroot?sslmode=require (TLS by
    /// rustls with `sslmode=require`). The signing keys and app registrations then live in
    /// the database too (keys imported from --data on first use); TLS files stay in --data.
    #[arg(long, env = "REPORTROOT_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// More CA certificates (PEM) to trust for the database server's certificate, beside the
    /// Mozilla roots.
    #[arg(long, env = "REPORTROOT_DATABASE_CA", requires = "database_url")]
    database_ca: Option<PathBuf>,
}

impl DatabaseArgs {
    fn kind(&self) -> StoreKind {
        StoreKind::from_url(self.database_url.clone(), self.database_ca.clone())
    }
}

#[derive(Args)]
struct ServeArgs {
    /// Keep this many days of activity and daily state before the Report Refresh Date;
    /// older rows are removed after each batch and daily (at least 180, so every Graph
    /// period answers in full; default: keep everything).
    #[arg(long, env = "REPORTROOT_RETENTION_DAYS", value_parser = clap::value_parser!(u32).range(180..))]
    retention_days: Option<u32>,
    /// The most tenant state kept in memory, e.g. 8GiB, 512MiB or a byte count; past it the
    /// least recently used tenants are dropped and reload from their snapshot on next use.
    /// `0`: no limit. Default: half of the machine's memory.
    #[arg(long, env = "REPORTROOT_MEMORY_BUDGET", value_parser = parse_bytes)]
    memory_budget: Option<u64>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "REPORTROOT_LISTEN")]
    listen: SocketAddr,
    /// Data directory (created on first start).
    #[arg(long, default_value = "./reportroot-data", env = "REPORTROOT_DATA")]
    data: PathBuf,
    /// Scheme and host used in download links and as the token issuer base
    /// (default: the request's own scheme and Host).
    #[arg(long, env = "REPORTROOT_PUBLIC_URL")]
    public_url: Option<String>,
    /// Expected token audience.
    #[arg(long, env = "REPORTROOT_AUDIENCE")]
    audience: Option<String>,
    /// Lifetime of download links, e.g. 300s, 5m.
    #[arg(long, default_value = "5m", value_parser = parse_duration, env = "REPORTROOT_LINK_TTL")]
    link_ttl: Duration,
    /// `self-signed`: serve HTTPS with a certificate for localhost/127.0.0.1 created and kept
    /// in DATA/tls/ (trust DATA/tls/ca.pem).
    #[arg(long, value_parser = ["self-signed"], env = "REPORTROOT_TLS", conflicts_with_all = ["tls_cert", "tls_key"])]
    tls: Option<String>,
    /// More DNS names (or IP addresses) for the self-signed certificate, comma-separated, e.g.
    /// graph.microsoft.com,login.microsoftonline.com; a kept certificate lacking one is
    /// re-issued under the same CA.
    #[arg(
        long,
        value_delimiter = ',',
        requires = "tls",
        env = "REPORTROOT_TLS_NAMES"
    )]
    tls_names: Vec<String>,
    /// Serve HTTPS with this certificate chain (PEM).
    #[arg(long, requires = "tls_key", env = "REPORTROOT_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// The private key for --tls-cert (PEM).
    #[arg(long, requires = "tls_cert", env = "REPORTROOT_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Also accept tokens from this OpenID Connect issuer; `{tenantid}` stands for the token's
    /// tid (e.g. https://login.microsoftonline.com/{tenantid}/v2.0).
    #[arg(long, env = "REPORTROOT_ISSUER")]
    issuer: Option<String>,
    /// The external issuer's JWKS URL (keys are cached and refetched on an unknown kid).
    #[arg(
        long,
        requires = "issuer",
        conflicts_with = "jwks_file",
        env = "REPORTROOT_JWKS_URL"
    )]
    jwks_url: Option<String>,
    /// The external issuer's JWKS as a file.
    #[arg(long, requires = "issuer", env = "REPORTROOT_JWKS_FILE")]
    jwks_file: Option<PathBuf>,
    /// Report-call throttling: `off`, `graph` (Graph's published limits: 14 CSV calls per app
    /// per tenant and 40 per tenant per 10 minutes, 100 JSON), or `csv=N,tenant=N,json=N`.
    #[arg(long, default_value = "off", env = "REPORTROOT_THROTTLE")]
    throttle: reportroot::throttle::Limits,
    /// Answer this share (0–1) of report calls and downloads with an injected error.
    #[arg(long, default_value_t = 0.0, env = "REPORTROOT_CHAOS_RATE")]
    chaos_rate: f64,
    /// The statuses injected faults use.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "429,500,503,504",
        env = "REPORTROOT_CHAOS_CODES"
    )]
    chaos_codes: Vec<u16>,
    /// Largest ingest request body, in bytes.
    #[arg(long, default_value_t = 256 << 20, env = "REPORTROOT_MAX_BODY_BYTES")]
    max_body_bytes: usize,
    /// Longest ingest line, in bytes.
    #[arg(long, default_value_t = 1 << 20, env = "REPORTROOT_MAX_LINE_BYTES")]
    max_line_bytes: usize,
    /// Most records in one ingest batch.
    #[arg(long, default_value_t = 50_000_000, env = "REPORTROOT_MAX_RECORDS")]
    max_records: usize,
    /// Largest request head (request line and headers), in bytes.
    #[arg(long, default_value_t = 64 << 10, env = "REPORTROOT_MAX_HEADER_BYTES")]
    max_header_bytes: usize,
    /// Time to receive a request head; also the idle keep-alive timeout.
    #[arg(long, default_value = "30s", value_parser = parse_duration, env = "REPORTROOT_HEADER_TIMEOUT")]
    header_timeout: Duration,
    /// Time to answer one request (408 after that).
    #[arg(long, default_value = "300s", value_parser = parse_duration, env = "REPORTROOT_REQUEST_TIMEOUT")]
    request_timeout: Duration,
    #[command(flatten)]
    database: DatabaseArgs,
    /// Lifetime of a dashboard session started from a sign-in link.
    #[arg(long, default_value = "1h", value_parser = parse_duration, env = "REPORTROOT_SESSION_TTL")]
    session_ttl: Duration,
    /// Lifetime of the sign-in links printed at start.
    #[arg(long, default_value = "10m", value_parser = parse_duration, env = "REPORTROOT_SIGNIN_TTL")]
    signin_ttl: Duration,
    /// How often the signing key ring is read again (rotations by other nodes or the CLI).
    #[arg(long, default_value = "10s", value_parser = parse_duration, env = "REPORTROOT_KEY_RELOAD", hide = true)]
    key_reload: Duration,
}

#[derive(Args)]
struct DemoArgs {
    /// Address to listen on (use 127.0.0.1:0 for any free port).
    #[arg(long, default_value = "127.0.0.1:8080", env = "REPORTROOT_LISTEN")]
    listen: SocketAddr,
    /// Data directory (default: a new temporary directory).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Users in the demo tenant.
    #[arg(long, default_value_t = 2000)]
    users: u32,
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Args)]
struct IngestArgs {
    #[arg(long, default_value = "./reportroot-data", env = "REPORTROOT_DATA")]
    data: PathBuf,
    #[arg(long)]
    tenant: String,
    /// NDJSON files, each ingested as one atomic batch.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Bytes read, parsed and planned at a time (a file is never held parsed whole).
    #[arg(long, default_value_t = BULK_BLOCK_BYTES as u32, value_parser = clap::value_parser!(u32).range(1..), hide = true)]
    block_bytes: u32,
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Args)]
struct ExportArgs {
    #[arg(long, default_value = "./reportroot-data", env = "REPORTROOT_DATA")]
    data: PathBuf,
    #[arg(long)]
    tenant: String,
    /// Output file (default: stdout).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Args)]
struct MigrateArgs {
    #[arg(long, default_value = "./reportroot-data", env = "REPORTROOT_DATA")]
    data: PathBuf,
    /// The source store: --database-url, or the data dir's SQLite file.
    #[command(flatten)]
    database: DatabaseArgs,
    /// The target: a postgres:// URL, or `sqlite:DIR` for another data dir's SQLite file.
    #[arg(long)]
    to: String,
    /// Only these tenants (default: every stored tenant).
    #[arg(long)]
    tenant: Vec<String>,
}

#[derive(Args)]
struct TokenArgs {
    #[arg(long, default_value = "./reportroot-data", env = "REPORTROOT_DATA")]
    data: PathBuf,
    #[arg(long)]
    tenant: String,
    /// An application token (roles claim).
    #[arg(long, conflicts_with = "user", required_unless_present = "user")]
    app: bool,
    /// A delegated token (scp and wids claims).
    #[arg(long)]
    user: bool,
    /// App roles, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "Reports.Read.All")]
    roles: Vec<String>,
    /// The app's client id (default: a fixed id per tenant).
    #[arg(long)]
    client_id: Option<String>,
    /// Display name: the app's (`app_displayname`, default "reportroot-cli") with --app, the
    /// user's (`name`, default "reportroot admin") with --user.
    #[arg(long)]
    name: Option<String>,
    /// The user's principal name (`upn`, `preferred_username`) for --user (default: from
    /// --name, e.g. "Adele Vance" → adele.vance@reportroot.local).
    #[arg(long, requires = "user")]
    upn: Option<String>,
    /// Admin role template ids for a delegated token, comma-separated.
    #[arg(long, value_delimiter = ',')]
    wids: Vec<String>,
    /// Delegated scopes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "Reports.Read.All")]
    scope: Vec<String>,
    /// Lifetime, e.g. 1h, 30m, 3600s.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    ttl: Duration,
    /// The signing key is the database's when the server uses one.
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Args)]
struct SigninLinkArgs {
    #[arg(long, default_value = "./reportroot-data", env = "REPORTROOT_DATA")]
    data: PathBuf,
    #[arg(long)]
    tenant: String,
    /// How long the link may be opened (once), e.g. 10m, 1h.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    ttl: Duration,
    /// The server's URL as the browser reaches it (default: the remembered --public-url,
    /// else http://127.0.0.1:8080).
    #[arg(long, env = "REPORTROOT_PUBLIC_URL")]
    url: Option<String>,
    /// The signing key is the database's when the server uses one.
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Args)]
struct GenerateArgs {
    #[arg(long)]
    tenant: String,
    #[arg(long)]
    users: u32,
    #[arg(long, default_value_t = 180)]
    days: u32,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Report Refresh Date the data ends on (default 2026-10-31, for determinism).
    #[arg(long, default_value = "2026-10-31", value_parser = parse_day)]
    end: Day,
    /// Write one activity record per day instead of the compact `dates` form.
    #[arg(long)]
    single_date: bool,
    /// Also write `activityCounts` records (email, OneDrive, SharePoint daily counters).
    #[arg(long)]
    usage: bool,
    /// With --usage: write the usage facts (counters, email clients, mailbox and site
    /// states) for the last N days only (activity and everything else unchanged).
    #[arg(long, requires = "usage")]
    usage_days: Option<u32>,
    /// Output file (default: stdout).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// `4GiB`, `512MiB`, `64KiB`, `2GB` or a byte count.
fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("'{s}' is not a size"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        other => {
            return Err(format!(
                "unknown size unit '{other}' (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("'{s}' is too large"))
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("'{s}' is not a duration like 300s, 5m, 1h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return Err(format!("'{s}' is not a duration like 300s, 5m, 1h")),
    };
    Ok(Duration::from_secs(secs))
}

fn parse_day(s: &str) -> Result<Day, String> {
    Day::parse(s).map_err(|e| e.to_string())
}

fn tenant(s: &str) -> anyhow::Result<TenantId> {
    TenantId::parse(s).with_context(|| format!("'{s}' is not a valid tenant id"))
}

fn main() -> anyhow::Result<()> {
    tune_allocator();
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Serve(a) => serve(*a),
        Command::Demo(a) => demo(a),
        Command::Ingest(a) => ingest(a),
        Command::Token(a) => token(a),
        Command::SigninLink(a) => signin_link_cmd(a),
        Command::Generate(a) => generate_cmd(a),
        Command::App(a) => app(a),
        Command::Keys(a) => keys_cmd(a),
        Command::Tenants(a) => tenants_cmd(a),
        Command::Audit(a) => audit_cmd(a),
        Command::Backup {
            data,
            out,
            database,
        } => {
            if database.kind().is_postgres() {
                // Without connecting (which would create the schema in that database).
                bail!(
                    "the store is a PostgreSQL database: back it up with pg_dump and restore it with pg_restore (see the README), and copy the data dir's public-url and tls/ beside it (the signing keys and app registrations are in the database); `reportroot backup` copies only the embedded SQLite store"
                );
            }
            let summary = reportroot::lifecycle::backup(&data, &out)?;
            for (name, len) in &summary.files {
                println!("{name}\t{len}");
            }
            println!("backup written to {}", out.display());
            Ok(())
        }
        Command::Export(a) => export(a),
        Command::Migrate(a) => migrate(a),
        Command::Restore { from, data } => {
            let summary = reportroot::lifecycle::restore(&from, &data)?;
            for (name, len) in &summary.files {
                println!("{name}\t{len}");
            }
            println!("restored into {}", data.display());
            Ok(())
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn serve(a: ServeArgs) -> anyhow::Result<()> {
    let mut config = Config::new(a.data);
    config.listen = a.listen;
    config.public_url = a.public_url;
    config.audience = a.audience;
    config.link_ttl = a.link_ttl;
    config.max_body_bytes = a.max_body_bytes;
    config.ingest_limits.max_line_bytes = a.max_line_bytes;
    config.ingest_limits.max_records = a.max_records;
    config.connection.max_header_bytes = a.max_header_bytes;
    config.connection.header_timeout = a.header_timeout;
    config.connection.request_timeout = a.request_timeout;
    config.throttle = a.throttle;
    config.store = a.database.kind();
    config.retention_days = a.retention_days;
    config.memory_budget = match a.memory_budget {
        Some(0) => None,
        Some(n) => Some(n),
        None => reportroot::server::default_memory_budget(),
    };
    config.session_ttl = a.session_ttl;
    config.key_reload = a.key_reload;
    if !(0.0..=1.0).contains(&a.chaos_rate) {
        bail!("--chaos-rate must be between 0 and 1");
    }
    if a.chaos_rate > 0.0 {
        config.chaos = Some(reportroot::api::Chaos {
            rate: a.chaos_rate,
            codes: a.chaos_codes,
        });
    }
    config.tls = match (a.tls, a.tls_cert, a.tls_key) {
        (Some(_), _, _) => Some(TlsSource::SelfSigned { names: a.tls_names }),
        (None, Some(cert), Some(key)) => Some(TlsSource::Files { cert, key }),
        _ => None,
    };
    config.external_issuer = match (a.issuer, a.jwks_url, a.jwks_file) {
        (Some(issuer), Some(url), _) => Some(ExternalIssuer {
            issuer,
            jwks: JwksSource::Url(url),
        }),
        (Some(issuer), None, Some(file)) => Some(ExternalIssuer {
            issuer,
            jwks: JwksSource::File(file),
        }),
        (Some(_), None, None) => bail!("--issuer needs --jwks-url or --jwks-file"),
        _ => None,
    };
    let data = config.data_dir.clone();
    let public_url = config.public_url.clone();
    let signin_ttl = a.signin_ttl;
    runtime()?.block_on(async {
        let server = Server::bind(config).await?;
        println!(
            "reportroot listening on {}://{}",
            server.scheme(),
            server.local_addr()
        );
        let base = public_url
            .map(|u| u.trim_end_matches('/').to_string())
            .unwrap_or_else(|| {
                format!(
                    "{}://{}",
                    server.scheme(),
                    browser_addr(server.local_addr())
                )
            });
        // The tenants of the server's own store (SQLite file or PostgreSQL).
        let tenants = server.stored_tenants().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "listing tenants for sign-in links failed");
            Vec::new()
        });
        print_signin_links(server.authority(), &data, &base, signin_ttl, &tenants)?;
        let _ = std::io::stdout().flush();
        tracing::info!(addr = %server.local_addr(), "listening");
        server.run().await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Ingests one file as one batch into `registry`, with a progress bar for big files.
fn ingest_file(
    registry: &Registry,
    tid: &TenantId,
    path: &Path,
    limits: Limits,
    block_bytes: usize,
) -> anyhow::Result<(usize, Option<Day>)> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = if len > 4 << 20 && std::io::stderr().is_terminal() {
        let b = ProgressBar::new(len);
        b.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b.set_message(format!("parsing {}", path.display()));
        b
    } else {
        ProgressBar::hidden()
    };
    let opts = StreamOptions {
        limits,
        block_bytes,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        write_early: true,
    };
    let audit = reportroot::audit::operator("ingest", "", String::new());
    let outcome = registry
        .ingest_stream(tid, file, &opts, Some(&audit), |read| {
            bar.set_position(read);
            if read >= len {
                bar.set_message(format!("committing {}", path.display()));
            }
        })
        .map_err(|e| anyhow::anyhow!("{}: {e}; nothing of this file was stored", path.display()))?;
    bar.finish_and_clear();
    Ok((outcome.ingested, outcome.refresh_date))
}

fn ingest(a: IngestArgs) -> anyhow::Result<()> {
    let tid = tenant(&a.tenant)?;
    let _lock = reportroot::lifecycle::DataDirLock::acquire(&a.data, "ingest")?;
    let kind = a.database.kind();
    let registry = Registry::new(kind.open(&a.data)?, kind.snapshot_dir(&a.data));
    for f in &a.files {
        let started = std::time::Instant::now();
        let (n, refresh) = ingest_file(
            &registry,
            &tid,
            f,
            Limits::default(),
            a.block_bytes as usize,
        )?;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{}: ingested {n} records in {secs:.2}s ({:.0} records/s); report refresh date {}",
            f.display(),
            n as f64 / secs.max(1e-9),
            refresh.map_or("none yet".to_string(), |d| d.to_string())
        );
    }
    registry.snapshot_changed()?;
    Ok(())
}

fn export(a: ExportArgs) -> anyhow::Result<()> {
    let tid = tenant(&a.tenant)?;
    let store = existing_store(&a.data, &a.database)?;
    let summary = match &a.out {
        Some(p) => {
            let f =
                std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
            reportroot::export::write_tenant(store.as_ref(), &tid, &mut w)?
        }
        None => {
            let mut w = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
            reportroot::export::write_tenant(store.as_ref(), &tid, &mut w)?
        }
    };
    eprintln!(
        "exported tenant {tid}: {} users, {} records",
        summary.users, summary.records
    );
    Ok(())
}

/// Export each tenant as one batch and ingest it into the target store, with its report
/// settings: the target answers byte-identical reports (the export's guarantee). A tenant
/// the target already holds is refused, not merged.
fn migrate(a: MigrateArgs) -> anyhow::Result<()> {
    use reportroot::store::ReportSettings;
    let source = existing_store(&a.data, &a.database)?;
    let _lock = reportroot::lifecycle::DataDirLock::acquire(&a.data, "migrate")?;
    let (target_kind, target_dir) = match a.to.strip_prefix("sqlite:") {
        Some(dir) => (StoreKind::Sqlite, PathBuf::from(dir)),
        None if a.to.starts_with("postgres://") || a.to.starts_with("postgresql://") => (
            StoreKind::from_url(Some(a.to.clone()), a.database.database_ca.clone()),
            a.data.clone(),
        ),
        None => bail!("--to must be a postgres:// URL or sqlite:DIR"),
    };
    let target = target_kind.open(&target_dir)?;
    let registry = Registry::new(target.clone(), target_kind.snapshot_dir(&target_dir));
    let tenants = if a.tenant.is_empty() {
        source.tenants()?
    } else {
        a.tenant
            .iter()
            .map(|t| tenant(t))
            .collect::<anyhow::Result<_>>()?
    };
    for tid in tenants {
        if target.meta(&tid)?.is_some() {
            bail!(
                "the target already holds tenant {tid}: nothing of it was copied (delete it there first)"
            );
        }
        let mut batch = Vec::new();
        let summary = reportroot::export::write_tenant(source.as_ref(), &tid, &mut batch)?;
        let audit = reportroot::audit::operator("ingest", "", String::new());
        let opts = StreamOptions {
            limits: Limits {
                max_records: u64::MAX as usize,
                ..Limits::default()
            },
            block_bytes: BULK_BLOCK_BYTES,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            write_early: true,
        };
        registry
            .ingest_stream(&tid, &batch[..], &opts, Some(&audit), |_| {})
            .map_err(|e| anyhow::anyhow!("tenant {tid}: {e}; nothing of it was stored"))?;
        let settings: ReportSettings = source.report_settings(&tid)?;
        if settings != ReportSettings::default() {
            registry.set_report_settings(
                &tid,
                settings,
                &reportroot::audit::operator(
                    "reportSettings.update",
                    "",
                    format!(
                        "{{\"displayConcealedNames\":{}}}",
                        settings.display_concealed_names
                    ),
                ),
            )?;
        }
        println!(
            "copied tenant {tid}: {} users, {} records",
            summary.users, summary.records
        );
    }
    registry.snapshot_changed()?;
    Ok(())
}

/// The built-in issuer with the key ring the server of `data` uses: the database's with a
/// PostgreSQL store, else the data dir's (the SQLite file is not opened).
fn authority_for(data: &Path, database: &DatabaseArgs) -> anyhow::Result<Authority> {
    let kind = database.kind();
    if kind.is_postgres() {
        return Ok(Authority::for_store(data, &kind.open(data)?)?);
    }
    Ok(Authority::open(data)?)
}

fn token(a: TokenArgs) -> anyhow::Result<()> {
    let tid = tenant(&a.tenant)?;
    let authority = authority_for(&a.data, &a.database)?;
    let jwt = if a.app {
        let name = a.name.as_deref().unwrap_or(DEFAULT_APP_NAME);
        authority.mint_app_named(tid.as_str(), a.client_id.as_deref(), name, &a.roles, a.ttl)?
    } else {
        if a.wids.is_empty() {
            bail!("--user needs --wids with at least one admin role template id");
        }
        let name = a.name.as_deref().unwrap_or(DEFAULT_USER_NAME);
        let upn = a.upn.unwrap_or_else(|| default_upn(name));
        let user = UserIdentity {
            display_name: name,
            upn: &upn,
        };
        authority.mint_user_as(tid.as_str(), &user, &a.scope, &a.wids, a.ttl)?
    };
    println!("{jwt}");
    Ok(())
}

fn generate_to(
    opts: &generate::Options,
    usage_days: Option<u32>,
    out: &mut dyn Write,
    label: &str,
) -> anyhow::Result<generate::Summary> {
    let bar = if std::io::stderr().is_terminal() {
        let b = ProgressBar::new(u64::from(opts.users));
        b.set_style(
            ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} users ({per_sec}, {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b.set_message(label.to_string());
        b
    } else {
        ProgressBar::hidden()
    };
    let mut w = std::io::BufWriter::with_capacity(1 << 20, out);
    let summary =
        generate::write_tenant_usage_days(opts, usage_days, &mut w, |n| bar.set_position(n))?;
    w.flush()?;
    bar.finish_and_clear();
    Ok(summary)
}

fn generate_cmd(a: GenerateArgs) -> anyhow::Result<()> {
    tenant(&a.tenant)?;
    let opts = generate::Options {
        users: a.users,
        days: a.days,
        seed: a.seed,
        end: a.end,
        single_date: a.single_date,
        usage: a.usage,
    };
    let summary = match &a.out {
        Some(p) => {
            let mut f =
                std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?;
            generate_to(&opts, a.usage_days, &mut f, "generating")?
        }
        None => generate_to(
            &opts,
            a.usage_days,
            &mut std::io::stdout().lock(),
            "generating",
        )?,
    };
    eprintln!(
        "generated {} users: {} records, {} activity signals",
        a.users, summary.records, summary.activity_signals
    );
    Ok(())
}

const DEMO_TENANT: &str = "c0ffee00-0000-4000-8000-000000000001";

fn demo(a: DemoArgs) -> anyhow::Result<()> {
    let data = match a.data {
        Some(d) => d,
        None => tempfile::Builder::new()
            .prefix("reportroot-demo-")
            .tempdir()
            .context("creating a temporary data dir")?
            .keep(),
    };
    let tid = tenant(DEMO_TENANT)?;
    let file = data.join("demo-tenant.ndjson");
    std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
    let opts = generate::Options {
        users: a.users,
        days: 180,
        seed: 42,
        end: Day::today().minus(1),
        single_date: false,
        usage: true,
    };
    {
        let mut f =
            std::fs::File::create(&file).with_context(|| format!("creating {}", file.display()))?;
        generate_to(&opts, None, &mut f, "generating demo tenant")?;
    }
    {
        let _lock = reportroot::lifecycle::DataDirLock::acquire(&data, "demo ingest")?;
        let kind = a.database.kind();
        let registry = Registry::new(kind.open(&data)?, kind.snapshot_dir(&data));
        let (n, _) = ingest_file(&registry, &tid, &file, Limits::default(), BULK_BLOCK_BYTES)?;
        registry.snapshot_changed()?;
        eprintln!(
            "ingested {n} records for demo tenant {tid} into {}",
            data.display()
        );
    }
    let authority = authority_for(&data, &a.database)?;
    let reader = authority.mint_app(
        tid.as_str(),
        None,
        &["Reports.Read.All".to_string()],
        Duration::from_secs(86400),
    )?;
    let mut config = Config::new(data.clone());
    config.listen = a.listen;
    config.store = a.database.kind();
    runtime()?.block_on(async {
        let server = Server::bind(config).await?;
        let base = format!("http://{}", browser_addr(server.local_addr()));
        println!(
            "Open the dashboard (one-time sign-in link, valid 1 h): {}",
            signin_link(&authority, &tid, &base, Duration::from_secs(3600))
        );
        println!(
            "reportroot demo listening on {base} (data in {})",
            data.display()
        );
        println!("A reader token for tenant {tid} (valid 24 h) is in $TOKEN below. Try:");
        println!();
        println!("export TOKEN='{reader}'");
        for path in [
            "/v1.0/reports/getOffice365ActivationsUserCounts",
            "/v1.0/reports/getOffice365ActivationCounts",
            "/v1.0/reports/getOffice365ServicesUserCounts(period='D7')",
            "/v1.0/reports/getOffice365ActiveUserCounts(period='D30')",
            "/v1.0/reports/getOffice365ActiveUserDetail(period='D7')",
            "/v1.0/reports/getOffice365ActivationsUserDetail",
            "/v1.0/reports/getEmailActivityUserDetail(period='D7')",
            "/v1.0/reports/getSharePointActivityPages(period='D30')",
            "/beta/reports/getOffice365ServicesUserCounts(period='D30')?\\$format=application/json",
            "/beta/reports/getOffice365ActiveUserDetail(period='D7')?\\$format=application/json&\\$top=5",
        ] {
            println!("curl -sL -H \"Authorization: Bearer $TOKEN\" \"{base}{path}\"");
        }
        println!();
        println!("Press Ctrl-C to stop.");
        let _ = std::io::stdout().flush();
        server.run().await?;
        Ok(())
    })
}

/// The address a browser on this machine uses: an unspecified bind address (0.0.0.0, ::)
/// becomes loopback.
fn browser_addr(addr: SocketAddr) -> SocketAddr {
    let mut a = addr;
    if a.ip().is_unspecified() {
        a.set_ip(if a.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    a
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `{base}/signin#code=…`: a one-time dashboard sign-in link for `tid`.
fn signin_link(authority: &Authority, tid: &TenantId, base: &str, ttl: Duration) -> String {
    let code = signin::issue(&authority.link_signer(), tid, now_secs() + ttl.as_secs());
    format!("{}/signin#code={code}", base.trim_end_matches('/'))
}

/// At `serve` start: one sign-in link per tenant with data (the first ten), or a hint.
/// Written without `println!`: a reader that closed stdout after the banner must not stop
/// the server.
fn print_signin_links(
    authority: &Authority,
    data: &Path,
    base: &str,
    ttl: Duration,
    tenants: &[TenantId],
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if tenants.is_empty() {
        let _ = writeln!(
            out,
            "Dashboard: {base}/ (no tenant has data yet; after an ingest, run reportroot signin-link --data {} --tenant TID)",
            data.display()
        );
    }
    for tid in tenants.iter().take(10) {
        let _ = writeln!(
            out,
            "Dashboard for tenant {tid} (one-time sign-in link, valid {} min): {}",
            ttl.as_secs() / 60,
            signin_link(authority, tid, base, ttl)
        );
    }
    if tenants.len() > 10 {
        let _ = writeln!(
            out,
            "... and {} more tenants: reportroot signin-link --data {} --tenant TID",
            tenants.len() - 10,
            data.display()
        );
    }
    let _ = out.flush();
    Ok(())
}

fn signin_link_cmd(a: SigninLinkArgs) -> anyhow::Result<()> {
    let tid = tenant(&a.tenant)?;
    let authority = authority_for(&a.data, &a.database)?;
    let base = a
        .url
        .or_else(|| {
            std::fs::read_to_string(a.data.join("public-url"))
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_string());
    println!("{}", signin_link(&authority, &tid, &base, a.ttl));
    Ok(())
}

/// The store of an existing data dir (never creates one), or the PostgreSQL database.
fn existing_store(data: &Path, database: &DatabaseArgs) -> anyhow::Result<Arc<dyn Store>> {
    let kind = database.kind();
    if kind.is_postgres() {
        return Ok(kind.open(data)?);
    }
    if !data.join(reportroot::lifecycle::DB_FILE).is_file() {
        bail!(
            "{} is not a reportroot data dir (no {})",
            data.display(),
            reportroot::lifecycle::DB_FILE
        );
    }
    Ok(Arc::new(SqliteStore::open(data)?))
}

fn tenants_cmd(cmd: TenantsCommand) -> anyhow::Result<()> {
    use reportroot::api::tenants::stats_json;
    match cmd {
        TenantsCommand::List {
            data,
            json,
            database,
        } => {
            let store = existing_store(&data, &database)?;
            let mut all = Vec::new();
            for tid in store.tenants()? {
                if let Some(s) = store.stats(&tid)? {
                    all.push(stats_json(&tid, &s));
                }
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                for v in all {
                    println!(
                        "{}  users {}  version {}  refresh {}  bytes {}",
                        v["tenantId"].as_str().unwrap_or_default(),
                        v["users"],
                        v["dataVersion"],
                        v["reportRefreshDate"].as_str().unwrap_or("-"),
                        v["bytesStored"]
                    );
                }
            }
        }
        TenantsCommand::Show {
            data,
            tenant: t,
            database,
        } => {
            let tid = tenant(&t)?;
            let store = existing_store(&data, &database)?;
            let Some(s) = store.stats(&tid)? else {
                bail!("no data is stored for tenant {tid}");
            };
            println!("{}", serde_json::to_string_pretty(&stats_json(&tid, &s))?);
        }
        TenantsCommand::Delete {
            data,
            tenant: t,
            database,
        } => {
            let tid = tenant(&t)?;
            let store = existing_store(&data, &database)?;
            let _lock = reportroot::lifecycle::DataDirLock::acquire(&data, "tenants delete")?;
            let registry = Registry::new(store, database.kind().snapshot_dir(&data));
            let audit = reportroot::audit::operator("tenant.delete", tid.as_str(), "{}".into());
            if !registry.delete_tenant(&tid, &audit, || {})? {
                bail!("no data is stored for tenant {tid}");
            }
            println!("deleted tenant {tid}");
        }
        TenantsCommand::Erase {
            data,
            tenant: t,
            user,
            database,
        } => {
            let tid = tenant(&t)?;
            let store = existing_store(&data, &database)?;
            let _lock = reportroot::lifecycle::DataDirLock::acquire(&data, "tenants erase")?;
            let authority = Authority::for_store(&data, &store)?;
            let digest =
                reportroot::audit::erasure_digest(authority.digest_secret(), tid.as_str(), &user);
            let registry = Registry::new(store, database.kind().snapshot_dir(&data));
            let audit = reportroot::audit::operator("user.erase", &digest, "{}".into());
            match registry.erase_user(&tid, &user, &audit, || {})? {
                Some(e) => println!(
                    "erased the user from tenant {tid} (data version {}, {} OneDrive account(s) removed with them); audit digest {digest}",
                    e.version, e.sites
                ),
                None => bail!("tenant {tid} holds no user with that id"),
            }
        }
    }
    Ok(())
}

fn audit_cmd(a: AuditArgs) -> anyhow::Result<()> {
    use reportroot::api::audit_log::entry_json;
    let store = existing_store(&a.data, &a.database)?;
    let tid = a.tenant.as_deref().map(tenant).transpose()?;
    let entries = match &tid {
        Some(t) => {
            let mut all: Vec<reportroot::store::AuditEntry> = Vec::new();
            loop {
                let after = all.last().map_or(0, |e| e.seq);
                let page = store.audit_entries(Some(t), after, 10_000)?;
                let n = page.len();
                all.extend(page);
                if n < 10_000 {
                    break all;
                }
            }
        }
        // Every tenant in one read: an operator's command over a trail of modest size.
        None => store.audit_entries(None, 0, usize::MAX >> 1)?,
    };
    let digest = match (&a.erased, &tid) {
        (Some(id), Some(t)) => Some(reportroot::audit::erasure_digest(
            Authority::for_store(&a.data, &store)?.digest_secret(),
            t.as_str(),
            id,
        )),
        _ => None,
    };
    for e in &entries {
        if let Some(d) = &digest
            && !(e.record.action == "user.erase" && &e.record.target == d)
        {
            continue;
        }
        if a.json {
            println!("{}", serde_json::to_string(&entry_json(e))?);
        } else {
            let v = entry_json(e);
            println!(
                "{} #{} {} {} by {} [{}] {} {}",
                e.tenant,
                e.seq,
                v["activityDateTime"].as_str().unwrap_or("-"),
                e.record.action,
                if e.record.actor_name.is_empty() {
                    "-"
                } else {
                    &e.record.actor_name
                },
                if e.record.app_id.is_empty() {
                    "-"
                } else {
                    &e.record.app_id
                },
                e.record.target,
                e.record.details
            );
        }
    }
    if let Some(d) = &digest {
        let found = entries
            .iter()
            .any(|e| e.record.action == "user.erase" && &e.record.target == d);
        if !found {
            bail!("no erasure of that user is recorded for this tenant (digest {d})");
        }
    }
    if a.verify {
        match reportroot::audit::verify(&entries) {
            Ok(heads) => {
                for (t, seq, hash) in heads {
                    println!(
                        "verified {t}: {seq} entries, head {}",
                        reportroot::audit::hex(&hash)
                    );
                }
            }
            Err(e) => {
                eprintln!("audit chain broken: {e}");
                std::process::exit(1);
            }
        }
    }
    Ok(())
}

/// The store the server uses, for the `app` commands (which take no --database-url):
/// PostgreSQL when REPORTROOT_DATABASE_URL names one, else the data dir's SQLite file.
fn env_store(data: &Path) -> anyhow::Result<Arc<dyn reportroot::store::Store>> {
    let kind = StoreKind::from_url(
        std::env::var("REPORTROOT_DATABASE_URL").ok(),
        std::env::var_os("REPORTROOT_DATABASE_CA").map(PathBuf::from),
    );
    Ok(kind.open(data)?)
}

/// Records an app registration change in the store's audit trail.
fn audit_app(
    store: &dyn reportroot::store::Store,
    tid: &TenantId,
    action: &str,
    client_id: &str,
    details: String,
) -> anyhow::Result<()> {
    store.audit(
        tid,
        &reportroot::audit::operator(action, client_id, details),
    )?;
    Ok(())
}

fn app(cmd: AppCommand) -> anyhow::Result<()> {
    match cmd {
        AppCommand::Add {
            data,
            tenant: t,
            name,
            roles,
            json,
        } => {
            let tid = tenant(&t)?;
            let store = env_store(&data)?;
            let new = apps::add(
                &apps::AppsAt::for_store(&data, &store),
                tid.as_str(),
                &name,
                &roles,
            )?;
            audit_app(
                store.as_ref(),
                &tid,
                "app.register",
                &new.client_id,
                serde_json::json!({ "name": new.name, "roles": roles }).to_string(),
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&new)?);
            } else {
                println!("tenant id:     {}", new.tenant_id);
                println!("client id:     {}", new.client_id);
                println!("client secret: {}", new.client_secret);
                println!("name:          {}", new.name);
                println!("roles:         {}", new.roles.join(","));
                eprintln!("The secret is shown only now; store it safely.");
            }
        }
        AppCommand::List {
            data,
            tenant: t,
            json,
        } => {
            let tid = t.as_deref().map(tenant).transpose()?;
            let at = apps::AppsAt::for_store(&data, &env_store(&data)?);
            let list = apps::list(&at, tid.as_ref().map(|t| t.as_str()))?;
            if json {
                let v: Vec<_> = list
                    .iter()
                    .map(|a| serde_json::json!({"tenantId": a.tenant_id, "clientId": a.client_id, "name": a.name, "roles": a.roles, "created": a.created}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for a in list {
                    println!(
                        "{}  {}  {}  {}  {}",
                        a.tenant_id,
                        a.client_id,
                        a.name,
                        a.roles.join(","),
                        a.created
                    );
                }
            }
        }
        AppCommand::Remove {
            data,
            tenant: t,
            client_id,
        } => {
            let tid = tenant(&t)?;
            let store = env_store(&data)?;
            let at = apps::AppsAt::for_store(&data, &store);
            if !apps::remove(&at, tid.as_str(), &client_id)? {
                bail!("no app {client_id} in tenant {tid}");
            }
            audit_app(store.as_ref(), &tid, "app.remove", &client_id, "{}".into())?;
            println!("removed {client_id}");
        }
    }
    Ok(())
}

fn unix_time(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0).map_or_else(|| secs.to_string(), |t| t.to_rfc3339())
}

fn keys_cmd(cmd: KeysCommand) -> anyhow::Result<()> {
    use reportroot::auth::keys;
    match cmd {
        KeysCommand::Rotate {
            data,
            grace,
            database,
        } => {
            let authority = authority_for(&data, &database)?;
            // Not in the audit trail: it is kept per tenant (each chain a tenant's own), and
            // the key ring belongs to no tenant. The log line below records it.
            let new = authority.rotate(grace)?;
            for k in &new {
                println!("new {} key {}", k.kind, k.kid);
            }
            println!(
                "the keys they replace verify until {}",
                unix_time(keys::now_secs().saturating_add(grace.as_secs() as i64))
            );
            tracing::info!(
                kids = ?new.iter().map(|k| &k.kid).collect::<Vec<_>>(),
                "signing keys rotated"
            );
        }
        KeysCommand::List {
            data,
            json,
            database,
        } => {
            let authority = authority_for(&data, &database)?;
            let rows = authority.key_rows();
            let now = keys::now_secs();
            let signing: Vec<(String, String)> = [keys::KIND_TOKEN, keys::KIND_LINK]
                .iter()
                .filter_map(|kind| keys::signing(&rows, kind))
                .map(|k| (k.kind.clone(), k.kid.clone()))
                .collect();
            let status = |k: &reportroot::store::KeyRow| {
                if k.kind == keys::KIND_DIGEST {
                    "never rotated"
                } else if signing.contains(&(k.kind.clone(), k.kid.clone())) {
                    "signing"
                } else if keys::accepted(k, now) {
                    "verifying"
                } else {
                    "expired"
                }
            };
            if json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|k| {
                        serde_json::json!({
                            "kind": k.kind,
                            "kid": k.kid,
                            "created": unix_time(k.created),
                            "retired": k.retired.map(unix_time),
                            "acceptedUntil": k.accepted_until.map(unix_time),
                            "status": status(k),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!(
                    "kind    kid               created                    retired                    accepted until             status"
                );
                for k in &rows {
                    println!(
                        "{:<7} {:<17} {:<26} {:<26} {:<26} {}",
                        k.kind,
                        k.kid,
                        unix_time(k.created),
                        k.retired.map_or("-".into(), unix_time),
                        k.accepted_until.map_or("-".into(), unix_time),
                        status(k)
                    );
                }
            }
        }
    }
    Ok(())
}
