//! `totem-conform`: see `totem-conform --help` and conformance/README.md.

fn main() {
    std::process::exit(totem_conformance::cli::main());
}
