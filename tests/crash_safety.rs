//! Crash safety: batches are ingested in a loop while the server is killed with SIGKILL at
//! random moments within a batch's round trip; after each restart every report must equal an
//! oracle of the acknowledged batches, plus at most the whole batch that was in flight.
//! `CRASH_ROUNDS` sets the number of rounds (CI: 8; the recorded manual run: 60).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

const BIN: &str = env!("CARGO_BIN_EXE_reportroot");
const TID: &str = "c4a5c4a5-0000-4000-8000-000000000001";
const USERS_PER_BATCH: usize = 1500;

struct Server {
    child: Child,
    base: String,
}

fn start(data: &std::path::Path) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("banner");
    let base = line.trim().rsplit(' ').next().unwrap().to_string();
    assert!(base.starts_with("http://"), "{line}");
    Server { child, base }
}

fn token(data: &std::path::Path, roles: &str) -> String {
    let out = Command::new(BIN)
        .args([
            "token", "--tenant", TID, "--app", "--roles", roles, "--ttl", "2h", "--data",
        ])
        .arg(data)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn batch(k: usize) -> String {
    let mut s = String::from("{\"type\":\"refresh\",\"date\":\"2024-06-01\"}\n");
    for i in 0..USERS_PER_BATCH {
        s.push_str(&format!(
            "{{\"type\":\"user\",\"id\":\"b{k}u{i}\",\"userPrincipalName\":\"u@x\",\"displayName\":\"U\"}}\n\
             {{\"type\":\"serviceLicense\",\"userId\":\"b{k}u{i}\",\"service\":\"teams\",\"assignedDate\":\"2024-01-01\"}}\n\
             {{\"type\":\"productAssignment\",\"userId\":\"b{k}u{i}\",\"productType\":\"P{k:04}\",\"assignedDate\":\"2024-01-01\"}}\n"
        ));
    }
    s
}

/// Product type → Assigned, from the ActivationsUserCounts CSV; and Teams licensed users.
async fn observe(
    client: &reqwest::Client,
    base: &str,
    reader: &str,
) -> (BTreeMap<String, u64>, u64) {
    let get = |path: String| {
        let client = client.clone();
        let reader = reader.to_string();
        async move {
            let resp = client
                .get(path)
                .bearer_auth(reader)
                .send()
                .await
                .expect("report");
            assert_eq!(resp.status(), 200);
            String::from_utf8(resp.bytes().await.unwrap().to_vec()).unwrap()
        }
    };
    let auc = get(format!(
        "{base}/v1.0/reports/getOffice365ActivationsUserCounts"
    ))
    .await;
    let mut rows = BTreeMap::new();
    for line in auc.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        rows.insert(f[1].to_string(), f[2].parse().unwrap());
    }
    let suc = get(format!(
        "{base}/v1.0/reports/getOffice365ServicesUserCounts(period='D7')"
    ))
    .await;
    let teams = suc
        .lines()
        .nth(1)
        .map(|l| {
            let f: Vec<u64> = l.split(',').skip(1).map(|x| x.parse().unwrap()).collect();
            f[10] + f[11]
        })
        .unwrap_or(0);
    (rows, teams)
}

#[tokio::test]
async fn kill_9_anywhere_in_a_batch_loses_nothing_acknowledged() {
    let rounds: usize = std::env::var("CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let writer = token(data, "ReportData.ReadWrite.All");
    let reader = token(data, "Reports.Read.All");
    let client = reqwest::Client::new();
    let mut rng = rand::rngs::StdRng::seed_from_u64(
        std::env::var("CRASH_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(7),
    );

    // Round trip of one batch without a crash, to aim the kills inside it.
    let mut server = start(data);
    let started = Instant::now();
    let resp = client
        .post(format!("{}/admin/v1/tenants/{TID}/ingest", server.base))
        .bearer_auth(&writer)
        .body(batch(0))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let rtt = started.elapsed();
    let mut present: BTreeMap<String, u64> =
        BTreeMap::from([(format!("P{:04}", 0), USERS_PER_BATCH as u64)]);
    let (mut acked, mut in_flight_kept, mut in_flight_lost) = (1usize, 0usize, 0usize);

    for k in 1..=rounds {
        let delay = rtt.mul_f64(rng.gen_range(0.0..2.5));
        let url = format!("{}/admin/v1/tenants/{TID}/ingest", server.base);
        let (c, w, body) = (client.clone(), writer.clone(), batch(k));
        let request =
            tokio::spawn(async move { c.post(url).bearer_auth(w).body(body).send().await });
        tokio::time::sleep(delay).await;
        server.child.kill().expect("SIGKILL");
        let _ = server.child.wait();
        let outcome = match tokio::time::timeout(Duration::from_secs(10), request).await {
            Ok(Ok(Ok(resp))) => Some(resp.status().as_u16()),
            _ => None,
        };
        server = start(data);
        let (rows, teams) = observe(&client, &server.base, &reader).await;
        let name = format!("P{k:04}");
        match outcome {
            Some(200) => {
                acked += 1;
                present.insert(name.clone(), USERS_PER_BATCH as u64);
            }
            Some(status) => assert!(
                !rows.contains_key(&name),
                "round {k}: answered {status} but stored"
            ),
            None => {
                // Unanswered: whole or absent, never half.
                if rows.contains_key(&name) {
                    in_flight_kept += 1;
                    present.insert(name.clone(), USERS_PER_BATCH as u64);
                } else {
                    in_flight_lost += 1;
                    // Absent means absent: not even its users were kept.
                    let probe = format!(
                        "{{\"type\":\"activity\",\"userId\":\"b{k}u0\",\"service\":\"teams\",\"date\":\"2024-05-01\"}}\n"
                    );
                    let resp = client
                        .post(format!("{}/admin/v1/tenants/{TID}/ingest", server.base))
                        .bearer_auth(&writer)
                        .body(probe)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(
                        resp.status(),
                        400,
                        "round {k}: users of an absent batch exist"
                    );
                }
            }
        }
        assert_eq!(
            rows, present,
            "round {k} (outcome {outcome:?}, kill after {delay:?})"
        );
        assert_eq!(
            teams,
            USERS_PER_BATCH as u64 * present.len() as u64,
            "round {k}: licenses whole"
        );
    }
    let _ = server.child.kill();
    eprintln!(
        "crash rounds: {rounds}; acknowledged batches {acked} all kept; in flight at the kill: {in_flight_kept} kept whole, {in_flight_lost} absent; batch round trip {rtt:?}"
    );
}
