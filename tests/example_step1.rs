//! examples/step1_port: the operators' ctrl_bps step-1 configuration in language 1.1 lowers
//! to what each of its ctrl_bps settings means (issue 14): equalDimensions make isr and
//! calibrate_image one to one, partitionDimensions/partitionMaxSize cut each detector's
//! cluster between exposures and never inside one, the finalJob runs always, memory grows
//! only after memory failures up to requestMemoryMax, the per-label throttle holds, and the
//! pipeline's step subset compiles alone.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use bpsc::ir::{FinalWhen, GrowthOn, Ir, JobKind};

fn file() -> std::path::PathBuf {
    common::repo().join("examples/step1_port/step1_port.bps")
}

fn step(ir: &Ir, name: &str) -> u32 {
    ir.steps.iter().position(|s| s.spec.name == name).unwrap_or_else(|| panic!("no step {name}")) as u32
}

/// The value of dimension `dim` of quantum `q` of step `s`.
fn value(ir: &Ir, s: u32, q: u32, dim: &str) -> String {
    let st = &ir.steps[s as usize];
    let c = st.spec.dims.iter().position(|d| d == dim).unwrap_or_else(|| panic!("{} has no {dim}", st.spec.name));
    st.quanta.row(q as usize, &ir.dicts)[c].to_string()
}

#[test]
fn the_ported_settings_mean_what_ctrl_bps_meant() {
    let ir = common::lower(&file(), &[]);
    let (isr, cal, cons) = (step(&ir, "isr"), step(&ir, "calibrate_image"), step(&ir, "consolidate_visit_summary"));
    // 6 exposures x 4 detectors; visit = exposure, so calibrate_image has the same 24.
    assert_eq!(ir.steps[isr as usize].quanta.len(), 24);
    assert_eq!(ir.steps[cal as usize].quanta.len(), 24);
    assert_eq!(ir.steps[cons as usize].quanta.len(), 6);

    // The cluster: per detector, exposures in pairs (max_quanta 4 = 2 exposures x 2 steps),
    // both steps of an exposure in the same job, no exposure in two jobs of a detector.
    let mut jobs_of: BTreeMap<(String, String), BTreeSet<u32>> = BTreeMap::new(); // (exposure, detector) -> jobs
    let mut clustered = 0;
    for (j, job) in ir.jobs.iter().enumerate() {
        if job.kind != JobKind::Compute || job.owner == bpsc::ir::NO_CLUSTER {
            continue;
        }
        clustered += 1;
        let members = ir.job_members(j as u32);
        assert!(members.len() <= 4, "job {j} has {} quanta", members.len());
        let mut dets = BTreeSet::new();
        for m in members {
            let exposure = if m.step == isr { value(&ir, m.step, m.q, "exposure") } else { value(&ir, m.step, m.q, "visit") };
            let det = value(&ir, m.step, m.q, "detector");
            dets.insert(det.clone());
            jobs_of.entry((exposure, det)).or_default().insert(j as u32);
        }
        assert_eq!(dets.len(), 1, "a job holds one detector");
    }
    assert_eq!(clustered, 12, "4 detectors x 3 pairs of exposures");
    assert_eq!(jobs_of.len(), 24);
    for (k, js) in &jobs_of {
        assert_eq!(js.len(), 1, "exposure-detector {k:?} is split over jobs {js:?}");
    }
    // isr -> calibrate_image is one to one (equal dimensions): inside the job, so no edge
    // between two compute jobs leads from an isr quantum to a calibrate_image quantum.
    for &(a, b) in &ir.edges {
        let (ja, jb) = (&ir.jobs[a as usize], &ir.jobs[b as usize]);
        if ja.kind == JobKind::Compute && jb.kind == JobKind::Compute {
            assert!(ir.job_members(b).iter().all(|m| m.step == cons), "only consolidate_visit_summary depends on another compute job");
        }
    }
    // The gather: each visit summary reads the calexps of its 4 detectors.
    let g = &ir.steps[cons as usize].gathers;
    assert_eq!(g.len(), 1);
    for q in 0..6 {
        assert_eq!(g[0].offsets[q + 1] - g[0].offsets[q], 4, "visit summary {q} reads 4 calexps");
    }

    // finalJob (whenRun: ALWAYS).
    let f = ir.final_job.as_ref().expect("the final job");
    assert_eq!(f.spec.name, "merge_butler");
    assert_eq!(f.when, FinalWhen::Always);

    // memoryMultiplier 2 after memory failures only, up to requestMemoryMax 32 GiB.
    for s in &ir.steps {
        assert_eq!(s.settings.memory_growth_on, GrowthOn::Oom, "{}", s.spec.name);
        assert_eq!(s.settings.max_memory, Some(32 << 30), "{}", s.spec.name);
    }
    // The per-label throttle.
    assert_eq!(ir.steps[cons as usize].settings.max_jobs, Some(2));
}

#[test]
fn the_step_subset_compiles_alone() {
    let a = bpsc::pipeline::CompileArgs { file: file(), steps: Some("single_frame".into()), ..Default::default() };
    let mut err = Vec::new();
    let (ir, _) = bpsc::pipeline::lower_file(&bpsc::fs::RealFs, &a, &mut err)
        .unwrap_or_else(|c| panic!("--steps single_frame: exit {c}: {}", String::from_utf8_lossy(&err)));
    let names: Vec<&str> = ir.steps.iter().map(|s| s.spec.name.as_str()).collect();
    assert_eq!(names, ["isr", "calibrate_image"]);
    assert_eq!(ir.compute_jobs(), 12);
}

#[test]
fn every_engine_writes_it() {
    let ir = common::lower(&file(), &[]);
    for engine in ["htcondor", "slurm", "pegasus", "pegasus-dax", "nextflow"] {
        let d = common::fresh(&format!("step1-{engine}"));
        common::emit(engine, &ir, &d).unwrap_or_else(|e| panic!("{engine}: {}", e.message));
    }
}
