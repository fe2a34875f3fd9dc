//! The published JSON Schema of the ingest records (schemas/ingest-record.schema.json) has a
//! definition per record type the parser accepts, and every line the generator writes
//! validates against it (a small validator for the keywords the schema uses).

use reportroot::generate;
use reportroot::model::Day;
use serde_json::Value;

fn schema() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schemas/ingest-record.schema.json"
    ))
    .expect("schema file");
    serde_json::from_str(&text).expect("schema is JSON")
}

fn type_ok(v: &Value, t: &Value) -> bool {
    let one = |t: &str| match t {
        "string" => v.is_string(),
        "integer" => v.is_u64() || v.is_i64(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => false,
    };
    match t {
        Value::String(s) => one(s),
        Value::Array(ts) => ts.iter().any(|t| t.as_str().is_some_and(one)),
        _ => false,
    }
}

fn validate(v: &Value, s: &Value, at: &str) -> Result<(), String> {
    if let Some(t) = s.get("type")
        && !type_ok(v, t)
    {
        return Err(format!("{at}: {v} is not of type {t}"));
    }
    if let Some(c) = s.get("const")
        && v != c
    {
        return Err(format!("{at}: {v} != {c}"));
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        return Err(format!("{at}: {v} not in {e:?}"));
    }
    if let (Some(min), Some(n)) = (s.get("minimum").and_then(Value::as_i64), v.as_i64())
        && n < min
    {
        return Err(format!("{at}: {n} < {min}"));
    }
    if let (Some(items), Some(a)) = (s.get("items"), v.as_array()) {
        for (i, x) in a.iter().enumerate() {
            validate(x, items, &format!("{at}[{i}]"))?;
        }
    }
    if let Some(o) = v.as_object() {
        for r in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let r = r.as_str().unwrap_or_default();
            if !o.contains_key(r) {
                return Err(format!("{at}: required '{r}' missing"));
            }
        }
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            for (k, x) in o {
                if let Some(p) = props.get(k) {
                    validate(x, p, &format!("{at}.{k}"))?;
                }
            }
        }
    }
    Ok(())
}

#[test]
fn every_record_type_has_a_schema_and_generated_lines_validate() {
    let schema = schema();
    let defs = schema["$defs"].as_object().expect("$defs");
    let accepted = [
        "user",
        "serviceLicense",
        "productAssignment",
        "activation",
        "activity",
        "activityCounts",
        "emailClients",
        "mailbox",
        "mailboxDay",
        "site",
        "siteDay",
        "refresh",
    ];
    for t in accepted {
        assert_eq!(
            defs[t]["properties"]["type"]["const"],
            Value::from(t),
            "{t}"
        );
    }
    assert_eq!(defs.len(), accepted.len());
    // The parser's own list of types, from its error message for an unknown one.
    let err = reportroot::ingest::parse_batch(br#"{"type":"nope"}"#, &Default::default())
        .unwrap_err()
        .to_string();
    for t in accepted {
        assert!(err.contains(t), "parser and schema disagree on {t}: {err}");
    }
    let opts = generate::Options {
        users: 300,
        days: 30,
        seed: 3,
        end: Day::parse("2026-10-31").unwrap(),
        single_date: false,
        usage: true,
    };
    let mut nd = Vec::new();
    generate::write_tenant(&opts, &mut nd, |_| {}).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for (i, line) in nd
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let v: Value = serde_json::from_slice(line).unwrap();
        let t = v["type"].as_str().unwrap().to_string();
        validate(&v, &defs[&t], &format!("line {}", i + 1)).unwrap_or_else(|e| panic!("{e}"));
        seen.insert(t);
    }
    assert_eq!(
        seen.len(),
        accepted.len(),
        "the generator writes every type: {seen:?}"
    );
    // And a wrong line does not validate.
    let bad: Value =
        serde_json::json!({"type":"mailboxDay","userId":"u","date":"2026-10-31","itemCount":-1});
    assert!(validate(&bad, &defs["mailboxDay"], "bad").is_err());
}
