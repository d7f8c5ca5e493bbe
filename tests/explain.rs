//! `bpsc explain CODE` shows an example for every code; each example really produces its
//! code when run through bpsc (checker, then lowering when the check is clean).

use bpsc::diag::codes::CODES;

#[test]
fn every_example_triggers_its_own_code() {
    let mut bad = Vec::new();
    for info in CODES {
        let (diags, text) = bpsc::cli::explain_example(info);
        if !diags.iter().any(|d| d.code == info.code) {
            bad.push(format!("{}: example gives {:?}\n{text}", info.code, diags.iter().map(|d| d.code).collect::<Vec<_>>()));
        }
        assert!(!info.explanation.trim().is_empty() && !info.title.is_empty());
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn explain_prints_a_page_and_rejects_unknown_codes() {
    let mut out = Vec::new();
    assert_eq!(bpsc::cli::explain(Some("e201"), &mut out), 0);
    let s = String::from_utf8(out).unwrap();
    assert!(s.starts_with("E201 (error): undefined name"), "{s}");
    assert!(s.contains("Example (example.bps):") && s.contains("bpsc check example.bps says:") && s.contains("undefined step `aa`"), "{s}");
    let mut out = Vec::new();
    assert_eq!(bpsc::cli::explain(Some("E999"), &mut out), 2);
    let mut out = Vec::new();
    assert_eq!(bpsc::cli::explain(None, &mut out), 0);
    assert_eq!(String::from_utf8(out).unwrap().lines().count(), CODES.len());
}
