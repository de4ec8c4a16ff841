//! The result types against `bench/schema/result-v1.json`: every field the
//! code writes is described there, every required field is written, and
//! the schema's array caps match the limits. (The end-to-end tests run a
//! full JSON Schema validator over real output.)

use std::time::{Duration, Instant};

use serde_json::Value;

use super::result::{sweeps, RunResult, StepResult, Tool, SCHEMA};
use crate::ceiling::{Ceiling, HashCeiling};
use crate::limits::{CDF_POINTS_MAX, ERROR_SAMPLES_MAX};
use crate::s3::{Outcome, TransportKind};
use crate::server_usage::ServerUsage;
use crate::stats::{Attempt, OpKind, Recorder};
use crate::workload::runner::{Phase, StepRun};
use crate::workload::spec::{Concurrency, StepParams, WorkloadKind};

const SCHEMA_TEXT: &str = include_str!("../../schema/result-v1.json");

fn sample_result() -> RunResult {
    let params = StepParams {
        workload: Some(WorkloadKind::Get),
        concurrency: Some(Concurrency::Sweep(vec![1, 2])),
        ..StepParams::default()
    };
    let mut specs = params.resolve("t", 1.0).unwrap();
    let mixed = StepParams {
        workload: Some(WorkloadKind::Mixed),
        rate: Some(50.0),
        ..StepParams::default()
    };
    specs.extend(mixed.resolve("m", 1.0).unwrap());
    let hash = HashCeiling {
        per_core_bytes_per_s: 1e9,
        all_cores_bytes_per_s: 2e9,
        cores: 2,
        pinned: true,
    };
    let ceiling = Ceiling {
        dir: ".".into(),
        disk_probe_bytes: 1 << 30,
        disk_write_fdatasync_bytes_per_s: 1e9,
        disk_read_bytes_per_s: 2e9,
        sha256: hash.clone(),
        md5: hash,
        loopback_tcp_bytes_per_s: 3e9,
        elapsed_s: 4.0,
    };
    let start = Instant::now();
    let phase = || {
        let mut r = Recorder::new(start, Duration::from_secs(1));
        for (i, outcome) in [
            Outcome::Response {
                status: 200,
                body_bytes: 10,
                error_code: None,
                verified: Some(true),
            },
            Outcome::Response {
                status: 503,
                body_bytes: 0,
                error_code: Some("SlowDown".into()),
                verified: None,
            },
            Outcome::Transport {
                kind: TransportKind::Io,
                message: "reset".into(),
            },
        ]
        .into_iter()
        .enumerate()
        {
            r.record(&Attempt {
                op: OpKind::Get,
                finished: start + Duration::from_millis(700 * i as u64),
                latency: Duration::from_millis(5),
                ttfb: Some(Duration::from_millis(2)),
                start_delay: Some(Duration::from_millis(3 * i as u64)),
                keys_listed: 0,
                listing: None,
                outcome,
                payload_bytes: 10,
                is_retry: false,
                is_last: true,
            });
        }
        Phase {
            recorder: r,
            elapsed: Duration::from_secs(2),
        }
    };
    let steps: Vec<StepResult> = specs
        .iter()
        .map(|spec| {
            let run = StepRun {
                prepare: Some(phase()),
                measured: phase(),
                server: Some(ServerUsage {
                    cpu_s: 3.0,
                    resident_max_bytes: Some(64 << 20),
                }),
            };
            StepResult::new(spec, &run, Some(&ceiling))
        })
        .collect();
    RunResult {
        schema: SCHEMA,
        tool: Tool::this(),
        started_at: "2026-01-01T00:00:00Z".into(),
        command: "get".into(),
        scenario: None,
        target: None,
        bucket: None,
        ceiling: Some(ceiling),
        sweeps: sweeps(&steps),
        steps,
    }
}

fn resolve<'a>(schema: &'a Value, root: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.strip_prefix('#').expect("local references only");
            resolve(root.pointer(pointer).expect("reference resolves"), root)
        }
        None => schema,
    }
}

fn type_matches(schema: &Value, value: &Value) -> bool {
    let name = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let accepts = |t: &str| t == name || (t == "number" && name == "integer");
    match schema.get("type") {
        Some(Value::String(t)) => accepts(t),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).any(accepts),
        _ => true,
    }
}

/// Checks `value` against the structural parts of `schema`: types, known
/// and required properties, items. Panics with the JSON path on a mismatch.
fn check(value: &Value, schema: &Value, root: &Value, path: &str) {
    let schema = resolve(schema, root);
    if let Some(branches) = schema.get("oneOf").and_then(Value::as_array) {
        let branch = branches
            .iter()
            .map(|b| resolve(b, root))
            .find(|b| type_matches(b, value))
            .unwrap_or_else(|| panic!("{path}: no oneOf branch takes {value}"));
        return check(value, branch, root, path);
    }
    assert!(
        type_matches(schema, value),
        "{path}: {value} does not match {schema}"
    );
    match value {
        Value::Object(map) => {
            for required in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let key = required.as_str().unwrap();
                assert!(map.contains_key(key), "{path}: missing required {key}");
            }
            let properties = schema.get("properties").and_then(Value::as_object);
            for (key, child) in map {
                let child_path = format!("{path}.{key}");
                match (
                    properties.and_then(|p| p.get(key)),
                    schema.get("additionalProperties"),
                ) {
                    (Some(s), _) => check(child, s, root, &child_path),
                    (None, Some(Value::Bool(false))) => panic!("{child_path}: not in the schema"),
                    (None, Some(s @ Value::Object(_))) => check(child, s, root, &child_path),
                    (None, _) => {}
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(item, s, root, &format!("{path}[{i}]"));
                }
            }
        }
        _ => {}
    }
}

#[test]
fn the_schema_describes_every_field_written() {
    let schema: Value = serde_json::from_str(SCHEMA_TEXT).unwrap();
    let result = serde_json::to_value(sample_result()).unwrap();
    assert_eq!(result["schema"], schema["properties"]["schema"]["const"]);
    // The sample exercises the optional parts: prepare, sweeps, rejects,
    // transport errors, error codes, the ceiling fraction, the server.
    let step = &result["steps"][0];
    assert!(step["prepare"].is_object() && step["ceiling_fraction"].is_object());
    // The server's 3 CPU-s, per 1,000 of the step's successful GETs.
    let ok = step["ok"].as_f64().unwrap();
    assert_eq!(
        step["server"]["cpu_s_per_1000_ops"].as_f64(),
        Some(3.0 / (ok / 1000.0))
    );
    assert_eq!(step["rejected_latency_ms"]["get"]["count"], 1);
    assert_eq!(result["sweeps"][0]["points"].as_array().unwrap().len(), 2);
    assert_eq!(step["per_op"]["get"]["ok"], 1);
    assert_eq!(step["ttfb_ms"]["get"]["count"], 1, "2xx GETs only");
    assert_eq!(step["ttfb_ms"]["get"]["max_ms"], 2.0);
    // One 2xx in the first of two complete seconds, none in the second.
    assert_eq!(step["intervals"]["complete"], 2);
    assert_eq!(step["intervals"]["ops_per_s"]["fastest"], 1.0);
    assert_eq!(step["intervals"]["ops_per_s"]["slowest"], 0.0);
    let mixed = &result["steps"][2];
    assert_eq!(mixed["workload"]["mix"]["stat"], 0.3);
    assert_eq!(mixed["workload"]["read_fraction"], 0.45);
    assert!(step["workload"].get("mix").is_none());
    assert!(step["schedule"].is_null(), "a closed loop has no schedule");
    // Started 0, 3 and 6 ms late: two past the 1 ms tolerance.
    let schedule = &mixed["schedule"];
    assert_eq!(
        (&schedule["started"], &schedule["late"]),
        (&3.into(), &2.into())
    );
    let late_max = schedule["late_by_ms"]["max_ms"].as_f64().unwrap();
    assert!((late_max - 6.0).abs() < 0.01, "{late_max}");
    check(&result, &schema, &schema, "$");
}

#[test]
fn schema_caps_match_the_limits() {
    let schema: Value = serde_json::from_str(SCHEMA_TEXT).unwrap();
    let step = &schema["$defs"]["step"]["properties"];
    assert_eq!(step["error_samples"]["maxItems"], ERROR_SAMPLES_MAX);
    assert_eq!(
        step["latency_cdf_ms"]["additionalProperties"]["maxItems"],
        CDF_POINTS_MAX
    );
}
