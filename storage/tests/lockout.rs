//! The console lock-out policy (applied by the state machine).

use hato_storage::command::*;

#[test]
fn five_failures_in_the_window_lock_for_fifteen_minutes() {
    let mut l = Lockout::default();
    let t = 1_000_000;
    for i in 0..4 {
        assert!(!l.fail(t + i * 1000));
        assert!(!l.locked_at(t + i * 1000));
    }
    assert!(l.fail(t + 5000));
    assert!(l.locked_at(t + 5000 + LOGIN_LOCK_MS - 1));
    assert!(!l.locked_at(t + 5000 + LOGIN_LOCK_MS));
    // Failures while locked do not extend the lock.
    assert!(!l.fail(t + 6000));
    assert_eq!(l.locked_until_ms, Some(t + 5000 + LOGIN_LOCK_MS));
    // After the lock, counting starts again.
    assert!(!l.fail(t + 5000 + LOGIN_LOCK_MS));
    assert_eq!(l.failures, 1);
}

#[test]
fn failures_spread_beyond_the_window_do_not_lock() {
    let mut l = Lockout::default();
    for i in 0..20u64 {
        assert!(!l.fail(1_000 + i * (LOGIN_WINDOW_MS / 3)), "failure {i}");
    }
}
