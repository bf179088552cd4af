//! Sync rules: tags kept mirrored from a source, on a schedule or on demand. The plugin
//! plans (lists, selects, compares); this module keeps the rules and their runs, decides
//! when they run, copies through import tasks, and pauses for the source's quota.

pub(crate) mod rule;
pub(crate) mod run;
pub(crate) mod runner;
pub(crate) mod schedule;
pub(crate) mod store;
