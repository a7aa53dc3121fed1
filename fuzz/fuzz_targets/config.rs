//! config.json and process.json, as `create` and `exec` read them: parsing with field paths, validation
//! into a Plan, and the seccomp compiler. None of it may panic, whatever the bytes.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::{Process, Spec};
use strata::plan::load::parse_json;
use strata::plan::{Plan, ProcessPlan};

fuzz_target!(|data: &[u8]| {
    if let Ok(spec) = parse_json::<Spec>(data) {
        if let Ok(plan) = Plan::new(&spec, Path::new("/bundle")) {
            if let Some(profile) = &plan.seccomp {
                // Errors are fine; panics and hangs are what the fuzzer looks for.
                let _compiled = strata::security::seccomp::compile(profile);
            }
        }
    }
    if let Ok(process) = parse_json::<Process>(data) {
        let _plan = ProcessPlan::new(&process);
    }
});
