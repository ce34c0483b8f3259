use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use kepm_devagent::PlainBroker;

#[test]
fn plain_broker_accepts_plaintext_and_records_it() {
    let b = PlainBroker::start().expect("plaintext mosquitto starts");
    assert_eq!(b.connection_attempts(), 0, "no probe connections");

    // A hand-written MQTT 3.1.1 CONNECT: clean session, keep-alive 10 s, client id "plain-1".
    let id = b"plain-1";
    let mut pkt = vec![0x10, (10 + 2 + id.len()) as u8];
    pkt.extend_from_slice(&[0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x0a]);
    pkt.extend_from_slice(&[0x00, id.len() as u8]);
    pkt.extend_from_slice(id);
    let mut s = TcpStream::connect(("127.0.0.1", b.port())).expect("plaintext connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(&pkt).expect("send CONNECT");
    let mut connack = [0u8; 4];
    s.read_exact(&mut connack).expect("CONNACK");
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00]);
    drop(s);

    assert_eq!(b.wait_for_attempts(1, Duration::from_secs(10)), 1);
    assert_eq!(
        b.wait_for_clients(1, Duration::from_secs(10)),
        vec!["plain-1".to_string()]
    );
    assert_eq!(b.clients(), vec!["plain-1".to_string()]);
}
