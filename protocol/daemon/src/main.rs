//! `totemd -f -c /etc/corosync/corosync.conf`: see `totemd::cli`.

use clap::Parser;

fn main() {
    let args = totemd::cli::Args::parse();
    let code = match totemd::cli::start(&args) {
        Ok(None) => 0,
        Ok(Some(mut daemon)) => daemon.run(),
        Err(e) => {
            // As corosync does before its logging is up: the message on stderr.
            eprintln!("{}", e.message);
            e.code
        }
    };
    std::process::exit(code);
}
