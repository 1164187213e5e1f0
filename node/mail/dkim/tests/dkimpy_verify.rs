//! Verifies hato-dkim signatures with an independent implementation:
//! dkimpy (Debian `python3-dkim`, which pulls in `python3-nacl` for
//! ed25519-sha256 and `python3-dnspython`). RSA key encodings are also checked
//! with the `openssl` command-line tool.
//!
//! The Python interpreter is `$DKIMPY_PYTHON` if set, else the first of
//! `/usr/bin/python3` and `python3` that can import `dkim` and `nacl`.
//! A missing verifier is a test failure, never a skip.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hato_dkim::{generate, Algorithm, DkimKey};

const VERIFY_PY: &str = r#"
import sys, logging, dkim
path, name, txt = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()
logging.basicConfig(stream=sys.stderr, level=logging.DEBUG)
def dnsfunc(query, timeout=5):
    if query.rstrip(b".") == name:
        return txt
    sys.stderr.write("unexpected DNS query %r\n" % query)
    return None
with open(path, "rb") as f:
    msg = f.read()
print(dkim.verify(msg, logger=logging.getLogger("dkim"), dnsfunc=dnsfunc))
"#;

fn python() -> &'static str {
    static PYTHON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PYTHON.get_or_init(|| {
        let candidates = match std::env::var("DKIMPY_PYTHON") {
            Ok(python) => vec![python],
            Err(_) => vec!["/usr/bin/python3".to_string(), "python3".to_string()],
        };
        candidates
            .into_iter()
            .find(|python| {
                Command::new(python)
                    .args(["-c", "import dkim, nacl"])
                    .output()
                    .is_ok_and(|out| out.status.success())
            })
            .expect(
                "dkimpy with ed25519 support not found: install it with \
                 `apt-get install -y python3-dkim python3-nacl` \
                 (or set DKIMPY_PYTHON to a python3 that can import dkim and nacl)",
            )
    })
}

fn temp_path(label: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hato-dkim-{}-{n}-{label}", std::process::id()))
}

/// Runs dkimpy on `message`, returning its verdict and diagnostics.
fn dkimpy_verify(key: &DkimKey, message: &[u8]) -> (bool, String) {
    let path = temp_path("message.eml");
    std::fs::write(&path, message).unwrap();
    let out = Command::new(python())
        .args(["-c", VERIFY_PY])
        .arg(&path)
        .arg(key.dns_name())
        .arg(key.dns_txt())
        .output()
        .expect("failed to run python");
    std::fs::remove_file(&path).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success() && (stdout == "True" || stdout == "False"),
        "dkimpy crashed: {stdout}\n{stderr}"
    );
    (stdout == "True", stderr)
}

fn assert_verifies(key: &DkimKey, message: &[u8]) {
    let (ok, log) = dkimpy_verify(key, message);
    assert!(
        ok,
        "dkimpy rejected a {:?} signature:\n{log}\n{}",
        key.algorithm,
        String::from_utf8_lossy(message)
    );
}

fn assert_fails(key: &DkimKey, message: &[u8], what: &str) {
    let (ok, _) = dkimpy_verify(key, message);
    assert!(
        !ok,
        "dkimpy accepted a {:?} signature after {what}",
        key.algorithm
    );
}

/// RFC 2047 "B" encoded-word for UTF-8 text.
fn encoded_word(text: &str) -> String {
    format!("=?UTF-8?B?{}?=", BASE64.encode(text))
}

fn realistic_message() -> String {
    let subject = format!(
        "{}\r\n {}",
        encoded_word("Rechnung für März – Ihre Bestellung"),
        encoded_word("ist unterwegs 📦 お届け予定")
    );
    let unsubscribe = format!(
        "<https://mail.example.com/unsubscribe/{}>,\r\n <mailto:unsubscribe@example.com?subject=unsubscribe-{}>",
        "a1b2c3d4e5".repeat(8),
        "0f".repeat(20)
    );
    [
        "Return-Path: <bounces+42@example.com>".to_string(),
        format!(
            "From: {} <billing@example.com>",
            encoded_word("Bücherei Müller")
        ),
        "To: \"Alice Example\" <alice@example.net>, bob@example.org,\r\n carol@example.org"
            .to_string(),
        format!("Subject: {subject}"),
        "Date: Tue, 14 Apr 2026 09:30:00 +0200".to_string(),
        "Message-ID: <20260414093000.4f2a@mail.example.com>".to_string(),
        "MIME-Version: 1.0".to_string(),
        format!("List-Unsubscribe: {unsubscribe}"),
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click".to_string(),
        "X-Mailer: Hato".to_string(),
        "Content-Type: multipart/alternative;\r\n boundary=\"=_hato_boundary_1\"".to_string(),
        String::new(),
        "This is a multi-part message in MIME format.".to_string(),
        "--=_hato_boundary_1".to_string(),
        "Content-Type: text/plain; charset=utf-8".to_string(),
        "Content-Transfer-Encoding: quoted-printable".to_string(),
        String::new(),
        "Guten Tag,   ".to_string(),
        String::new(),
        "Ihre Rechnung f=C3=BCr M=C3=A4rz liegt bei.\t ".to_string(),
        "--=_hato_boundary_1".to_string(),
        "Content-Type: text/html; charset=utf-8".to_string(),
        "Content-Transfer-Encoding: base64".to_string(),
        String::new(),
        BASE64.encode("<p>Ihre Rechnung für März liegt bei.</p>"),
        "--=_hato_boundary_1--".to_string(),
        String::new(),
        String::new(),
        String::new(),
    ]
    .join("\r\n")
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{:?} not found", String::from_utf8_lossy(needle)))
}

fn replace_once(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let pos = find(haystack, from);
    [&haystack[..pos], to, &haystack[pos + from.len()..]].concat()
}

/// The `h=` tag of a DKIM-Signature header, unfolded and split.
fn signed_header_names(header: &str) -> Vec<String> {
    let unfolded: String = header.chars().filter(|c| !c.is_whitespace()).collect();
    let start = find(unfolded.as_bytes(), b";h=") + 3;
    let end = start + unfolded[start..].find(';').unwrap();
    unfolded[start..end]
        .split(':')
        .map(str::to_string)
        .collect()
}

fn check_algorithm(algorithm: Algorithm) {
    let key = generate("Example.com", "hato-2026", algorithm).unwrap();
    let message = realistic_message();
    let signed = key.sign(message.as_bytes()).unwrap();
    assert!(signed.ends_with(message.as_bytes()));
    assert_verifies(&key, &signed);

    // The header alone, prepended by the caller, verifies too.
    let header = key.signature_header(message.as_bytes()).unwrap();
    assert!(header.starts_with("DKIM-Signature: ") && header.ends_with(";\r\n"));
    assert!(header.contains("\r\n\t"), "not folded: {header}");
    assert_verifies(&key, format!("{header}{message}").as_bytes());

    // Relaxed canonicalisation: trailing whitespace and trailing blank lines
    // may change in transit.
    let relaxed = replace_once(&signed, b"Guten Tag,   \r\n", b"Guten Tag,\r\n");
    assert_verifies(&key, &[relaxed.as_slice(), b"\r\n\r\n"].concat());

    assert_fails(
        &key,
        &replace_once(&signed, b"liegt bei.\t", b"liegt bei!\t"),
        "changing one body byte",
    );
    let mut subject_changed = signed.clone();
    let subject_start = b"Subject: =?UTF-8?B?";
    subject_changed[find(&signed, subject_start) + subject_start.len()] ^= 0x01;
    assert_fails(&key, &subject_changed, "changing the Subject");

    // Absent headers from the signed list are in h=, so adding one breaks
    // the signature.
    let names = signed_header_names(&header);
    for name in ["From", "Subject", "List-Unsubscribe", "Cc", "Reply-To"] {
        assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
    }
    assert!(!names.iter().any(|n| n == "X-Mailer"), "{names:?}");
    assert_fails(
        &key,
        &replace_once(&signed, b"\r\nDate:", b"\r\nCc: eve@example.org\r\nDate:"),
        "adding a Cc header",
    );
    // Unsigned headers may be added.
    assert_verifies(
        &key,
        &replace_once(&signed, b"\r\nX-Mailer:", b"\r\nX-Spam: no\r\nX-Mailer:"),
    );

    // Bare-LF input is normalised to CRLF and the result verifies.
    let lf_message = message.replace("\r\n", "\n");
    let signed_lf = key.sign(lf_message.as_bytes()).unwrap();
    assert!(signed_lf.ends_with(message.as_bytes()));
    assert_verifies(&key, &signed_lf);
}

#[test]
fn dkimpy_verifies_rsa() {
    check_algorithm(Algorithm::Rsa);
}

#[test]
fn dkimpy_verifies_ed25519() {
    check_algorithm(Algorithm::Ed25519);
}

fn openssl(args: &[&str], input: &[u8]) -> Vec<u8> {
    let path = temp_path("key.der");
    std::fs::write(&path, input).unwrap();
    let out = Command::new("openssl")
        .args(args)
        .arg("-in")
        .arg(&path)
        .output()
        .expect("openssl not found: install it with `apt-get install -y openssl`");
    std::fs::remove_file(&path).unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `p=` must be exactly the public half of `private_key`, in the format
/// RFC 6376 (SPKI) and RFC 8463 (raw 32 bytes) require.
#[test]
fn openssl_agrees_on_key_encodings() {
    let rsa = generate("example.com", "s1", Algorithm::Rsa).unwrap();
    let private = BASE64.decode(&rsa.private_key).unwrap();
    let spki = openssl(
        &["pkey", "-inform", "DER", "-pubout", "-outform", "DER"],
        &private,
    );
    assert_eq!(BASE64.encode(&spki), rsa.public_key);
    let text = openssl(
        &["pkey", "-pubin", "-inform", "DER", "-noout", "-text"],
        &spki,
    );
    assert!(String::from_utf8_lossy(&text).contains("Public-Key: (2048 bit)"));

    // aws-lc-rs writes PKCS#8 v2 (RFC 5958, with the public key), which
    // OpenSSL 3.0 cannot load; check the layout and hand OpenSSL the v1 form
    // built from the 32-byte seed.
    let ed = generate("example.com", "s1", Algorithm::Ed25519).unwrap();
    let private = BASE64.decode(&ed.private_key).unwrap();
    const V2_PREFIX: [u8; 16] = [
        0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    const V1_PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    assert_eq!(private.len(), 83);
    assert_eq!(private[..16], V2_PREFIX);
    let v1 = [&V1_PREFIX[..], &private[16..48]].concat();
    let spki = openssl(
        &["pkey", "-inform", "DER", "-pubout", "-outform", "DER"],
        &v1,
    );
    // Ed25519 SPKI is a fixed 12-byte prefix followed by the raw key.
    assert_eq!(spki.len(), 44);
    assert_eq!(BASE64.encode(&spki[12..]), ed.public_key);
    // The v2 document embeds the same public key.
    assert_eq!(private[48..51], [0x81, 0x21, 0x00]);
    assert_eq!(BASE64.encode(&private[51..]), ed.public_key);
}
