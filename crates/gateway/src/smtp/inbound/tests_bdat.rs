//! Driver tests for CHUNKING (BDAT) and the reply counts, on
//! `tokio::io::duplex` with the fake relay of [`super::tests`].

use super::tests::{settings, start, Client, Fake, BACKEND_OK};
use super::*;
use mxgate_smtp::server::ReplyPhase;
use mxgate_smtp::ReplyClass;

const ENVELOPE: &[u8] =
    b"EHLO c.example\r\nMAIL FROM:<a@sender.example>\r\nRCPT TO:<u@example.org>\r\n";

fn wire(rest: &[u8]) -> Vec<u8> {
    let mut wire = ENVELOPE.to_vec();
    wire.extend_from_slice(rest);
    wire
}

#[tokio::test]
async fn three_pipelined_chunks_arrive_dot_stuffed_after_the_received_header() {
    let fake = Fake::default();
    let (stream, task) = start(&fake, settings(), None);
    let mut client = Client::new(stream);
    client
        .send(&wire(
            b"BDAT 17\r\nSubject: x\r\n\r\n.a\rBDAT 5\r\n\n.\r\n.BDAT 8 LAST\r\nQUIT\r\nxyQUIT\r\n",
        ))
        .await;
    let replies = client.replies(8).await;
    assert!(replies[1].contains("250 CHUNKING"), "{}", replies[1]);
    assert_eq!(replies[3], "250 2.1.5 Ok");
    assert_eq!(replies[4], "250 2.0.0 17 octets received");
    assert_eq!(replies[5], "250 2.0.0 5 octets received");
    assert_eq!(replies[6], BACKEND_OK);
    assert_eq!(replies[7], "221 2.0.0 Bye");
    let record = task.await.unwrap();
    let data = String::from_utf8(fake.data()).unwrap();
    assert!(data.starts_with("Received: from c.example (unknown [192.0.2.1])\r\n"));
    let body = &data[data.find("\r\nSubject").unwrap() + 2..];
    assert_eq!(body, "Subject: x\r\n\r\n..a\r\n..\r\n..QUIT\r\nxy\r\n");
    let calls = fake.calls();
    assert_eq!(
        calls[..3],
        ["mail a@sender.example", "rcpt u@example.org", "data_start"]
    );
    assert_eq!(calls.last().map(String::as_str), Some("data_end"));
    assert!(!calls.contains(&"abort".to_string()));
    let tx = &record.transactions[0];
    assert_eq!(tx.result, TransactionResult::Accepted);
    assert_eq!(tx.final_reply.as_deref(), Some(BACKEND_OK));
    assert_eq!(tx.size, 30);
    assert_eq!(
        record
            .replies
            .get(ReplyPhase::EndOfData, ReplyClass::PositiveCompletion),
        1
    );
    assert_eq!(
        record
            .replies
            .get(ReplyPhase::Data, ReplyClass::PositiveCompletion),
        2
    );
}

#[tokio::test]
async fn chunk_past_the_size_limit_gets_552_and_aborts() {
    let fake = Fake::default();
    let mut small = settings();
    small.max_message_size = 10;
    let (stream, task) = start(&fake, small, None);
    let mut client = Client::new(stream);
    client
        .send(&wire(
            b"BDAT 6\r\n012345BDAT 6 LAST\r\nQUIT\r\nNOOP\r\nQUIT\r\n",
        ))
        .await;
    let replies = client.replies(8).await;
    assert_eq!(replies[4], "250 2.0.0 6 octets received");
    assert_eq!(
        replies[5],
        "552 5.3.4 Error: message size exceeds fixed maximum message size"
    );
    assert_eq!(replies[6], "250 2.0.0 Ok", "the chunk's QUIT was skipped");
    assert_eq!(replies[7], "221 2.0.0 Bye");
    let record = task.await.unwrap();
    let calls = fake.calls();
    assert!(calls.contains(&"abort".to_string()));
    assert!(!calls.contains(&"data_end".to_string()));
    let data = fake.data();
    assert!(!data.windows(4).any(|w| w == b"QUIT"));
    assert_eq!(record.transactions[0].result, TransactionResult::Rejected);
    assert_eq!(record.transactions[0].size, 12);
}

#[tokio::test]
async fn bdat_before_rcpt_is_503_and_its_octets_are_not_commands() {
    let fake = Fake::default();
    let (stream, task) = start(&fake, settings(), None);
    let mut client = Client::new(stream);
    client
        .send(b"EHLO c\r\nMAIL FROM:<>\r\nBDAT 23 LAST\r\nRCPT TO:<u@example.org>NOOP\r\nQUIT\r\n")
        .await;
    let replies = client.replies(6).await;
    assert_eq!(replies[3], "503 5.5.1 Error: need RCPT command");
    assert_eq!(replies[4], "250 2.0.0 Ok");
    assert_eq!(replies[5], "221 2.0.0 Bye");
    task.await.unwrap();
    assert_eq!(fake.calls(), ["mail", "abort"]);
}

#[tokio::test]
async fn data_after_bdat_is_503_and_rset_aborts_the_backend() {
    let fake = Fake::default();
    let (stream, task) = start(&fake, settings(), None);
    let mut client = Client::new(stream);
    client
        .send(&wire(b"BDAT 3\r\nabcDATA\r\nRSET\r\nQUIT\r\n"))
        .await;
    let replies = client.replies(8).await;
    assert_eq!(replies[4], "250 2.0.0 3 octets received");
    assert_eq!(replies[5], "503 5.5.1 Error: DATA after BDAT");
    assert_eq!(replies[6], "250 2.0.0 Ok");
    assert_eq!(replies[7], "221 2.0.0 Bye");
    task.await.unwrap();
    let calls = fake.calls();
    assert_eq!(calls.iter().filter(|c| *c == "abort").count(), 1);
    assert!(!calls.contains(&"rset".to_string()));
    assert!(!calls.contains(&"data_end".to_string()));
}

#[tokio::test]
async fn bare_lf_in_bdat_is_refused_at_last() {
    let fake = Fake::default();
    let (stream, task) = start(&fake, settings(), None);
    let mut client = Client::new(stream);
    client
        .send(&wire(b"BDAT 4\r\nok\r\nBDAT 9 LAST\r\nbad\nline\rQUIT\r\n"))
        .await;
    let replies = client.replies(7).await;
    assert_eq!(replies[4], "250 2.0.0 4 octets received");
    assert_eq!(replies[5], "550 5.6.0 Error: bare LF/CR not allowed");
    assert_eq!(replies[6], "221 2.0.0 Bye");
    let record = task.await.unwrap();
    assert!(!fake.calls().contains(&"data_end".to_string()));
    assert!(!fake.data().windows(3).any(|w| w == b"bad"));
    assert_eq!(record.transactions[0].result, TransactionResult::Rejected);
}

#[tokio::test]
async fn replies_are_counted_by_phase_and_class() {
    let fake = Fake::default();
    let (stream, task) = start(&fake, settings(), None);
    let mut client = Client::new(stream);
    client
        .send(b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<u@example.org>\r\nRCPT TO:<a@other.example>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n")
        .await;
    assert_eq!(client.replies(8).await[6], BACKEND_OK);
    let record = task.await.unwrap();
    let r = &record.replies;
    let (ok, more, perm) = (
        ReplyClass::PositiveCompletion,
        ReplyClass::PositiveIntermediate,
        ReplyClass::PermanentNegative,
    );
    assert_eq!(r.get(ReplyPhase::Connect, ok), 1);
    assert_eq!(r.get(ReplyPhase::Helo, ok), 1);
    assert_eq!(r.get(ReplyPhase::Mail, ok), 1);
    assert_eq!(r.get(ReplyPhase::Rcpt, ok), 1);
    assert_eq!(r.get(ReplyPhase::Rcpt, perm), 1);
    assert_eq!(r.get(ReplyPhase::Data, more), 1);
    assert_eq!(r.get(ReplyPhase::EndOfData, ok), 1);
    assert_eq!(r.get(ReplyPhase::Other, ok), 1);
    assert_eq!(r.total(), 8);
}
