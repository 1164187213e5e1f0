//! `parse` must never panic: 10 000 randomly mutated / truncated variants of
//! the fixtures go through `parse` and both encodings.
//!
//! `parse` guards mail-parser with `catch_unwind`, so to make this test able
//! to fail, a panic hook counts every panic, caught or not; the test requires
//! zero. (Own test binary, so the hook cannot see other tests' panics.)

use std::sync::atomic::{AtomicUsize, Ordering};

use hato_inbound::{encode, parse, Encoding};

static PANICS: AtomicUsize = AtomicUsize::new(0);

const FIXTURES: &[&[u8]] = &[
    include_bytes!("fixtures/iso2022jp.eml"),
    include_bytes!("fixtures/sjis.eml"),
    include_bytes!("fixtures/utf8_qp.eml"),
    include_bytes!("fixtures/base64.eml"),
    include_bytes!("fixtures/alternative.eml"),
    include_bytes!("fixtures/mixed_attachment.eml"),
    include_bytes!("fixtures/html_only.eml"),
    include_bytes!("fixtures/undeclared_sjis.eml"),
];

/// Byte strings that steer mutations into the interesting parser states.
const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r\n\r\n",
    b"\r\n ",
    b"--",
    b"--MIX-1",
    b"--ALT-2--",
    b"=?",
    b"?=",
    b"=?UTF-8?B?",
    b"=?ISO-2022-JP?Q?",
    b"\x1b$B",
    b"\x1b(B",
    b"=",
    b"=\r\n",
    b";",
    b"\"",
    b"filename*0*=UTF-8''%E8",
    b"Content-Type: multipart/mixed; boundary=MIX-1\r\n",
    b"Content-Type: message/rfc822\r\n\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Content-Disposition: attachment; filename=\"a\"\r\n",
    b"charset=shift_jis",
    b"\xff\xfe\x00",
];

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    let rounds = 1 + rng.below(8);
    for _ in 0..rounds {
        let len = v.len();
        match rng.below(8) {
            0 => v.truncate(rng.below(len + 1)),
            1 => {
                if len > 0 {
                    let i = rng.below(len);
                    v[i] = rng.next() as u8;
                }
            }
            2 => {
                let i = rng.below(len + 1);
                let t = TOKENS[rng.below(TOKENS.len())];
                v.splice(i..i, t.iter().copied());
            }
            3 => {
                let a = rng.below(len + 1);
                let b = (a + rng.below(64)).min(len);
                v.drain(a..b);
            }
            4 => {
                let a = rng.below(len + 1);
                let b = (a + rng.below(128)).min(len);
                let chunk = v[a..b].to_vec();
                let at = rng.below(len + 1);
                v.splice(at..at, chunk);
            }
            5 => {
                if len > 0 {
                    let i = rng.below(len);
                    v[i] = b"\r\n-=?;\"\x1b"[rng.below(8)];
                }
            }
            6 => {
                // drop everything from a random line on (truncated delivery)
                let i = rng.below(len + 1);
                if let Some(p) = v[i..].iter().position(|&b| b == b'\n') {
                    v.truncate(i + p);
                }
            }
            _ => {
                let i = rng.below(len + 1);
                let n = rng.below(16);
                let junk: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                v.splice(i..i, junk);
            }
        }
    }
    v
}

#[test]
fn parse_never_panics_on_mutated_fixtures() {
    std::panic::set_hook(Box::new(|info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        eprintln!("panic: {info}");
    }));

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut runs = 0usize;
    let mut failures = Vec::new();
    for i in 0..10_000 {
        let base = FIXTURES[i % FIXTURES.len()];
        let input = mutate(&mut rng, base);
        let before = PANICS.load(Ordering::SeqCst);
        let mail = parse(&input, "f", "from@example.jp", "to@example.jp");
        let json = encode(&mail, "pro", Some("k"), Encoding::Json, "b");
        let form = encode(&mail, "pro", None, Encoding::Multipart, "b0undary");
        runs += 1;
        assert_eq!(mail.filter, "f");
        assert!(serde_json::from_slice::<serde_json::Value>(&json.body).is_ok());
        assert!(form.body.ends_with(b"--b0undary--\r\n"));
        if PANICS.load(Ordering::SeqCst) != before && failures.len() < 5 {
            failures.push(input);
        }
    }
    let _ = std::panic::take_hook();
    assert_eq!(runs, 10_000);
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        0,
        "panics (caught by parse) on e.g. {:?}",
        failures
            .iter()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect::<Vec<_>>()
    );
}

#[test]
fn truncations_of_every_fixture_do_not_panic() {
    for f in FIXTURES {
        for n in 0..=f.len() {
            let m = parse(&f[..n], "f", "a", "b");
            let _ = encode(&m, "pro", None, Encoding::Multipart, "x");
        }
    }
}
