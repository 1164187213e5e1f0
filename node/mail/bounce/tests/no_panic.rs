//! Fuzz-style robustness test: random, truncated and mutated inputs must
//! never panic (deterministic PRNG, no extra crates).

use hato_bounce::{classify_reply, parse_bounce, EnhancedStatus};

/// xorshift64*
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn fixtures() -> Vec<Vec<u8>> {
    let dir = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let mut v: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .expect("fixtures dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .collect();
    v.sort();
    v
}

const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\n\n",
    b"--",
    b"=?",
    b"?=",
    b"=?UTF-8?B?",
    b"=?ISO-2022-JP?Q?=1B$B",
    b"\x1b$B",
    b"\x1b(B",
    b"=\r\n",
    b"=F",
    b"Content-Type: multipart/report; boundary=\"x\"\n",
    b"Content-Type: message/delivery-status\n\n",
    b"Content-Type: message/rfc822\n\n",
    b"Content-Type: message/feedback-report\n\n",
    b"Content-Transfer-Encoding: base64\n",
    b"Content-Transfer-Encoding: quoted-printable\n",
    b"Final-Recipient: rfc822;",
    b"Diagnostic-Code: smtp; 550 5.1.1 ",
    b"Status: 5.",
    b"<@>",
    b"@",
    b"\xff\xfe",
    b"\xe3\x81",
    b"\x82\xa0",
    b"5.7.",
    b"550-",
    b"host ",
    b" said: ",
    b";",
    b"\"",
    b"\t",
];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    let n = 1 + rng.below(8);
    for _ in 0..n {
        match rng.below(6) {
            0 if !v.is_empty() => {
                let cut = rng.below(v.len());
                v.truncate(cut);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            2 => {
                let i = rng.below(v.len() + 1);
                let t = TOKENS[rng.below(TOKENS.len())];
                v.splice(i..i, t.iter().copied());
            }
            3 if v.len() > 2 => {
                let a = rng.below(v.len());
                let b = (a + rng.below(64)).min(v.len());
                v.drain(a..b);
            }
            4 if !v.is_empty() => {
                let a = rng.below(v.len());
                let b = (a + rng.below(200)).min(v.len());
                let chunk = v[a..b].to_vec();
                let i = rng.below(v.len() + 1);
                v.splice(i..i, chunk);
            }
            _ => {
                let i = rng.below(v.len() + 1);
                let byte = rng.next() as u8;
                v.insert(i, byte);
            }
        }
    }
    v
}

#[test]
fn truncated_fixtures_never_panic() {
    for f in fixtures() {
        let step = (f.len() / 200).max(1);
        let mut i = 0;
        while i <= f.len() {
            let _ = parse_bounce(&f[..i]);
            let _ = parse_bounce(&f[i..]);
            i += step;
        }
    }
}

#[test]
fn mutated_fixtures_never_panic() {
    let fx = fixtures();
    assert!(!fx.is_empty());
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..3000 {
        let base = &fx[rng.below(fx.len())];
        let m = mutate(&mut rng, base);
        for r in parse_bounce(&m) {
            assert_eq!(r.cmc_code, r.reason.cmc_code());
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(42);
    for _ in 0..2000 {
        let len = rng.below(600);
        let mut v = Vec::with_capacity(len);
        while v.len() < len {
            if rng.below(3) == 0 {
                v.extend_from_slice(TOKENS[rng.below(TOKENS.len())]);
            } else {
                v.push(rng.next() as u8);
            }
        }
        let _ = parse_bounce(&v);
        let s = String::from_utf8_lossy(&v);
        let code = (rng.next() % 1000) as u16;
        let enh: String = s.chars().take(9).collect();
        let _ = classify_reply(code, Some(&enh), &s);
        let _ = classify_reply(0, None, &s);
        let _ = EnhancedStatus::find_in(&s);
    }
}

#[test]
fn pathological_inputs() {
    let deep: Vec<u8> = (0..200)
        .flat_map(|i| {
            format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\n\n--b{i}\n").into_bytes()
        })
        .collect();
    let _ = parse_bounce(&deep);
    let nested: Vec<u8> = "Content-Type: message/rfc822\n\n".repeat(500).into_bytes();
    let _ = parse_bounce(&nested);
    let big = "a@b.example ".repeat(20_000);
    let _ = classify_reply(550, None, &big);
    let _ = parse_bounce(
        format!("From: MAILER-DAEMON@x.example\nSubject: Undelivered\n\n{big}").as_bytes(),
    );
    let _ = parse_bounce(&[0xff; 5000]);
    let _ = parse_bounce(b"=?=?=?B?=?Q?=?=");
    let _ = classify_reply(u16::MAX, Some("5.999999.1"), "\u{1F600}550-5.7.1\u{3042}");
}
