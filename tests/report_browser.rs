//! `bpsc report` opened in a real browser: Debian's Chromium, headless.  The test writes
//! the report of a small HTCondor-shaped campaign (a failure with a retry, a hostile host
//! name), loads it with `--dump-dom` and checks the DOM the browser built (step names,
//! counts, a failure row, no element a value could have injected), takes a screenshot
//! (kept as an artefact: `target/report-browser/report.png`) and prints the page to PDF,
//! and fails on any console message (Chromium logs them with `--enable-logging=stderr`:
//! script errors, blocked resources, Content-Security-Policy violations).
//!
//! Enabled when `CI` is set, when `BPSC_BROWSER_TESTS=1`, or when `chromium` is installed;
//! under CI a missing browser fails the test (`tests/run.sh` installs it).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

fn chromium() -> Option<PathBuf> {
    let candidates = [std::env::var("BPSC_CHROMIUM").unwrap_or_default(), "/usr/bin/chromium".into(), "/usr/bin/chromium-browser".into()];
    candidates.iter().filter(|c| !c.is_empty()).map(PathBuf::from).find(|p| p.is_file())
}

/// Run Chromium headless on `url` with `extra` flags, in a fresh profile; (stdout, stderr).
fn headless(browser: &Path, profile: &Path, url: &str, extra: &[String]) -> (String, String) {
    let _ = std::fs::remove_dir_all(profile);
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-default-apps",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    // Read both pipes on threads; kill the browser if it hangs.
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t1 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut so, &mut s);
        s
    });
    let t2 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut se, &mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 120 s on {url}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (t1.join().unwrap(), t2.join().unwrap())
}

/// Console messages in Chromium's log: `...:CONSOLE(...)] "message", source: ...`.
fn console(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

/// A report worth looking at: the mini campaign, calibrate 2,1 failing once on a host with
/// a hostile name before succeeding, coadd 3 failing on every try (killed, signal 9).
fn write_report(dir: &Path) -> PathBuf {
    let sub = dir.join("submit");
    let bps = common::mini_campaign(dir, "mini");
    let (code, _, err) = bpsc_cmd!("compile", bps, "--backend", "htcondor", "-o", &sub);
    assert_eq!(code, 0, "{err}");
    let t0 = 1_796_605_323.0;
    common::synth_records(&sub, |t| {
        let id = t.line["id"].as_str().unwrap();
        let start = t0 + t.index as f64 * 40.0 + if id.starts_with("coadd") { 600.0 } else { 0.0 };
        let ok = |s: f64| {
            json!({"exit_code": 0, "host": "worker-1", "start": common::rfc3339(s), "end": common::rfc3339(s + 120.0), "seconds": 120.0,
                   "peak_rss_kib": 300_000 + t.index * 20_000, "software": "lsst_distrib w_2026_46",
                   "outputs": [{"dataset": "calexp", "path": "/scratch/x", "size": 1_000_000}]})
        };
        let fail = |s: f64, host: &str, exit: Option<i64>, sig: Option<i64>| {
            json!({"exit_code": exit, "signal": sig, "host": host, "start": common::rfc3339(s), "end": common::rfc3339(s + 30.0), "seconds": 30.0,
                   "peak_rss_kib": 900_000, "error": "payload failed <b>badly</b>"})
        };
        match id {
            "calibrate_2_1" => vec![fail(start, "<img src=x onerror=alert(1)>", Some(1), None), ok(start + 60.0)],
            "coadd_3" => vec![fail(start, "worker-2", None, Some(9)), fail(start + 60.0, "worker-2", None, Some(9))],
            _ => vec![ok(start)],
        }
    });
    common::dag_finished(&sub, 1);
    let out = dir.join("report.html");
    let (code, _, err) = bpsc_cmd!("report", &sub, "-o", &out);
    assert_eq!(code, 0, "{err}");
    out
}

#[test]
fn report_in_headless_chromium() {
    let ci = std::env::var_os("CI").is_some();
    let browser = chromium();
    let Some(browser) = browser else {
        if ci || std::env::var("BPSC_BROWSER_TESTS").as_deref() == Ok("1") {
            panic!("chromium is not installed (tests/run.sh installs it: apt-get install chromium); CI must run the browser test");
        }
        eprintln!("SKIPPED: no chromium; install it (apt-get install chromium) or run tests/run.sh");
        return;
    };
    let dir = common::fresh("report-browser");
    let html = write_report(&dir);
    let url = format!("file://{}", html.display());
    let artefacts = common::repo().join("target/report-browser");
    std::fs::create_dir_all(&artefacts).unwrap();
    // The DOM as the browser built it.
    let (dom, log) = headless(&browser, &dir.join("profile-dom"), &url, &["--dump-dom".into()]);
    std::fs::write(artefacts.join("report.dom.html"), &dom).unwrap();
    assert!(dom.contains("<h1 id=\"campaign\">mini</h1>"), "the page did not load: {}", &dom[..dom.len().min(500)]);
    assert_eq!(console(&log), Vec::<&str>::new(), "console messages");
    for s in ["calibrate", "coadd"] {
        assert!(dom.contains("<tr id=\"step-") && dom.contains(&format!("data-step=\"{s}\"")), "step {s}");
    }
    let row = |step: &str| -> String {
        let k = dom.find(&format!("data-step=\"{step}\" data-kind=\"compute\"")).unwrap_or_else(|| panic!("row of {step}"));
        dom[k..k + dom[k..].find("</tr>").unwrap()].to_string()
    };
    let cal = row("calibrate");
    assert!(cal.contains("data-count=\"succeeded\">9<") && cal.contains("data-count=\"attempts\">10<"), "{cal}");
    let coadd = row("coadd");
    assert!(coadd.contains("data-count=\"failed\">1<") && coadd.contains("data-count=\"succeeded\">2<"), "{coadd}");
    assert!(dom.contains("<b id=\"total-failed\">1</b>"));
    // The failure rows: coadd 3 still failed first, then calibrate 2,1's failed first try.
    let k = dom.find("<tr class=\"failure\" data-job=\"coadd_3\">").expect("a failure row for coadd_3");
    let r = &dom[k..k + dom[k..].find("</tr>").unwrap()];
    assert!(r.contains("signal 9") && r.contains("worker-2") && r.contains("visit=3") && r.contains(">failed<"), "{r}");
    let k = dom.find("data-job=\"calibrate_2_1\"").expect("a failure row for calibrate_2_1");
    let r = &dom[k..k + dom[k..].find("</tr>").unwrap()];
    assert!(r.contains("&lt;img src=x onerror=alert(1)&gt;") && r.contains(">succeeded<"), "the hostile host is text: {r}");
    // Nothing a value could have injected, and the drawings are there.
    for bad in ["<img", "<script", "<iframe", "onerror=\""] {
        assert!(!dom.contains(bad), "{bad} in the DOM");
    }
    for id in ["graph", "timeline", "resources", "failures", "hosts", "provenance"] {
        assert!(dom.contains(&format!("<section id=\"{id}\"")), "section {id}");
    }
    assert!(
        dom.matches("<svg class=\"graph\"").count() == 1 && dom.contains("<svg class=\"timeline\"") && dom.contains("<svg class=\"hist\"")
    );
    assert!(dom.contains("class=\"att o-retry retry\""), "the retry is drawn");
    // A screenshot, kept.
    let png = artefacts.join("report.png");
    let _ = std::fs::remove_file(&png);
    let (_, log) =
        headless(&browser, &dir.join("profile-png"), &url, &[format!("--screenshot={}", png.display()), "--window-size=1280,2600".into()]);
    assert_eq!(console(&log), Vec::<&str>::new(), "console messages");
    let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("no screenshot {}: {e}\n{log}", png.display()));
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 20_000, "{} bytes", bytes.len());
    // Printable: the print stylesheet gives a PDF.
    let pdf = artefacts.join("report.pdf");
    let _ = std::fs::remove_file(&pdf);
    let (_, log) =
        headless(&browser, &dir.join("profile-pdf"), &url, &[format!("--print-to-pdf={}", pdf.display()), "--no-pdf-header-footer".into()]);
    assert_eq!(console(&log), Vec::<&str>::new(), "console messages");
    let bytes = std::fs::read(&pdf).unwrap_or_else(|e| panic!("no PDF {}: {e}\n{log}", pdf.display()));
    assert!(bytes.starts_with(b"%PDF") && bytes.len() > 10_000, "a PDF: {} bytes", bytes.len());
    eprintln!("artefacts: {} (screenshot), {} (print)", png.display(), pdf.display());
}
