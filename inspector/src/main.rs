use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use clap::Parser;
use totem_inspect::cli::{Cli, Config};
use totem_inspect::EXIT_BAD_INPUT;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let totem_inspect::cli::Command::RecordIpc(args) = &cli.command {
        return totem_inspect::ipc::record::run(args, &mut io::stderr().lock());
    }
    let config = match Config::from_cli(cli) {
        Ok(c) => c,
        Err(message) => {
            eprintln!("totem-inspect: {message}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let stdout = io::stdout().lock();
    let mut out = BufWriter::with_capacity(1 << 16, stdout);
    let mut err = io::stderr().lock();
    match totem_inspect::run(&config, &mut out, &mut err) {
        Ok(code) => code,
        // A closed pipe (`| head`) is a normal way to stop reading.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(err, "totem-inspect: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}
