#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The conserver semantics without a runtime: plain `#[test]`s on [`Sharing`].

use super::*;

fn sharing(allow_join: bool) -> Sharing {
    Sharing::new(Arc::from("web01"), allow_join)
}

fn connect(s: &mut Sharing, user: &str, mode: Mode) -> (ViewerId, Granted) {
    s.connect(
        Arc::from(user),
        Arc::from("test"),
        mode,
        SystemTime::UNIX_EPOCH,
    )
    .unwrap()
}

fn roles(s: &Sharing) -> Vec<(String, ViewerRole)> {
    s.who()
        .into_iter()
        .map(|v| (v.user.to_string(), v.role))
        .collect()
}

fn texts(g: &Granted) -> Vec<&str> {
    g.notices.iter().map(|(_, t)| t.as_str()).collect()
}

#[test]
fn the_first_attach_takes_the_lock_the_second_spies_and_is_told_why() {
    let mut s = sharing(true);
    let (_, alice) = connect(&mut s, "alice", Mode::Attach);
    assert_eq!(alice.role, ViewerRole::ReadWrite);
    assert_eq!(alice.message, "attached read-write");
    assert_eq!(texts(&alice), ["alice attached read-write"]);
    let (_, bob) = connect(&mut s, "bob", Mode::Attach);
    assert_eq!(bob.role, ViewerRole::Spy);
    assert_eq!(
        bob.message,
        "web01 is in use by alice: spying (read-only); force with the escape `f`"
    );
    assert_eq!(texts(&bob), ["bob is spying"]);
    assert_eq!(
        roles(&s),
        [
            ("alice".into(), ViewerRole::ReadWrite),
            ("bob".into(), ViewerRole::Spy)
        ]
    );
}

#[test]
fn attaching_again_while_holding_the_lock_changes_nothing() {
    let mut s = sharing(true);
    let (alice, _) = connect(&mut s, "alice", Mode::Attach);
    let again = s.apply_mode(alice, Mode::Attach).unwrap();
    assert_eq!(again.role, ViewerRole::ReadWrite);
    assert_eq!(again.message, "already attached read-write");
    assert!(again.notices.is_empty());
}

#[test]
fn force_takes_the_lock_and_demotes_the_holder_and_its_joiners() {
    let mut s = sharing(true);
    let (alice, _) = connect(&mut s, "alice", Mode::Attach);
    let (carol, carol_got) = connect(&mut s, "carol", Mode::Join);
    assert_eq!(carol_got.role, ViewerRole::Joined);
    assert_eq!(texts(&carol_got), ["carol joined alice (shared write)"]);
    let (bob, forced) = connect(&mut s, "bob", Mode::Force);
    assert_eq!(forced.role, ViewerRole::ReadWrite);
    assert_eq!(forced.message, "attached read-write (forced)");
    assert_eq!(
        texts(&forced),
        ["bob forced write access; alice is now spying"]
    );
    assert!(s.can_write(bob));
    assert!(!s.can_write(alice));
    // Carol joined alice, who no longer holds the lock: she is a spy now.
    assert_eq!(
        roles(&s),
        [
            ("bob".into(), ViewerRole::ReadWrite),
            ("alice".into(), ViewerRole::Spy),
            ("carol".into(), ViewerRole::Spy),
        ]
    );
    assert!(!s.can_write(carol));
}

#[test]
fn joined_writers_become_spies_when_the_holder_leaves() {
    let mut s = sharing(true);
    let (alice, _) = connect(&mut s, "alice", Mode::Attach);
    let (carol, _) = connect(&mut s, "carol", Mode::Join);
    let (user, text) = s.disconnect(alice).unwrap();
    assert_eq!(&*user, "alice");
    assert_eq!(text, "alice detached; write lock free");
    assert_eq!(roles(&s), [("carol".into(), ViewerRole::Spy)]);
    assert!(s.writer(carol, "typing").is_err());
    assert_eq!(s.disconnect(carol).unwrap().1, "carol detached");
    assert!(s.is_empty());
    assert!(s.disconnect(carol).is_none());
}

#[test]
fn join_without_a_holder_is_an_attach_and_may_be_refused() {
    let mut s = sharing(true);
    let (_, got) = connect(&mut s, "alice", Mode::Join);
    assert_eq!(got.role, ViewerRole::ReadWrite);
    let mut strict = sharing(false);
    let err = strict
        .connect(
            Arc::from("bob"),
            Arc::from(""),
            Mode::Join,
            SystemTime::UNIX_EPOCH,
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "web01 does not allow joined writers");
    assert!(strict.is_empty(), "a refused viewer is not left connected");
    let (bob, _) = connect(&mut strict, "bob", Mode::Spy);
    assert!(strict.apply_mode(bob, Mode::Join).is_err());
}

#[test]
fn spies_may_not_write_and_are_told_who_holds_the_lock() {
    let mut s = sharing(true);
    let (alice, _) = connect(&mut s, "alice", Mode::Attach);
    let (bob, got) = connect(&mut s, "bob", Mode::Spy);
    assert_eq!(got.message, "spying (read-only)");
    assert_eq!(&*s.writer(alice, "typing").unwrap(), "alice");
    let err = s.writer(bob, "sending a break").unwrap_err().to_string();
    assert_eq!(
        err,
        "you are spying on web01 (write lock held by alice): sending a break needs read-write; \
         attach with the escape `a` or force with `f`"
    );
    assert!(s.writer(99, "typing").is_err());
}

#[test]
fn a_spy_may_take_a_free_lock_and_give_it_up() {
    let mut s = sharing(true);
    let (bob, _) = connect(&mut s, "bob", Mode::Spy);
    let got = s.apply_mode(bob, Mode::Attach).unwrap();
    assert_eq!(got.role, ViewerRole::ReadWrite);
    let got = s.apply_mode(bob, Mode::Spy).unwrap();
    assert_eq!(got.role, ViewerRole::Spy);
    assert_eq!(texts(&got), ["bob is spying"]);
    assert!(s.who().iter().all(|v| v.role == ViewerRole::Spy));
}

#[test]
fn who_lists_the_holder_then_joiners_then_spies_in_connect_order() {
    let mut s = sharing(true);
    connect(&mut s, "s1", Mode::Spy);
    connect(&mut s, "h", Mode::Attach);
    connect(&mut s, "s2", Mode::Attach);
    connect(&mut s, "j", Mode::Join);
    let order: Vec<String> = s.who().iter().map(|v| v.user.to_string()).collect();
    assert_eq!(order, ["h", "j", "s1", "s2"]);
    let ids: Vec<ViewerId> = s.who().iter().map(|v| v.id).collect();
    assert_eq!(ids, [2, 4, 1, 3]);
}

#[test]
fn writing_from_outside_needs_the_lock_free_or_yours() {
    let mut s = sharing(true);
    assert!(s.may_write_as("alice", "setting a modem line").is_ok());
    let (_, _) = connect(&mut s, "bob", Mode::Spy);
    assert!(s.may_write_as("alice", "x").is_ok(), "a spy holds nothing");
    let (alice, _) = connect(&mut s, "alice", Mode::Attach);
    assert!(s.may_write_as("alice", "x").is_ok(), "the holder herself");
    let err = s.may_write_as("bob", "setting a modem line").unwrap_err();
    assert!(
        matches!(&err, Error::Conflict { what } if what.contains("held by alice") && what.contains("setting a modem line")),
        "{err}"
    );
    let (_, _) = connect(&mut s, "carol", Mode::Join);
    assert!(s.may_write_as("carol", "x").is_ok(), "a joined writer");
    s.disconnect(alice);
    assert!(s.may_write_as("bob", "x").is_ok(), "free again");
}
