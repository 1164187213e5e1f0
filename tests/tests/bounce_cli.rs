//! `hato bounce classify FILE` prints one JSON object per bounced recipient.

use hato_tests::hato;

fn fixture(name: &str) -> String {
    format!(
        "{}/../node/mail/bounce/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn classify(name: &str) -> Vec<serde_json::Value> {
    let out = hato(&["bounce", "classify", &fixture(name)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn classifies_a_postfix_dsn_and_a_rate_limit() {
    let r = classify("postfix.eml");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["recipient"], "nobody@example.org");
    assert_eq!(r[0]["reason"], "userunknown");
    assert_eq!(r[0]["code"], 2);
    assert_eq!(r[0]["status"], "5.1.1");
    for key in ["diagnostic", "remote_host"] {
        assert!(r[0].get(key).is_some(), "{key} missing");
    }
    let r = classify("gmail_ratelimit.eml");
    assert_eq!(
        r[0]["reason"], "speeding",
        "a rate limit is never userunknown"
    );
}

#[test]
fn a_file_that_is_not_a_bounce_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("plain.eml");
    std::fs::write(&p, "From: a@example.com\r\nSubject: hi\r\n\r\nhello\r\n").unwrap();
    let out = hato(&["bounce", "classify", p.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a bounce"));
    let out = hato(&["bounce", "classify", "/nonexistent.eml"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.eml"));
}
