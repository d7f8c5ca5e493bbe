//! What a quantum's command says, run through /bin/sh: a gather's `{inputs}` lists every
//! instance it reads (produced or external), `{inputs.NAME}` and `{outputs.NAME}` give one
//! dataset's paths, a `$NAME` in a config value is left for the job's shell while every
//! value bpsc substitutes stays one quoted word; and the job wrapper's tables render the
//! same command as the compiler (issue 17, items 1 and 2).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// A gather of a produced dataset and of an external one, and config values holding
/// `$VAR`, `${VAR}`, a space and other shell text.  `chunk` values include hostile text.
const GATHER: &str = r#"bps 1.1
dimension chrom = ["1", "x y"]
dimension chunk = ["0", "$(touch PWNED)", "it's"]
dataset ref(chrom, chunk) { source = "file:///data/ref/{chrom}/{chunk}.vcf", stage = none }
pipeline p {
  config main {
    tool  = "$TOOLS/bin/merge"
    lib   = "${TOOLS}/lib:$LD_X"
    opts  = "a b"
    odd   = "$1 $(id) ${X:-y} cost$"
  }
  step split over (chrom, chunk) {
    inputs  = [ref]
    outputs = [part]
    run     = "printf '%s\n' split {inputs} {outputs}"
  }
  step merge over (chrom) {
    inputs  = [part]
    outputs = [merged]
    run     = "printf '%s\n' {config.tool} {config.lib} {config.opts} {config.odd} IN={inputs} OUT={outputs} \"P={inputs.part}\" '{config.tool}' M={outputs.merged}"
  }
  step scan over (chrom) {
    inputs  = [ref]
    outputs = [scanned]
    run     = "printf '%s\n' {inputs.ref} -o {outputs.scanned}"
  }
}
campaign c {
  use p with main
  coverage = chrom * chunk
}
"#;

fn bpsc(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bpsc")).args(args).output().expect("bpsc runs")
}

/// Compute job lines of `--emit ir`, by job id.
fn ir_quanta(dir: &Path, file: &Path) -> BTreeMap<String, Value> {
    let out = dir.join("ir");
    let o = bpsc(&["compile", file.to_str().unwrap(), "--emit", "ir", "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(out.join("ir.jsonl")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["kind"] == "compute")
        .map(|v| (v["id"].as_str().unwrap().to_string(), v["quanta"][0].clone()))
        .collect()
}

/// The words /bin/sh makes of `command` (a `printf '%s\n' ...`), with the environment given.
fn words(command: &str, env: &[(&str, &str)]) -> Vec<String> {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = common::fresh(&format!("commands-sh-{}", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
    let o = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .current_dir(&dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(env.iter().copied())
        .output()
        .expect("/bin/sh runs");
    assert!(o.status.success(), "{command}: {}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read_dir(&dir).unwrap().next().is_none(), "{command} created a file: a value ran as shell code");
    String::from_utf8(o.stdout).unwrap().lines().map(String::from).collect()
}

const ENV: &[(&str, &str)] = &[("BPSC_SCRATCH", "/s"), ("TOOLS", "/opt/t"), ("LD_X", "/x")];

#[test]
fn a_gather_reads_every_instance_and_config_vars_stay_for_the_shell() {
    let d = common::fresh("commands-gather");
    let file = d.join("g.bps");
    std::fs::write(&file, GATHER).unwrap();
    let q = ir_quanta(&d, &file);
    // Chunks in value order: "$(touch PWNED)", "0", "it's" (strings sort bytewise).
    let chunks = ["$(touch PWNED)", "0", "it's"];
    let enc = |c: &str| c.replace('$', "%24").replace('(', "%28").replace(')', "%29").replace(' ', "%20").replace('\'', "%27");
    for chrom in ["1", "x y"] {
        let id = q.keys().find(|k| k.starts_with("merge_") && q[*k]["data_id"]["chrom"] == chrom).expect("a merge job").clone();
        let cmd = q[&id]["command"].as_str().unwrap();
        let got = words(cmd, ENV);
        let parts: Vec<String> = chunks.iter().map(|c| format!("/s/part/{}", common_rel(&[chrom, c]))).collect();
        let mut want: Vec<String> = vec![
            "/opt/t/bin/merge".into(),
            "/opt/t/lib:/x".into(),
            "a b".into(),
            "$1 $(id) ${X:-y} cost$".into(),
            format!("IN={}", parts[0]),
        ];
        want.extend(parts[1..].iter().cloned());
        want.push(format!("OUT=/s/merged/{}", common_rel(&[chrom])));
        want.push(format!("P={}", parts.join(" ")));
        want.push("/opt/t/bin/merge".into());
        want.push(format!("M=/s/merged/{}", common_rel(&[chrom])));
        assert_eq!(got, want, "{id}: {cmd}");
        // The job line lists the same instances.
        let inputs: Vec<&str> = q[&id]["inputs"].as_array().unwrap().iter().map(|i| i["path"].as_str().unwrap()).collect();
        let want_inputs: Vec<String> = parts.iter().map(|p| p.replacen("/s/", "${BPSC_SCRATCH}/", 1)).collect();
        assert_eq!(inputs, want_inputs, "{id}");

        // An external gather: every instance's URL, data ID values percent-encoded.
        let id = q.keys().find(|k| k.starts_with("scan_") && q[*k]["data_id"]["chrom"] == chrom).unwrap().clone();
        let got = words(q[&id]["command"].as_str().unwrap(), ENV);
        let mut want: Vec<String> = chunks.iter().map(|c| format!("file:///data/ref/{}/{}.vcf", enc(chrom), enc(c))).collect();
        want.push("-o".into());
        want.push(format!("/s/scanned/{}", common_rel(&[chrom])));
        assert_eq!(got, want, "{id}");
    }
    // A one-to-one input is its one instance.
    let split = q.values().find(|v| v["step"] == "split" && v["data_id"]["chunk"] == "it's").unwrap();
    assert_eq!(split["inputs"].as_array().unwrap().len(), 1);
}

/// `DATASET/V1_V2` as the compiler names an instance (via the library, so the test does not
/// restate the sanitising rule).
fn common_rel(vals: &[&str]) -> String {
    let v: Vec<bpsc::coverage::Value> = vals.iter().map(|s| bpsc::coverage::Value::Str((*s).into())).collect();
    let refs: Vec<&bpsc::coverage::Value> = v.iter().collect();
    bpsc::ir::naming::instance_rel("x", &refs).trim_start_matches("x/").to_string()
}

#[test]
fn the_wrapper_renders_gathers_as_the_compiler_does() {
    let d = common::fresh("commands-tables");
    let file = d.join("g.bps");
    std::fs::write(&file, GATHER).unwrap();
    let want = ir_quanta(&d, &file);
    for backend in ["slurm", "htcondor", "nextflow", "pegasus"] {
        let out = d.join(backend);
        let o = bpsc(&["compile", file.to_str().unwrap(), "--backend", backend, "-o", out.to_str().unwrap()]);
        assert!(o.status.success(), "{backend}: {}", String::from_utf8_lossy(&o.stderr));
        for (id, q) in &want {
            let o = bpsc(&["show", out.to_str().unwrap(), id, "--format", "json"]);
            assert!(o.status.success(), "{backend} {id}: {}", String::from_utf8_lossy(&o.stderr));
            let v: Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(&v["quanta"][0], q, "{backend}: {id} as the wrapper renders it");
        }
    }
}

#[test]
fn quote_with_vars_keeps_one_word_and_only_plain_references() {
    use bpsc::ir::quote::Quote;
    use bpsc::ir::render::quote_with_vars;
    let cases: &[(&str, &[&str])] = &[
        ("$TOOLS/x y", &["/opt/t/x y"]),
        ("${TOOLS}", &["/opt/t"]),
        ("${TOOLS", &["${TOOLS"]),
        ("$", &["$"]),
        ("a$", &["a$"]),
        ("", &[""]),
        ("'$TOOLS'", &["'/opt/t'"]),
        ("$TOOLS$LD_X", &["/opt/t/x"]),
        ("$UNSET_VAR", &[""]),
        ("`id`$TOOLS", &["`id`/opt/t"]),
    ];
    for (v, want) in cases {
        for (q, pre, post) in [(Quote::None, "", ""), (Quote::Double, "\"", "\""), (Quote::Single, "'", "'")] {
            let mut s = String::from("printf '%s\\n' ");
            s.push_str(pre);
            quote_with_vars(v, q, &mut s);
            s.push_str(post);
            assert_eq!(words(&s, ENV), want.iter().map(|w| w.to_string()).collect::<Vec<_>>(), "{v:?} in {q:?}: {s}");
        }
    }
}
