//! Workloads: what a step does ([`spec::StepSpec`], built from flags or a
//! scenario file by [`spec::StepParams`]), which operation comes next
//! ([`plan::Plan`], pure; a mixed step's shares in [`mix`] and its keys'
//! existence in [`keys`]), and the tokio driver that runs a step's workers
//! ([`runner`]).
//!
//! A step opens `concurrency` keep-alive connections, one per worker task;
//! workers take operation numbers from one atomic counter until the count
//! is reached or the deadline passes, and report every attempt to the
//! step's collector over a bounded channel. In-flight operations finish
//! after the deadline (each bounded by `request_timeout`); none is started
//! after it.

pub mod keys;
pub mod mix;
pub mod plan;
pub mod progress;
mod retry;
pub mod runner;
#[cfg(test)]
mod runner_test;
pub mod schedule;
pub mod spec;
pub mod target;
mod worker;
