//! A notify command means the same on every engine: each placeholder the checker allows
//! (`{campaign}`, `{event}`, `{step}`, `{job}`, `{data_id}`) is filled in every engine's
//! files and in `bpsc status --watch`, none is left as written for the shell to print, and
//! the campaign's name stays one quoted word (all five renderings go through
//! `bpsc::ir::quote::notify_shell`).

mod common;

const CAMPAIGN: &str = r#"bps 1
dimension visit = 1..3
pipeline p { step a over (visit) { run = "true" } }
campaign c {
  use p
  coverage = visit
  notify { on = [done, failure, slow], slow_after = 1h, command = "echo N {campaign} {event} {step} {job} {data_id} '{job}' \"{data_id}\" {{literal}}" }
}
"#;

#[test]
fn every_engine_fills_every_notify_placeholder() {
    let src = common::fresh("notify-src");
    std::fs::write(src.join("c.bps"), CAMPAIGN).unwrap();
    let ir = common::lower(&src.join("c.bps"), &[]);
    for engine in ["htcondor", "slurm", "pegasus", "pegasus-dax", "nextflow"] {
        let out = common::fresh(&format!("notify-{engine}"));
        common::emit(engine, &ir, &out).unwrap_or_else(|e| panic!("{engine}: {}", e.message));
        let mut carriers = 0;
        for f in common::list_files(&out) {
            let Ok(text) = std::fs::read_to_string(out.join(&f)) else { continue };
            for line in text.lines().filter(|l| l.contains("echo N")) {
                carriers += 1;
                for ph in ["{campaign}", "{event}", "{step}", "{job}", "{data_id}"] {
                    assert!(!line.contains(ph), "{engine}: {f}: {ph} left as written: {line}");
                }
                assert!(line.contains("{literal}"), "{engine}: {f}: `{{{{literal}}}}` is the text {{literal}}: {line}");
            }
        }
        assert!(carriers > 0, "{engine}: no file carries the notify command");
    }
    let watch = bpsc::status::notify::shell_command("echo {campaign} {job} {data_id} {{literal}}");
    assert_eq!(watch, "echo \"${BPSC_CAMPAIGN}\" \"${BPSC_JOB}\" '' {literal}");
}
