//! `--memory-budget`: with room for only a few tenants, reports of many tenants stay
//! byte-identical to an unlimited server's while the least recently used tenants are
//! dropped from memory and reloaded from their snapshots (`/metrics` shows how many are held
//! and their accounted bytes, which stay under the budget).

mod common;

use common::TestServer;
use reportroot::model::Day;
use serde_json::Value;

fn tenant_id(i: usize) -> String {
    format!("7e57a000-0000-4000-8000-{i:012}")
}

fn generated(seed: u64) -> String {
    let opts = reportroot::generate::Options {
        users: 400,
        days: 60,
        seed,
        end: Day::parse("2026-10-31").unwrap(),
        single_date: false,
        usage: true,
    };
    let mut nd = Vec::new();
    reportroot::generate::write_tenant(&opts, &mut nd, |_| {}).unwrap();
    String::from_utf8(nd).unwrap()
}

const PATHS: [&str; 6] = [
    "/v1.0/reports/getOffice365ActivationCounts",
    "/v1.0/reports/getOffice365ServicesUserCounts(period='D30')",
    "/v1.0/reports/getOffice365ActiveUserDetail(period='D30')",
    "/v1.0/reports/getEmailActivityCounts(period='D30')",
    "/v1.0/reports/getMailboxUsageDetail(period='D7')",
    "/v1.0/reports/getOneDriveUsageAccountDetail(period='D7')",
];

/// `reportroot_tenants_loaded` and `reportroot_tenant_state_bytes` from `/metrics`.
async fn memory(srv: &TestServer) -> (u64, u64) {
    let text = srv
        .client()
        .get(srv.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let gauge = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in {text}"))
    };
    (
        gauge("reportroot_tenants_loaded"),
        gauge("reportroot_tenant_state_bytes"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tenants_in_a_small_budget_answer_as_with_no_budget() {
    const TENANTS: usize = 6;
    let reference = TestServer::start().await;
    for i in 0..TENANTS {
        let resp = reference.ingest(&tenant_id(i), &generated(i as u64)).await;
        assert_eq!(resp.status().as_u16(), 200);
    }
    let (loaded, all_bytes) = memory(&reference).await;
    assert_eq!(loaded, TENANTS as u64);
    // Room for about two of them.
    let budget = all_bytes / TENANTS as u64 * 2 + all_bytes / TENANTS as u64 / 2;
    // The same link secret, so concealed names are the same digests.
    let srv = TestServer::start_in(common::dir_with_keys_of(&reference), |c| {
        c.memory_budget = Some(budget)
    })
    .await;
    for i in 0..TENANTS {
        let resp = srv.ingest(&tenant_id(i), &generated(i as u64)).await;
        assert_eq!(resp.status().as_u16(), 200);
        let (loaded, bytes) = memory(&srv).await;
        assert!(bytes <= budget, "{bytes} bytes held, budget {budget}");
        assert!(loaded <= 3, "{loaded} tenants held");
    }
    // Round-robin twice over every tenant: each visit reloads an evicted tenant.
    for round in 0..2 {
        for i in 0..TENANTS {
            let tid = tenant_id(i);
            for p in PATHS {
                let got = srv.download(&tid, p).await;
                let want = reference.download(&tid, p).await;
                assert!(got == want, "round {round}, tenant {i}, {p} differs");
            }
            let (loaded, bytes) = memory(&srv).await;
            assert!(bytes <= budget, "{bytes} bytes held, budget {budget}");
            assert!((1..=3).contains(&loaded), "{loaded} tenants held");
        }
    }
    // The detail reports' first JSON page as well.
    for i in 0..TENANTS {
        let tid = tenant_id(i);
        let url = "/beta/reports/getOffice365ActiveUserDetail(period='D30')?$format=application/json&$top=50";
        let a: Value = srv.get(url, &srv.reader(&tid)).await.json().await.unwrap();
        let b: Value = reference
            .get(url, &reference.reader(&tid))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(a["value"], b["value"]);
    }
}

/// Batches and reports for several tenants at once with room for none of them: every
/// tenant is evicted as soon as it is idle, while others ingest and read (eviction takes
/// the registry's locks in one order; a deadlock would hang this test, which a timeout
/// turns into a failure). A directory change made between evictions shows up in the
/// reloaded tenant's activation reports (no cached report of the old directory survives).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_batches_and_reads_with_no_room_finish_and_stay_correct() {
    const TENANTS: usize = 4;
    let reference = TestServer::start().await;
    let srv = std::sync::Arc::new(TestServer::start_with(|c| c.memory_budget = Some(1)).await);
    let work = async {
        let mut tasks = Vec::new();
        for i in 0..TENANTS {
            let srv = srv.clone();
            tasks.push(tokio::spawn(async move {
                let tid = tenant_id(10 + i);
                let resp = srv.ingest(&tid, &generated(20 + i as u64)).await;
                assert_eq!(resp.status().as_u16(), 200);
                for round in 0..4 {
                    let user = format!(
                        r#"{{"type":"user","id":"extra-{round}","userPrincipalName":"extra{round}@x","displayName":"Extra {round}"}}
{{"type":"productAssignment","userId":"extra-{round}","productType":"MICROSOFT 365 APPS FOR ENTERPRISE","assignedDate":"2026-01-01"}}
"#
                    );
                    let resp = srv.ingest(&tid, &user).await;
                    assert_eq!(resp.status().as_u16(), 200);
                    for p in PATHS {
                        let _ = srv.download(&tid, p).await;
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(300), work)
        .await
        .expect("concurrent batches and reads under a budget finish");
    // The same data into the unlimited server: identical answers, activation reports too
    // (summaries only: the two servers conceal names under different keys).
    for i in 0..TENANTS {
        let tid = tenant_id(10 + i);
        let resp = reference.ingest(&tid, &generated(20 + i as u64)).await;
        assert_eq!(resp.status().as_u16(), 200);
        for round in 0..4 {
            let user = format!(
                r#"{{"type":"user","id":"extra-{round}","userPrincipalName":"extra{round}@x","displayName":"Extra {round}"}}
{{"type":"productAssignment","userId":"extra-{round}","productType":"MICROSOFT 365 APPS FOR ENTERPRISE","assignedDate":"2026-01-01"}}
"#
            );
            assert_eq!(reference.ingest(&tid, &user).await.status().as_u16(), 200);
        }
    }
    for i in 0..TENANTS {
        let tid = tenant_id(10 + i);
        for p in [
            "/v1.0/reports/getOffice365ActivationsUserCounts",
            "/v1.0/reports/getOffice365ServicesUserCounts(period='D30')",
        ] {
            assert!(
                srv.download(&tid, p).await == reference.download(&tid, p).await,
                "tenant {i}, {p}"
            );
        }
    }
    let (loaded, _) = memory(&srv).await;
    assert!(loaded <= 1, "{loaded} tenants held with no room");
}
