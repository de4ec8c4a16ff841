//! Scenario files (`bench/scenarios/*.toml`): a name, an optional
//! description and bucket, `[defaults]` applied to every step, and
//! `[[step]]` tables whose fields are those of [`StepParams`] (the same as
//! the load flags: `workload`, `size`, `count`, `duration`, `concurrency`
//! (a number or a list to sweep), `objects`, `prefix`, `payload`,
//! `expect_continue`, `retries`, `verify`, `prepare`, `mix` (a string as
//! on the command line or a table), `read_fraction`, `rate`, `interval`,
//! `request_timeout`).
//! Unknown fields are errors.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::BenchError;
use crate::limits::SCENARIO_STEPS_MAX;
use crate::workload::spec::{StepParams, StepSpec};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    name: Option<String>,
    description: Option<String>,
    bucket: Option<String>,
    buckets: Option<u32>,
    #[serde(default)]
    defaults: StepParams,
    #[serde(rename = "step", default)]
    steps: Vec<StepParams>,
}

/// A loaded scenario, its steps expanded and validated.
#[derive(Debug)]
pub struct Scenario {
    pub name: String,
    pub description: Option<String>,
    pub bucket: Option<String>,
    pub buckets: Option<u32>,
    pub file: PathBuf,
    pub steps: Vec<StepSpec>,
}

pub fn load(path: &Path, scale: f64) -> Result<Scenario, BenchError> {
    let text = std::fs::read_to_string(path).map_err(|source| BenchError::ScenarioRead {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path, scale)
}

pub fn parse(text: &str, path: &Path, scale: f64) -> Result<Scenario, BenchError> {
    let bad = |message: String| BenchError::ScenarioParse {
        path: path.to_path_buf(),
        message,
    };
    let file: ScenarioFile =
        toml::from_str(text).map_err(|e| bad(e.to_string().trim_end().to_string()))?;
    if file.steps.is_empty() {
        return Err(bad("no [[step]] tables".into()));
    }
    let name = file.name.unwrap_or_else(|| {
        path.file_stem()
            .map_or("scenario".into(), |s| s.to_string_lossy().into_owned())
    });
    let mut steps = Vec::new();
    for (i, params) in file.steps.into_iter().enumerate() {
        let params = params.or(&file.defaults);
        steps.extend(
            params
                .resolve(&format!("#{}", i + 1), scale)
                .map_err(|e| bad(e.to_string()))?,
        );
    }
    if steps.len() > SCENARIO_STEPS_MAX {
        return Err(bad(format!(
            "{} steps after sweeps, at most {SCENARIO_STEPS_MAX}",
            steps.len()
        )));
    }
    let mut names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(bad(format!(
            "two steps are named {:?}; name them apart",
            w[0]
        )));
    }
    Ok(Scenario {
        name,
        description: file.description,
        bucket: file.bucket,
        buckets: file.buckets,
        file: path.to_path_buf(),
        steps,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::s3::PayloadMode;
    use crate::workload::mix::{Mix, MIX_DEFAULT};
    use crate::workload::spec::WorkloadKind;

    fn parse_str(text: &str) -> Result<Scenario, BenchError> {
        parse(text, Path::new("t.toml"), 1.0)
    }

    #[test]
    fn steps_take_defaults_and_sweeps_expand() {
        let s = parse_str(
            r#"
            name = "demo"
            description = "two steps"
            [defaults]
            payload = "chunked"
            request_timeout = "30s"
            [[step]]
            name = "big"
            workload = "put"
            size = "64MiB"
            count = 8
            concurrency = [1, 4]
            [[step]]
            workload = "mixed"
            size = 4096
            duration = "2s"
            read_fraction = 0.7
            payload = "signed"
            "#,
        )
        .unwrap();
        assert_eq!(s.name, "demo");
        assert_eq!(s.steps.len(), 3);
        assert_eq!(s.steps[0].name, "big-c1");
        assert_eq!(s.steps[1].concurrency, 4);
        assert_eq!(s.steps[0].payload, PayloadMode::Chunked);
        assert_eq!(s.steps[0].request_timeout, Duration::from_secs(30));
        let mixed = &s.steps[2];
        assert_eq!(mixed.kind, WorkloadKind::Mixed);
        assert_eq!(mixed.name, "mixed-4KiB");
        assert_eq!(mixed.payload, PayloadMode::Signed);
        assert_eq!(
            (mixed.count, mixed.duration),
            (None, Some(Duration::from_secs(2)))
        );
        assert_eq!(mixed.mix, Mix::from_read_fraction(0.7));
    }

    #[test]
    fn mixed_steps_take_a_mix_as_a_table_or_a_string() {
        let s = parse_str(
            r#"
            [[step]]
            name = "table"
            workload = "mixed"
            mix = { get = 45, stat = 30, put = 15, delete = 10 }
            [[step]]
            name = "text"
            workload = "mixed"
            mix = "get=1,put=1"
            [[step]]
            name = "default"
            workload = "mixed"
            "#,
        )
        .unwrap();
        assert_eq!(s.steps[0].mix, MIX_DEFAULT);
        assert_eq!(s.steps[1].mix, "get=1,put=1".parse::<Mix>().unwrap());
        assert_eq!(s.steps[2].mix, MIX_DEFAULT);
        for (text, needle) in [
            ("workload = \"mixed\"\nmix = \"get=1,post=1\"", "kinds are"),
            ("workload = \"get\"\nmix = \"get=1\"", "only mixed"),
            (
                "workload = \"mixed\"\nmix = \"get=1\"\nread_fraction = 0.5",
                "not both",
            ),
            (
                "workload = \"mixed\"\nobjects = 2\nconcurrency = 4",
                "one key per worker",
            ),
        ] {
            let err = parse_str(&format!("[[step]]\n{text}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        for (text, needle) in [
            ("[[step]]\nworkload = \"put\"\nsizee = 1", "unknown field"),
            ("[[step]]\nworkload = \"teleport\"", "unknown variant"),
            ("name = \"x\"", "no [[step]]"),
            (
                "[[step]]\nworkload = \"put\"\nsize = \"12 parsecs\"",
                "bad size",
            ),
            (
                "[[step]]\nworkload = \"put\"\nconcurrency = 0",
                "concurrency",
            ),
            (
                "[[step]]\nworkload = \"put\"\n[[step]]\nworkload = \"put\"",
                "two steps",
            ),
        ] {
            let err = parse_str(text).unwrap_err().to_string();
            assert!(
                err.contains("t.toml") && err.contains(needle),
                "{text:?}: {err}"
            );
        }
    }

    #[test]
    fn shipped_scenarios_parse() {
        // Read at run time: a test binary cached from a build of another
        // checkout must still look at this one's scenarios.
        let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets it");
        let dir = Path::new(&manifest_dir).join("scenarios");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let s = load(&path, 0.25).unwrap_or_else(|e| panic!("{e}"));
                assert!(!s.steps.is_empty());
                seen += 1;
            }
        }
        for name in [
            "large-put",
            "small-put",
            "get-large",
            "mixed",
            "sweep",
            "overload",
        ] {
            assert!(
                dir.join(format!("{name}.toml")).exists(),
                "{name}.toml missing"
            );
        }
        assert!(seen >= 6);
    }
}
