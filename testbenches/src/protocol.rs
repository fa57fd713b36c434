//! Board protocol 1 (`shared/spec/board-protocol.md`): packets, CRC-16, element coding.
//!
//! The one implementation of the byte format for everything on the host side: the
//! `bnnforge run` host, the simulated board's tests and the board top's tests.
//! `0xB5 type:u8 length:u16 payload crc:u16`, little-endian, CRC-16/CCITT-FALSE over
//! type, length and payload.

/// The byte every packet starts with.
pub const START: u8 = 0xB5;
/// Header bytes before the payload: start, type, length.
pub const HEADER_BYTES: usize = 4;
/// Bytes around a payload: header and CRC.
pub const OVERHEAD_BYTES: usize = HEADER_BYTES + 2;

/// Packet types, host → board and board → host.
pub mod kind {
    pub const INFO: u8 = 0x01;
    pub const FRAME: u8 = 0x02;
    pub const BENCH: u8 = 0x03;
    pub const INFO_REPLY: u8 = 0x81;
    pub const RESULT: u8 = 0x82;
    pub const BENCH_REPLY: u8 = 0x83;
    pub const ERROR: u8 = 0xEE;
}

/// ERROR codes.
pub mod error_code {
    pub const BAD_CRC: u8 = 1;
    pub const UNKNOWN_TYPE: u8 = 2;
    pub const WRONG_LENGTH: u8 = 3;
    pub const OUT_OF_RANGE: u8 = 4;
}

/// CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor.
pub fn crc16(bytes: &[u8]) -> u16 {
    crc16_update(0xFFFF, bytes)
}

/// Continues a CRC-16/CCITT-FALSE over more bytes.
pub fn crc16_update(mut crc: u16, bytes: &[u8]) -> u16 {
    for &b in bytes {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// One packet: its type and payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub kind: u8,
    pub payload: Vec<u8>,
}

impl Packet {
    pub fn new(kind: u8, payload: Vec<u8>) -> Packet {
        Packet { kind, payload }
    }

    /// The packet's bytes on the wire. Panics on a payload over 65,535 bytes (a caller's
    /// bug: frame sizes are checked before packets are made).
    pub fn encode(&self) -> Vec<u8> {
        let len = u16::try_from(self.payload.len()).expect("payload over 65535 bytes");
        let mut v = Vec::with_capacity(self.payload.len() + OVERHEAD_BYTES);
        v.push(START);
        v.push(self.kind);
        v.extend_from_slice(&len.to_le_bytes());
        v.extend_from_slice(&self.payload);
        let crc = crc16(&v[1..]);
        v.extend_from_slice(&crc.to_le_bytes());
        v
    }
}

/// What the receiver found in the byte stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// A whole packet with a good CRC.
    Packet(Packet),
    /// A whole packet whose CRC did not match (type as received).
    BadCrc { kind: u8 },
}

/// A streaming receiver: bytes in, packets out. Skips bytes other than 0xB5 between
/// packets; a cut-off packet is dropped with [`Receiver::abandon`] (the caller's timeout).
#[derive(Clone, Debug, Default)]
pub struct Receiver {
    buf: Vec<u8>,
    /// Bytes skipped while looking for a start byte, since creation.
    pub skipped: u64,
    /// Packets dropped by `abandon`, since creation.
    pub abandoned: u64,
}

impl Receiver {
    pub fn new() -> Receiver {
        Receiver::default()
    }

    /// True while a packet has started and is not complete.
    pub fn in_packet(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Drops a packet cut off mid-way (the inter-byte timeout fired).
    pub fn abandon(&mut self) {
        if !self.buf.is_empty() {
            self.abandoned += 1;
            self.buf.clear();
        }
    }

    /// Takes one byte; returns a packet when this byte completes one.
    pub fn push(&mut self, b: u8) -> Option<Received> {
        if self.buf.is_empty() {
            if b == START {
                self.buf.push(b);
            } else {
                self.skipped += 1;
            }
            return None;
        }
        self.buf.push(b);
        if self.buf.len() < HEADER_BYTES {
            return None;
        }
        let len = u16::from_le_bytes([self.buf[2], self.buf[3]]) as usize;
        if self.buf.len() < len + OVERHEAD_BYTES {
            return None;
        }
        let n = self.buf.len();
        let crc = u16::from_le_bytes([self.buf[n - 2], self.buf[n - 1]]);
        let kind = self.buf[1];
        let good = crc16(&self.buf[1..n - 2]) == crc;
        let payload = self.buf[HEADER_BYTES..n - 2].to_vec();
        self.buf.clear();
        Some(if good {
            Received::Packet(Packet { kind, payload })
        } else {
            Received::BadCrc { kind }
        })
    }
}

/// The payload of an INFO answer (0x81).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    pub protocol: u8,
    pub network_hash: u64,
    pub clock_hz: u32,
    pub baud: u32,
    pub in_elements: u32,
    pub in_bits: u8,
    pub in_signed: bool,
    pub out_elements: u32,
    pub out_bits: u8,
    pub out_signed: bool,
    pub cycles_per_frame: u32,
}

/// Bytes of an INFO answer's payload.
pub const INFO_BYTES: usize = 4 + 1 + 8 + 4 + 4 + 4 + 1 + 1 + 4 + 1 + 1 + 4;

impl Info {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(INFO_BYTES);
        v.extend_from_slice(b"BNNF");
        v.push(self.protocol);
        v.extend_from_slice(&self.network_hash.to_le_bytes());
        v.extend_from_slice(&self.clock_hz.to_le_bytes());
        v.extend_from_slice(&self.baud.to_le_bytes());
        v.extend_from_slice(&self.in_elements.to_le_bytes());
        v.push(self.in_bits);
        v.push(self.in_signed as u8);
        v.extend_from_slice(&self.out_elements.to_le_bytes());
        v.push(self.out_bits);
        v.push(self.out_signed as u8);
        v.extend_from_slice(&self.cycles_per_frame.to_le_bytes());
        v
    }

    /// Reads an INFO payload; `None` unless it is exactly one, magic and protocol 1.
    pub fn decode(p: &[u8]) -> Option<Info> {
        if p.len() != INFO_BYTES || &p[0..4] != b"BNNF" {
            return None;
        }
        let u32_at = |i: usize| u32::from_le_bytes([p[i], p[i + 1], p[i + 2], p[i + 3]]);
        let mut h = [0u8; 8];
        h.copy_from_slice(&p[5..13]);
        Some(Info {
            protocol: p[4],
            network_hash: u64::from_le_bytes(h),
            clock_hz: u32_at(13),
            baud: u32_at(17),
            in_elements: u32_at(21),
            in_bits: p[25],
            in_signed: p[26] != 0,
            out_elements: u32_at(27),
            out_bits: p[31],
            out_signed: p[32] != 0,
            cycles_per_frame: u32_at(33),
        })
    }
}

/// Bytes per element on the wire: ceil(bits / 8); a binary element is one byte.
pub fn element_bytes(bits: u32) -> usize {
    bits.div_ceil(8) as usize
}

/// Encodes element values (binary: ±1 → 1/0; otherwise two's complement little-endian
/// in `element_bytes(bits)` bytes). `None` if a value does not fit.
pub fn encode_elements(values: &[i64], bits: u32, signed: bool) -> Option<Vec<u8>> {
    let n = element_bytes(bits);
    let mut v = Vec::with_capacity(values.len() * n);
    for &x in values {
        if bits == 1 && !signed {
            match x {
                1 => v.push(1),
                -1 => v.push(0),
                _ => return None,
            }
            continue;
        }
        let (lo, hi) = if signed {
            (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
        } else {
            (0, (1i128 << bits) - 1)
        };
        if (x as i128) < lo || (x as i128) > hi {
            return None;
        }
        v.extend_from_slice(&x.to_le_bytes()[..n]);
    }
    Some(v)
}

/// Decodes element values written by [`encode_elements`] (sign-extended when signed).
/// `None` if the length is not a whole number of elements.
pub fn decode_elements(bytes: &[u8], bits: u32, signed: bool) -> Option<Vec<i64>> {
    let n = element_bytes(bits);
    if bytes.len() % n != 0 {
        return None;
    }
    Some(
        bytes
            .chunks(n)
            .map(|c| {
                if bits == 1 && !signed {
                    return if c[0] & 1 == 1 { 1 } else { -1 };
                }
                let mut w = [0u8; 8];
                w[..n].copy_from_slice(c);
                let raw = u64::from_le_bytes(w);
                let width = 8 * n as u32;
                if signed && width < 64 {
                    ((raw << (64 - width)) as i64) >> (64 - width)
                } else {
                    raw as i64
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        assert_eq!(crc16(b"123456789"), 0x29B1);
        assert_eq!(crc16_update(crc16(b"1234"), b"56789"), 0x29B1);
    }

    #[test]
    fn packets_round_trip_through_garbage_and_a_bad_crc() {
        let a = Packet::new(kind::FRAME, vec![1, 2, START, 4]);
        let b = Packet::new(kind::INFO, vec![]);
        let mut bytes = vec![0x00, 0x13];
        bytes.extend(a.encode());
        let mut bad = b.encode();
        bad[4] ^= 0x40;
        bytes.extend(bad);
        bytes.extend(b.encode());
        let mut r = Receiver::new();
        let got: Vec<Received> = bytes.iter().filter_map(|&x| r.push(x)).collect();
        assert_eq!(
            got,
            vec![
                Received::Packet(a),
                Received::BadCrc { kind: kind::INFO },
                Received::Packet(b)
            ]
        );
        assert_eq!(r.skipped, 2);
    }

    #[test]
    fn an_abandoned_packet_leaves_the_receiver_ready() {
        let p = Packet::new(kind::FRAME, vec![9; 10]);
        let e = p.encode();
        let mut r = Receiver::new();
        for &x in &e[..7] {
            assert!(r.push(x).is_none());
        }
        assert!(r.in_packet());
        r.abandon();
        let got: Vec<Received> = e.iter().filter_map(|&x| r.push(x)).collect();
        assert_eq!(got, vec![Received::Packet(p)]);
        assert_eq!(r.abandoned, 1);
    }

    #[test]
    fn info_round_trips() {
        let i = Info {
            protocol: 1,
            network_hash: 0x0123_4567_89ab_cdef,
            clock_hz: 48_000_000,
            baud: 3_000_000,
            in_elements: 784,
            in_bits: 8,
            in_signed: false,
            out_elements: 10,
            out_bits: 11,
            out_signed: true,
            cycles_per_frame: 784,
        };
        let e = i.encode();
        assert_eq!(e.len(), INFO_BYTES);
        assert_eq!(Info::decode(&e), Some(i));
        assert_eq!(Info::decode(&e[1..]), None);
    }

    #[test]
    fn elements_round_trip_at_their_limits() {
        for (bits, signed, vals) in [
            (1, false, vec![1, -1, 1]),
            (8, false, vec![0, 255, 128]),
            (4, true, vec![-8, 7, 0]),
            (12, true, vec![-2048, 2047, -1]),
            (32, true, vec![i32::MIN as i64, i32::MAX as i64]),
        ] {
            let e = encode_elements(&vals, bits, signed).unwrap();
            assert_eq!(e.len(), vals.len() * element_bytes(bits));
            assert_eq!(decode_elements(&e, bits, signed).unwrap(), vals);
        }
        assert_eq!(encode_elements(&[256], 8, false), None);
        assert_eq!(encode_elements(&[0], 1, false), None);
        assert_eq!(encode_elements(&[8], 4, true), None);
    }
}
