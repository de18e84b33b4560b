//! Retransmission, acknowledgement, reordering and flow control.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use seashell_protocol::data_channel::reliability::{INITIAL_RTO, MAX_RTO};
use seashell_protocol::data_channel::{
    AckOutcome, ClientMessage, MessageType, OutgoingBuffer, OutgoingConfig, OutgoingError,
    PayloadType, Receive, ReorderBuffer, Uuid,
};
use std::time::{Duration, Instant};

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn output(payload: &[u8]) -> ClientMessage {
    ClientMessage::stream(
        MessageType::OutputStreamData,
        -1, // overwritten by the buffer
        PayloadType::Output,
        payload.to_vec(),
        Uuid::from_u128(7),
        1_700_000_000_000,
    )
}

fn seq_of(frame: &[u8]) -> i64 {
    ClientMessage::decode(frame).unwrap().sequence_number
}

#[test]
fn send_numbers_from_zero_and_counts_bytes() {
    let t0 = Instant::now();
    let mut out = OutgoingBuffer::default();
    assert_eq!(out.next_sequence_number(), 0);
    let f0 = out.send(output(b"hello"), t0).unwrap();
    let f1 = out.send(output(b"world!"), t0).unwrap();
    assert_eq!((seq_of(&f0), seq_of(&f1)), (0, 1));
    assert_eq!(out.len(), 2);
    assert_eq!(out.unacknowledged_bytes(), 11);
    assert_eq!(out.oldest_unacknowledged(), Some(0));
}

#[test]
fn acknowledgement_releases_and_samples_rtt() {
    let t0 = Instant::now();
    let mut out = OutgoingBuffer::default();
    out.send(output(b"abc"), t0).unwrap();
    out.send(output(b"de"), t0).unwrap();

    // Acknowledged out of order: the plugin matches by sequence number.
    assert_eq!(
        out.acknowledge(1, t0 + ms(500)),
        AckOutcome::Acked {
            rtt_sample: Some(ms(500))
        }
    );
    assert_eq!(out.unacknowledged_bytes(), 3);
    // 500 ms sample from the initial state: RTO 550 ms (see rtt.rs).
    assert_eq!(out.rtt().rto(), ms(550));
    // A repeated acknowledgement changes nothing.
    assert_eq!(out.acknowledge(1, t0 + ms(600)), AckOutcome::Unknown);
    assert_eq!(out.acknowledge(42, t0 + ms(600)), AckOutcome::Unknown);
    assert_eq!(out.len(), 1);
    assert!(matches!(
        out.acknowledge(0, t0 + ms(600)),
        AckOutcome::Acked { .. }
    ));
    assert!(out.is_empty());
    assert_eq!(out.unacknowledged_bytes(), 0);
    assert_eq!(out.next_deadline(), None);
}

#[test]
fn retransmits_oldest_after_rto_only() {
    let t0 = Instant::now();
    let mut out = OutgoingBuffer::default();
    let f0 = out.send(output(b"a"), t0).unwrap();
    out.send(output(b"b"), t0 + ms(10)).unwrap();

    assert_eq!(out.next_deadline(), Some(t0 + INITIAL_RTO));
    assert_eq!(out.poll_retransmit(t0 + ms(199)).unwrap(), None);
    assert_eq!(out.poll_retransmit(t0 + ms(200)).unwrap(), Some(f0.clone()));
    // The timer restarted: not due again until another RTO has passed, and
    // the second message is not resent while the first is outstanding.
    assert_eq!(out.poll_retransmit(t0 + ms(300)).unwrap(), None);
    assert_eq!(out.next_deadline(), Some(t0 + ms(400)));
    assert_eq!(out.poll_retransmit(t0 + ms(400)).unwrap(), Some(f0));

    // Karn's rule: no RTT sample from a retransmitted message.
    assert_eq!(
        out.acknowledge(0, t0 + ms(450)),
        AckOutcome::Acked { rtt_sample: None }
    );
    assert_eq!(out.rtt().rto(), INITIAL_RTO);
    // Now message 1 is the oldest; it was sent at 10 ms, so it is overdue.
    let f1 = out.poll_retransmit(t0 + ms(450)).unwrap().unwrap();
    assert_eq!(seq_of(&f1), 1);
}

#[test]
fn gives_up_after_configured_time() {
    let t0 = Instant::now();
    let config = OutgoingConfig {
        give_up_after: Duration::from_secs(2),
        ..OutgoingConfig::default()
    };
    let mut out = OutgoingBuffer::new(config);
    out.send(output(b"a"), t0).unwrap();
    assert!(out.poll_retransmit(t0 + ms(1_900)).unwrap().is_some());
    assert_eq!(
        out.poll_retransmit(t0 + ms(2_500)),
        Err(OutgoingError::Stalled {
            sequence_number: 0,
            elapsed: ms(2_500)
        })
    );
    // A reconnection restarts the give-up clock.
    assert_eq!(out.resend_all(t0 + ms(2_600)).len(), 1);
    assert!(out.poll_retransmit(t0 + ms(2_900)).unwrap().is_some());
}

#[test]
fn resend_all_returns_everything_in_order() {
    let t0 = Instant::now();
    let mut out = OutgoingBuffer::default();
    for p in [&b"a"[..], b"b", b"c", b"d"] {
        out.send(output(p), t0).unwrap();
    }
    out.acknowledge(1, t0 + ms(5));
    let frames = out.resend_all(t0 + ms(50));
    let seqs: Vec<i64> = frames.iter().map(|f| seq_of(f)).collect();
    assert_eq!(seqs, vec![0, 2, 3]);
    assert_eq!(out.next_deadline(), Some(t0 + ms(50) + out.rtt().rto()));
}

#[test]
fn window_accounting() {
    let t0 = Instant::now();
    let config = OutgoingConfig {
        window_bytes: 10,
        ..OutgoingConfig::default()
    };
    let mut out = OutgoingBuffer::new(config);
    out.send(output(&[0; 6]), t0).unwrap();
    assert!(!out.is_window_full());
    assert_eq!(out.window_remaining(), 4);
    // Sending past the window is allowed (handshakes must not block); the
    // producer is told to pause.
    out.send(output(&[0; 6]), t0).unwrap();
    assert!(out.is_window_full());
    assert_eq!(out.window_remaining(), 0);
    out.acknowledge(0, t0 + ms(1));
    assert!(!out.is_window_full());
    assert_eq!(out.unacknowledged_bytes(), 6);
}

#[test]
fn refuses_non_stream_messages_and_overflow() {
    let t0 = Instant::now();
    let mut out = OutgoingBuffer::new(OutgoingConfig {
        capacity: 2,
        ..OutgoingConfig::default()
    });
    let ack = ClientMessage::acknowledge(&output(b"x"), Uuid::from_u128(1), 1).unwrap();
    assert_eq!(
        out.send(ack, t0),
        Err(OutgoingError::NotStream(MessageType::Acknowledge))
    );
    out.send(output(b"1"), t0).unwrap();
    out.send(output(b"2"), t0).unwrap();
    assert_eq!(out.send(output(b"3"), t0), Err(OutgoingError::Full(2)));
    // A refused message does not consume a sequence number.
    assert_eq!(out.next_sequence_number(), 2);
}

#[test]
fn rto_never_exceeds_cap() {
    let t0 = Instant::now();
    let mut out = OutgoingBuffer::default();
    out.send(output(b"a"), t0).unwrap();
    out.acknowledge(0, t0 + Duration::from_secs(30));
    assert_eq!(out.rtt().rto(), MAX_RTO);
}

// ---- reorder buffer ----

#[test]
fn in_order_messages_are_delivered_at_once() {
    let mut r = ReorderBuffer::new(8);
    assert_eq!(r.receive(0, 'a'), Receive::Deliver(vec!['a']));
    assert_eq!(r.receive(1, 'b'), Receive::Deliver(vec!['b']));
    assert_eq!(r.expected(), 2);
}

#[test]
fn out_of_order_messages_wait_for_the_gap() {
    let mut r = ReorderBuffer::new(8);
    assert_eq!(r.receive(2, 'c'), Receive::Buffered);
    assert_eq!(r.receive(1, 'b'), Receive::Buffered);
    assert_eq!(r.receive(4, 'e'), Receive::Buffered);
    assert_eq!(r.buffered_len(), 3);
    assert_eq!(r.receive(0, 'a'), Receive::Deliver(vec!['a', 'b', 'c']));
    assert_eq!(r.expected(), 3);
    assert_eq!(r.buffered_len(), 1);
    assert_eq!(r.receive(3, 'd'), Receive::Deliver(vec!['d', 'e']));
    assert_eq!(r.buffered_len(), 0);
}

#[test]
fn duplicates_are_dropped_but_acknowledged() {
    let mut r = ReorderBuffer::new(8);
    r.receive(0, 'a');
    let dup = r.receive(0, 'a');
    assert_eq!(dup, Receive::Duplicate);
    assert!(dup.should_acknowledge());
    assert_eq!(r.receive(-5, 'z'), Receive::Duplicate);
    assert_eq!(r.receive(3, 'd'), Receive::Buffered);
    assert_eq!(r.receive(3, 'X'), Receive::Duplicate);
    r.receive(1, 'b');
    // The first copy of 3 is kept.
    assert_eq!(r.receive(2, 'c'), Receive::Deliver(vec!['c', 'd']));
}

#[test]
fn early_messages_are_bounded() {
    let mut r = ReorderBuffer::new(2);
    // Too far ahead to ever fit behind the gap.
    let far = r.receive(3, 'd');
    assert_eq!(far, Receive::Overflow);
    assert!(!far.should_acknowledge());
    assert_eq!(r.receive(i64::MAX, 'z'), Receive::Overflow);
    assert_eq!(r.receive(1, 'b'), Receive::Buffered);
    assert_eq!(r.receive(2, 'c'), Receive::Buffered);
    assert_eq!(r.buffered_len(), 2);
    assert_eq!(r.receive(0, 'a'), Receive::Deliver(vec!['a', 'b', 'c']));

    let mut full = ReorderBuffer::starting_at(10, 1);
    assert_eq!(full.receive(11, 1), Receive::Buffered);
    assert_eq!(full.receive(12, 2), Receive::Overflow);
}

#[test]
fn expected_saturates_instead_of_overflowing() {
    let mut r = ReorderBuffer::starting_at(i64::MAX, 4);
    assert_eq!(r.receive(i64::MAX, 1), Receive::Deliver(vec![1]));
    assert_eq!(r.expected(), i64::MAX);
}

/// The agent sends over a channel that loses, reorders and duplicates
/// frames; the client acknowledges; a reconnection resends the rest. The
/// client must see every payload exactly once, in order.
#[test]
fn end_to_end_over_a_bad_network() {
    let t0 = Instant::now();
    let mut agent = OutgoingBuffer::default();
    let mut client: ReorderBuffer<Vec<u8>> = ReorderBuffer::new(64);
    let mut delivered = Vec::new();

    let frames: Vec<Vec<u8>> = (0..10u8)
        .map(|i| agent.send(output(&[i]), t0).unwrap())
        .collect();
    // Network: drop 3 and 7, swap 1 and 2, duplicate 5.
    let order = [0usize, 2, 1, 4, 5, 5, 6, 8, 9];
    let mut now = t0 + ms(20);
    for &i in &order {
        let m = ClientMessage::decode(&frames[i]).unwrap();
        let outcome = client.receive(m.sequence_number, m.payload.clone());
        if outcome.should_acknowledge() {
            let ack = ClientMessage::acknowledge(&m, Uuid::from_u128(99), 1).unwrap();
            let ack = ClientMessage::decode(&ack.encode().unwrap()).unwrap();
            let content = ack.acknowledge_content().unwrap();
            agent.acknowledge(content.sequence_number, now);
        }
        if let Receive::Deliver(items) = outcome {
            delivered.extend(items);
        }
        now += ms(1);
    }
    assert_eq!(delivered, vec![vec![0], vec![1], vec![2]]);
    assert_eq!(agent.len(), 2);

    // The client reconnects; the agent resends everything unacknowledged.
    for frame in agent.resend_all(now) {
        let m = ClientMessage::decode(&frame).unwrap();
        let outcome = client.receive(m.sequence_number, m.payload.clone());
        if outcome.should_acknowledge() {
            agent.acknowledge(m.sequence_number, now);
        }
        if let Receive::Deliver(items) = outcome {
            delivered.extend(items);
        }
    }
    let expected: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i]).collect();
    assert_eq!(delivered, expected);
    assert!(agent.is_empty());
    assert_eq!(client.buffered_len(), 0);
}

proptest! {
    /// Whatever the arrival order and duplication, each number is
    /// delivered once and in order.
    #[test]
    fn reorder_buffer_delivers_each_once_in_order(
        arrivals in prop::collection::vec(0i64..40, 0..200),
    ) {
        let mut r = ReorderBuffer::new(64);
        let mut delivered = Vec::new();
        for seq in arrivals.iter().copied().chain(0..40) {
            if let Receive::Deliver(items) = r.receive(seq, seq) {
                delivered.extend(items);
            }
        }
        prop_assert_eq!(delivered, (0..40).collect::<Vec<_>>());
    }

    /// Under any interleaving of sends and acknowledgements, the byte count
    /// equals the payload still pending, and the window flag follows it.
    #[test]
    fn window_accounting_matches_pending_payloads(
        ops in prop::collection::vec((any::<bool>(), 0usize..50, 0i64..40), 1..120),
    ) {
        let t0 = Instant::now();
        let mut out = OutgoingBuffer::new(OutgoingConfig {
            window_bytes: 100,
            ..OutgoingConfig::default()
        });
        let mut pending = std::collections::BTreeMap::new();
        for (is_send, len, seq) in ops {
            if is_send {
                let s = out.next_sequence_number();
                out.send(output(&vec![1; len]), t0).unwrap();
                pending.insert(s, len);
            } else {
                let was = pending.remove(&seq).is_some();
                let outcome = out.acknowledge(seq, t0 + ms(1));
                prop_assert_eq!(was, matches!(outcome, AckOutcome::Acked { .. }));
            }
            let total: usize = pending.values().sum();
            prop_assert_eq!(out.unacknowledged_bytes(), total);
            prop_assert_eq!(out.is_window_full(), total >= 100);
            prop_assert_eq!(out.len(), pending.len());
        }
    }
}
