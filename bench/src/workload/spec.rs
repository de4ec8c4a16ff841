//! A step's parameters: [`StepParams`] as written (every field optional, in
//! a scenario file or from flags), merged over defaults, then validated and
//! expanded into [`StepSpec`]s, one per concurrency of a sweep. Validation
//! errors name the step, the field and its value.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::BenchError;
use crate::limits::{
    CONCURRENCY_MAX, INTERVAL_DEFAULT, INTERVAL_MIN, OBJECT_BYTES_MAX, PREPARE_OBJECTS_MAX,
    RATE_MAX, REQUEST_TIMEOUT_DEFAULT, RETRIES_MAX,
};
use crate::s3::PayloadMode;
use crate::units::{ByteSize, HumanDuration};
use crate::workload::mix::{Mix, MIX_DEFAULT};

/// Object size when none is given.
pub const SIZE_DEFAULT: ByteSize = ByteSize(1 << 20);
/// Operations when neither a count nor a duration is given.
pub const COUNT_DEFAULT: u64 = 64;
pub const CONCURRENCY_DEFAULT: usize = 8;
/// Key prefix under the bucket; each step adds its own name below it.
pub const PREFIX_DEFAULT: &str = "shoal-bench/";
/// Objects a list step prepares when none is given.
pub const LIST_OBJECTS_DEFAULT: u64 = 100;
/// Object size of a list step when none is given: small, so a million
/// objects prepare quickly and take little space; a listing does not read
/// them.
pub const LIST_SIZE_DEFAULT: ByteSize = ByteSize(1 << 10);
/// Read steps prepare at least this many objects (one per worker if more).
pub const READ_OBJECTS_MIN: u64 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    Put,
    Get,
    /// GET, STAT, PUT and DELETE over one set of objects (`mix`).
    Mixed,
    /// ListObjectsV2 over the step's prepared objects.
    List,
    Delete,
}

impl WorkloadKind {
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Put => "put",
            WorkloadKind::Get => "get",
            WorkloadKind::Mixed => "mixed",
            WorkloadKind::List => "list",
            WorkloadKind::Delete => "delete",
        }
    }

    /// Whether the step needs objects to exist before it starts.
    pub fn reads_existing(self) -> bool {
        !matches!(self, WorkloadKind::Put)
    }
}

/// One concurrency, or a list to sweep.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Concurrency {
    One(usize),
    Sweep(Vec<usize>),
}

/// A step as written: any field may be missing.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepParams {
    pub name: Option<String>,
    pub workload: Option<WorkloadKind>,
    pub size: Option<ByteSize>,
    pub count: Option<u64>,
    pub duration: Option<HumanDuration>,
    pub concurrency: Option<Concurrency>,
    pub objects: Option<u64>,
    pub prefix: Option<String>,
    pub payload: Option<PayloadMode>,
    pub expect_continue: Option<bool>,
    pub retries: Option<u32>,
    pub verify: Option<bool>,
    pub prepare: Option<bool>,
    pub read_fraction: Option<f64>,
    pub mix: Option<Mix>,
    pub interval: Option<HumanDuration>,
    pub rate: Option<f64>,
    pub request_timeout: Option<HumanDuration>,
}

/// One runnable step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepSpec {
    pub name: String,
    /// The sweep this step belongs to (the unexpanded step's name).
    pub sweep: Option<String>,
    pub kind: WorkloadKind,
    pub object_bytes: u64,
    pub count: Option<u64>,
    pub duration: Option<Duration>,
    pub concurrency: usize,
    /// Keys read, listed or deleted (prepared first); for PUT, when set,
    /// the keys cycle through this many.
    pub objects: Option<u64>,
    /// Full key prefix of this step's objects, ending in `/`.
    pub prefix: String,
    pub payload: PayloadMode,
    pub expect_continue: bool,
    pub retries: u32,
    pub verify: bool,
    pub prepare: bool,
    /// Operation shares of a mixed step (unused by the others).
    pub mix: Mix,
    /// Width of the intervals of the interval statistics.
    pub interval: Duration,
    /// Constant-rate mode: operations per second, each started at its
    /// intended time; `None`: closed loop (each worker starts its next
    /// operation when its last one ends).
    pub rate: Option<f64>,
    pub request_timeout: Duration,
}

impl StepParams {
    /// Each field of `self`, or else of `defaults`.
    pub fn or(self, defaults: &StepParams) -> StepParams {
        let d = defaults.clone();
        StepParams {
            name: self.name.or(d.name),
            workload: self.workload.or(d.workload),
            size: self.size.or(d.size),
            count: self.count.or(d.count),
            duration: self.duration.or(d.duration),
            concurrency: self.concurrency.or(d.concurrency),
            objects: self.objects.or(d.objects),
            prefix: self.prefix.or(d.prefix),
            payload: self.payload.or(d.payload),
            expect_continue: self.expect_continue.or(d.expect_continue),
            retries: self.retries.or(d.retries),
            verify: self.verify.or(d.verify),
            prepare: self.prepare.or(d.prepare),
            read_fraction: self.read_fraction.or(d.read_fraction),
            mix: self.mix.or(d.mix),
            interval: self.interval.or(d.interval),
            rate: self.rate.or(d.rate),
            request_timeout: self.request_timeout.or(d.request_timeout),
        }
    }

    /// Validates and expands into one step per concurrency; sizes are
    /// multiplied by `scale`. `fallback_name` names an unnamed step.
    pub fn resolve(&self, fallback_name: &str, scale: f64) -> Result<Vec<StepSpec>, BenchError> {
        let kind = self.workload.ok_or_else(|| {
            BenchError::invalid(
                format!("step {fallback_name}: workload"),
                "(missing)",
                "put, get, mixed, list or delete",
            )
        })?;
        if !(scale > 0.0 && scale.is_finite()) {
            return Err(BenchError::invalid(
                "--scale",
                scale,
                "must be a positive number",
            ));
        }
        let size = match (self.size, kind) {
            (Some(size), _) => size,
            (None, WorkloadKind::List) => LIST_SIZE_DEFAULT,
            (None, _) => SIZE_DEFAULT,
        }
        .scaled(scale);
        let base = self
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-{}", kind.name(), size.to_string().replace(' ', "")));
        let field = |name: &str| format!("step {base}: {name}");
        let template = self.template(kind, size, &field)?;
        let concurrencies = self.concurrencies(&field)?;
        let sweep = (concurrencies.len() > 1).then(|| base.clone());
        let prefix = self.prefix.as_deref().unwrap_or(PREFIX_DEFAULT);
        concurrencies
            .into_iter()
            .map(|concurrency| {
                if !(1..=CONCURRENCY_MAX).contains(&concurrency) {
                    return Err(BenchError::invalid(
                        field("concurrency"),
                        concurrency,
                        format!("must be within 1..={CONCURRENCY_MAX}"),
                    ));
                }
                let name = match sweep {
                    Some(_) => format!("{base}-c{concurrency}"),
                    None => base.clone(),
                };
                Ok(StepSpec {
                    prefix: format!("{prefix}{}/", slug(&name)),
                    name,
                    sweep: sweep.clone(),
                    concurrency,
                    objects: self.objects_for(kind, template.count, concurrency, &field)?,
                    ..template.clone()
                })
            })
            .collect()
    }

    /// Everything but the name, concurrency, objects and prefix, checked.
    fn template(
        &self,
        kind: WorkloadKind,
        size: ByteSize,
        field: &dyn Fn(&str) -> String,
    ) -> Result<StepSpec, BenchError> {
        if size.bytes() > OBJECT_BYTES_MAX {
            return Err(BenchError::invalid(
                field("size"),
                size,
                format!("at most {}", ByteSize(OBJECT_BYTES_MAX)),
            ));
        }
        let duration = self.duration.map(|d| d.0);
        if duration.is_some_and(|d| d.is_zero()) {
            return Err(BenchError::invalid(
                field("duration"),
                "0s",
                "must be positive",
            ));
        }
        if self.count == Some(0) {
            return Err(BenchError::invalid(field("count"), 0, "must be at least 1"));
        }
        let retries = self.retries.unwrap_or(0);
        if retries > RETRIES_MAX {
            return Err(BenchError::invalid(
                field("retries"),
                retries,
                format!("at most {RETRIES_MAX}"),
            ));
        }
        let request_timeout = self
            .request_timeout
            .map_or(REQUEST_TIMEOUT_DEFAULT, |d| d.0);
        if request_timeout.is_zero() {
            return Err(BenchError::invalid(
                field("request_timeout"),
                "0s",
                "must be positive",
            ));
        }
        let interval = self.interval.map_or(INTERVAL_DEFAULT, |d| d.0);
        if interval < INTERVAL_MIN {
            return Err(BenchError::invalid(
                field("interval"),
                format!("{interval:?}"),
                format!("at least {INTERVAL_MIN:?}"),
            ));
        }
        if let Some(rate) = self.rate.filter(|r| !(*r > 0.0 && *r <= RATE_MAX)) {
            return Err(BenchError::invalid(
                field("rate"),
                rate,
                format!("operations per second, above 0 and at most {RATE_MAX}"),
            ));
        }
        Ok(StepSpec {
            name: String::new(),
            sweep: None,
            kind,
            object_bytes: size.bytes(),
            count: match (self.count, duration) {
                (None, None) => Some(COUNT_DEFAULT),
                (count, _) => count,
            },
            duration,
            concurrency: 0,
            objects: None,
            prefix: String::new(),
            payload: self.payload.unwrap_or_default(),
            expect_continue: self.expect_continue.unwrap_or(false),
            retries,
            verify: self.verify.unwrap_or(false),
            prepare: self.prepare.unwrap_or(true),
            mix: self.mix(kind, field)?,
            interval,
            rate: self.rate,
            request_timeout,
        })
    }

    /// The mixed step's shares: `mix`, else `read_fraction` (GET and PUT
    /// only, as before STAT and DELETE existed), else warp's mix.
    fn mix(&self, kind: WorkloadKind, field: &dyn Fn(&str) -> String) -> Result<Mix, BenchError> {
        let mixed_only = |name: &str, value: String| {
            BenchError::invalid(field(name), value, "only mixed steps have a mix")
        };
        match (self.mix, self.read_fraction) {
            (Some(mix), _) if kind != WorkloadKind::Mixed => {
                Err(mixed_only("mix", mix.to_string()))
            }
            (_, Some(f)) if kind != WorkloadKind::Mixed => {
                Err(mixed_only("read_fraction", f.to_string()))
            }
            (Some(mix), Some(f)) => Err(BenchError::invalid(
                field("read_fraction"),
                f,
                format!("give either mix ({mix}) or read_fraction, not both"),
            )),
            (Some(mix), None) => Ok(mix),
            (None, Some(f)) if !(0.0..=1.0).contains(&f) => Err(BenchError::invalid(
                field("read_fraction"),
                f,
                "must be within 0..=1",
            )),
            (None, Some(f)) => Ok(Mix::from_read_fraction(f)),
            (None, None) => Ok(MIX_DEFAULT),
        }
    }

    fn concurrencies(&self, field: &dyn Fn(&str) -> String) -> Result<Vec<usize>, BenchError> {
        match &self.concurrency {
            None => Ok(vec![CONCURRENCY_DEFAULT]),
            Some(Concurrency::One(n)) => Ok(vec![*n]),
            Some(Concurrency::Sweep(list)) if list.is_empty() => Err(BenchError::invalid(
                field("concurrency"),
                "[]",
                "list at least one",
            )),
            Some(Concurrency::Sweep(list)) => Ok(list.clone()),
        }
    }

    /// The keys a step of `concurrency` reads, lists, deletes or cycles.
    fn objects_for(
        &self,
        kind: WorkloadKind,
        count: Option<u64>,
        concurrency: usize,
        field: &dyn Fn(&str) -> String,
    ) -> Result<Option<u64>, BenchError> {
        let workers = concurrency as u64;
        let objects = match (kind, self.objects) {
            (_, Some(0)) => {
                return Err(BenchError::invalid(
                    field("objects"),
                    0,
                    "must be at least 1",
                ))
            }
            // Each mixed operation holds its key (workload/keys.rs): a
            // worker must always find a free one.
            (WorkloadKind::Mixed, Some(n)) if n < workers => {
                return Err(BenchError::invalid(
                    field("objects"),
                    n,
                    format!("a mixed step needs at least one key per worker ({concurrency})"),
                ))
            }
            (_, Some(n)) => Some(n),
            (WorkloadKind::Put, None) => None,
            (WorkloadKind::List, None) => Some(LIST_OBJECTS_DEFAULT),
            (WorkloadKind::Delete, None) => Some(count.unwrap_or(COUNT_DEFAULT)),
            (WorkloadKind::Mixed, None) => Some(workers.max(READ_OBJECTS_MIN)),
            (WorkloadKind::Get, None) => {
                let wanted = workers.max(READ_OBJECTS_MIN);
                Some(count.map_or(wanted, |c| c.min(wanted)))
            }
        };
        if kind.reads_existing() && objects.is_some_and(|n| n > PREPARE_OBJECTS_MAX) {
            return Err(BenchError::invalid(
                field("objects"),
                objects.unwrap_or(0),
                format!("at most {PREPARE_OBJECTS_MAX}"),
            ));
        }
        Ok(objects)
    }
}

/// A key-safe form of a step name.
fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A resolved one-step spec of `kind`, adjusted by `edit`.
    pub(crate) fn spec_of(kind: WorkloadKind, edit: impl FnOnce(&mut StepSpec)) -> StepSpec {
        let mut spec = StepParams {
            workload: Some(kind),
            ..StepParams::default()
        }
        .resolve("t", 1.0)
        .unwrap()
        .remove(0);
        edit(&mut spec);
        spec
    }

    #[test]
    fn defaults_fill_an_empty_step() {
        let spec = spec_of(WorkloadKind::Put, |_| {});
        assert_eq!(spec.name, "put-1MiB");
        assert_eq!(spec.object_bytes, 1 << 20);
        assert_eq!(spec.count, Some(COUNT_DEFAULT));
        assert_eq!(spec.concurrency, CONCURRENCY_DEFAULT);
        assert_eq!(spec.prefix, "shoal-bench/put-1MiB/");
        assert_eq!(spec.payload, PayloadMode::Unsigned);
        assert_eq!(
            (spec.retries, spec.expect_continue, spec.verify),
            (0, false, false)
        );
        assert_eq!(spec.objects, None);
    }

    #[test]
    fn a_duration_alone_means_no_count() {
        let params = StepParams {
            workload: Some(WorkloadKind::Put),
            duration: Some(HumanDuration(Duration::from_secs(3))),
            ..StepParams::default()
        };
        let spec = params.resolve("t", 1.0).unwrap().remove(0);
        assert_eq!(
            (spec.count, spec.duration),
            (None, Some(Duration::from_secs(3)))
        );
    }

    #[test]
    fn sweeps_expand_one_step_per_concurrency() {
        let params = StepParams {
            name: Some("large put".into()),
            workload: Some(WorkloadKind::Put),
            size: Some(ByteSize(64 << 20)),
            concurrency: Some(Concurrency::Sweep(vec![1, 4, 16])),
            ..StepParams::default()
        };
        let steps = params.resolve("t", 0.25).unwrap();
        let names: Vec<_> = steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["large put-c1", "large put-c4", "large put-c16"]);
        assert!(steps
            .iter()
            .all(|s| s.sweep.as_deref() == Some("large put")));
        assert!(steps.iter().all(|s| s.object_bytes == 16 << 20));
        assert_eq!(steps[1].prefix, "shoal-bench/large-put-c4/");
    }

    #[test]
    fn read_steps_get_a_keyspace() {
        let get = spec_of(WorkloadKind::Get, |_| {});
        assert_eq!(get.objects, Some(READ_OBJECTS_MIN));
        let list = spec_of(WorkloadKind::List, |_| {});
        assert_eq!(list.objects, Some(LIST_OBJECTS_DEFAULT));
        let delete = spec_of(WorkloadKind::Delete, |_| {});
        assert_eq!(delete.objects, Some(COUNT_DEFAULT));
        let params = StepParams {
            workload: Some(WorkloadKind::Get),
            count: Some(4),
            ..StepParams::default()
        };
        assert_eq!(params.resolve("t", 1.0).unwrap()[0].objects, Some(4));
    }

    #[test]
    fn bad_values_are_rejected_with_their_field() {
        let bad = [
            StepParams {
                concurrency: Some(Concurrency::One(0)),
                ..Default::default()
            },
            StepParams {
                concurrency: Some(Concurrency::Sweep(vec![])),
                ..Default::default()
            },
            StepParams {
                count: Some(0),
                ..Default::default()
            },
            StepParams {
                retries: Some(RETRIES_MAX + 1),
                ..Default::default()
            },
            StepParams {
                size: Some(ByteSize(OBJECT_BYTES_MAX + 1)),
                ..Default::default()
            },
            StepParams {
                duration: Some(HumanDuration(Duration::ZERO)),
                ..Default::default()
            },
            StepParams {
                interval: Some(HumanDuration(Duration::from_millis(50))),
                ..Default::default()
            },
            StepParams {
                rate: Some(0.0),
                ..Default::default()
            },
            StepParams {
                rate: Some(f64::NAN),
                ..Default::default()
            },
            StepParams {
                rate: Some(RATE_MAX * 2.0),
                ..Default::default()
            },
        ];
        for params in bad {
            let params = StepParams {
                workload: Some(WorkloadKind::Put),
                ..params
            };
            let err = params.resolve("t", 1.0).unwrap_err().to_string();
            assert!(err.starts_with("step put-"), "{err}");
        }
        let mixed_only = StepParams {
            workload: Some(WorkloadKind::Get),
            read_fraction: Some(0.5),
            ..Default::default()
        };
        assert!(mixed_only
            .resolve("t", 1.0)
            .unwrap_err()
            .to_string()
            .contains("read_fraction"));
        let missing = StepParams::default()
            .resolve("third", 1.0)
            .unwrap_err()
            .to_string();
        assert!(missing.contains("step third: workload"), "{missing}");
    }

    #[test]
    fn step_fields_fall_back_to_defaults() {
        let defaults = StepParams {
            payload: Some(PayloadMode::Chunked),
            count: Some(5),
            ..Default::default()
        };
        let step = StepParams {
            count: Some(9),
            ..Default::default()
        }
        .or(&defaults);
        assert_eq!(
            (step.payload, step.count),
            (Some(PayloadMode::Chunked), Some(9))
        );
    }
}
