//! Decrypt (and encrypt) throughput of the knet crypto on the knet-crypto captures:
//! `cargo run --release -p totem-knet --example crypto_bench [SECONDS]`. Each capture's
//! knet datagrams are decrypted over and over for SECONDS (default 1); MB are 10^6 bytes
//! of datagram (what arrives on the wire, UDP payload).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    println!(
        "{:<36} {:>7} {:>10} {:>12} {:>9} {:>12} {:>9}",
        "capture", "pkts", "avg bytes", "decrypt p/s", "MB/s", "encrypt p/s", "MB/s"
    );
    for c in &common::CAPTURES {
        let crypto = c.crypto();
        let datagrams = c.datagrams();
        let bytes: usize = datagrams.iter().map(|d| d.payload.len()).sum();
        let plains: Vec<Vec<u8>> = datagrams
            .iter()
            .map(|d| crypto.decrypt(&d.payload).expect("verifies"))
            .collect();
        let run = |f: &dyn Fn() -> usize| {
            let start = Instant::now();
            let (mut rounds, mut sink) = (0u64, 0usize);
            while start.elapsed() < Duration::from_secs_f64(seconds) {
                sink = sink.wrapping_add(f());
                rounds += 1;
            }
            std::hint::black_box(sink);
            let s = start.elapsed().as_secs_f64();
            let pkts = rounds as f64 * datagrams.len() as f64 / s;
            (pkts, rounds as f64 * bytes as f64 / s / 1e6)
        };
        let (dp, dm) = run(&|| {
            datagrams
                .iter()
                .map(|d| crypto.decrypt(&d.payload).map_or(0, |p| p.len()))
                .sum()
        });
        let salt = [0x11; 16];
        let (ep, em) = run(&|| {
            plains
                .iter()
                .map(|p| crypto.encrypt(p, &salt).map_or(0, |w| w.len()))
                .sum()
        });
        println!(
            "{:<36} {:>7} {:>10.0} {:>12.0} {:>9.1} {:>12.0} {:>9.1}",
            c.name,
            datagrams.len(),
            bytes as f64 / datagrams.len() as f64,
            dp,
            dm,
            ep,
            em
        );
    }
}
