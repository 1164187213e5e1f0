//! Prints `parse_bounce` results for the files given on the command line:
//! one tab-separated line per recipient: path, recipient, reason, status,
//! CMC code, then the full record as JSON.
fn main() {
    for path in std::env::args().skip(1) {
        let raw = std::fs::read(&path).unwrap_or_default();
        for r in hato_bounce::parse_bounce(&raw) {
            println!(
                "{path}\t{}\t{}\t{}\t{}\t{}",
                r.recipient,
                r.reason,
                r.status.as_deref().unwrap_or("-"),
                r.cmc_code,
                serde_json::to_string(&r).unwrap_or_default()
            );
        }
    }
}
