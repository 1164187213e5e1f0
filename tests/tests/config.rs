//! `hato serve` refuses bad configuration with a clear message, before touching anything.

use hato_tests::{hato, hato_ok};

fn serve_with(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("hato.toml");
    std::fs::write(&p, text).unwrap();
    let out = hato(&["serve", "--config", p.to_str().unwrap()]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_config_files_fail_with_clear_errors() {
    let cases = [
        (
            "node_id = 1\nlisten_raft = \"127.0.0.1:1\"\n",
            "unknown field `listen_raft`",
        ),
        ("node_id = -4\n", "node_id"),
        ("node_id = 0\n", "node_id must be a positive integer"),
        ("[listen]\nraft = \"localhost\"\n", "listen.raft"),
        (
            "[cluster]\nelection_timeout_min_ms = 100\n",
            "twice heartbeat_ms",
        ),
        ("this is not toml", "hato.toml"),
    ];
    for (text, want) in cases {
        let (ok, err) = serve_with(text);
        assert!(!ok, "{text:?} was accepted");
        assert!(
            err.contains(want),
            "{text:?}: stderr {err:?} lacks {want:?}"
        );
    }
}

#[test]
fn missing_config_file_is_named() {
    let out = hato(&["serve", "--config", "/nonexistent/hato.toml"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/hato.toml"));
}

#[test]
fn the_shipped_template_passes_config_check() {
    let template = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/hato.example.toml");
    let out = hato_ok(&["config", "check", template]);
    assert!(out.contains("ok"));
}

#[test]
fn the_production_template_passes_config_check() {
    let template = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/hato.toml");
    let out = hato_ok(&["config", "check", template]);
    assert!(out.contains("ok"));
}

#[test]
fn config_check_does_not_print_the_cluster_secret() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hato.toml");
    std::fs::write(&path, "[cluster]\nsecret = \"s3cret-s3cret-s3cret\"\n").unwrap();
    let out = hato_ok(&["config", "check", path.to_str().unwrap()]);
    assert!(out.contains("ok"));
    assert!(!out.contains("s3cret-s3cret-s3cret"), "{out}");
}

/// A client's output piped into a reader that is gone (`hato ... | head -0`): the command ends
/// by SIGPIPE like other command-line tools, not with a panic message.
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let template = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/hato.example.toml");
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(hato_tests::hato_bin())
        .args(["config", "check", template])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    const SIGPIPE: i32 = 13; // Linux
    assert_eq!(
        out.status.signal(),
        Some(SIGPIPE),
        "{:?}: {stderr}",
        out.status
    );
}
