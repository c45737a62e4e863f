//! One integration-test binary (ripgrep's layout): snapshots of every view for every
//! capture in fixtures/pcap, and the CLI's behaviour on bad input.

mod cli;
mod evs;
mod ipc;
mod knet_crypto;
mod layers;
mod snapshots;
