// SPDX-License-Identifier: GPL-2.0

//! The `parts` module parameter (`rust/parts.rs`): what [`Parts::parse`]
//! accepts and rejects, the steps a set of parts takes, and the list of
//! implemented parts the module prints.

use vhe_rs_hosttest::parts::{Implemented, Parts, Step, PARTS};

/// Every step, as `struct kvm_vhe_backend_ops` orders its callbacks.
const STEPS: [Step; 9] = [
    Step::VcpuLoad,
    Step::VcpuPut,
    Step::VcpuRun,
    Step::LoadFp,
    Step::CtxflushFp,
    Step::CtxsyncFp,
    Step::PutFp,
    Step::SetupDebug,
    Step::ClearDebug,
];

const FP_STEPS: [Step; 4] = [Step::LoadFp, Step::CtxflushFp, Step::CtxsyncFp, Step::PutFp];
const SYSREGS_STEPS: [Step; 2] = [Step::VcpuLoad, Step::VcpuPut];

fn names(p: Parts) -> Vec<&'static str> {
    p.iter().map(|p| p.name).collect()
}

/// The steps of `STEPS` that `p` takes.
fn taken(p: Parts) -> Vec<Step> {
    STEPS.into_iter().filter(|s| p.takes(*s)).collect()
}

#[test]
fn parse_accepts_the_implemented_parts() {
    assert_eq!(names(Parts::parse("fp").unwrap()), ["fp"]);
    assert_eq!(names(Parts::parse("sysregs").unwrap()), ["sysregs"]);
    // In the table's order, whatever the parameter's; a name twice is once.
    for s in ["fp,sysregs", "sysregs,fp", "fp,sysregs,fp"] {
        assert_eq!(names(Parts::parse(s).unwrap()), ["fp", "sysregs"], "{s:?}");
    }
    assert_eq!(Parts::parse("fp,sysregs"), Parts::parse("sysregs,fp"));
    assert_ne!(Parts::parse("fp"), Parts::parse("sysregs"));
}

#[test]
fn parse_ignores_spaces_and_empty_names() {
    for s in ["", " ", ",", ",,,", " , ,\t"] {
        assert_eq!(Parts::parse(s), Ok(Parts::NONE), "{s:?}");
    }
    for s in [" fp , sysregs ", ",fp,,sysregs,", "\tfp,\tsysregs\n"] {
        assert_eq!(Parts::parse(s), Parts::parse("fp,sysregs"), "{s:?}");
    }
    assert_eq!(Parts::NONE, Parts::default());
    assert_eq!(names(Parts::NONE), Vec::<&str>::new());
}

#[test]
fn parse_rejects_unknown_names() {
    for (s, bad) in [
        ("bogus", "bogus"),
        (" bogus ", "bogus"),
        ("fp,bogus", "bogus"),
        ("bogus,fp", "bogus"),
        ("x,y", "x"),
        // Names are exact: no case folding, no prefixes, no inner spaces.
        ("FP", "FP"),
        ("Sysregs", "Sysregs"),
        ("f", "f"),
        ("fpx", "fpx"),
        ("sys regs", "sys regs"),
        ("fp;sysregs", "fp;sysregs"),
    ] {
        assert_eq!(Parts::parse(s), Err(bad), "{s:?}");
    }
}

#[test]
fn every_part_is_implemented_and_accepted() {
    // Since `debug` (issue 11) the whole VHE world switch of a non-nested VM
    // is Rust: the default, every part.
    assert!(PARTS.iter().all(|p| p.implemented));
    let all = Parts::parse("fp,sysregs,run,debug").unwrap();
    assert_eq!(names(all), ["fp", "sysregs", "run", "debug"]);
    for s in STEPS {
        assert!(all.takes(s), "{s:?}");
    }
}

#[test]
fn takes_the_steps_of_the_chosen_parts() {
    assert_eq!(taken(Parts::NONE), []);
    assert_eq!(taken(Parts::parse("fp").unwrap()), FP_STEPS);
    assert_eq!(taken(Parts::parse("sysregs").unwrap()), SYSREGS_STEPS);
    let both = Parts::parse("sysregs,fp").unwrap();
    let mut want = SYSREGS_STEPS.to_vec();
    want.extend(FP_STEPS);
    assert_eq!(taken(both), want);
    assert!(!both.takes(Step::VcpuRun));
    let run = Parts::parse("run").unwrap();
    assert_eq!(taken(run), [Step::VcpuRun]);
    let debug = Parts::parse("debug").unwrap();
    assert_eq!(taken(debug), [Step::SetupDebug, Step::ClearDebug]);
    // Without `debug`, the debug steps stay in the C.
    let all = Parts::parse("fp,sysregs,run").unwrap();
    for s in [Step::SetupDebug, Step::ClearDebug] {
        assert!(!all.takes(s), "{s:?}");
    }
}

#[test]
fn every_step_is_in_one_part() {
    for s in STEPS {
        let parts: Vec<&str> = PARTS
            .iter()
            .filter(|p| p.steps.contains(&s))
            .map(|p| p.name)
            .collect();
        assert_eq!(parts.len(), 1, "{s:?} in {parts:?}");
    }
    assert_eq!(
        PARTS.iter().map(|p| p.steps.len()).sum::<usize>(),
        STEPS.len()
    );
}

#[test]
fn implemented_lists_the_implemented_parts() {
    assert_eq!(Implemented.to_string(), "fp, sysregs, run, debug");
    let want: Vec<&str> = PARTS
        .iter()
        .filter(|p| p.implemented)
        .map(|p| p.name)
        .collect();
    assert_eq!(Implemented.to_string(), want.join(", "));
    // What it lists is what parse accepts.
    let all = Parts::parse(&Implemented.to_string()).unwrap();
    assert_eq!(names(all), want);
}
