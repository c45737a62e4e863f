//! `totem-inspect record-ipc -o FILE -- COMMAND ARGS...`: runs COMMAND with the
//! `totem-ipc-record` preload library, which appends every libqb IPC message of COMMAND
//! (and of the processes it starts) to FILE, and exits with COMMAND's status.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::Args;

/// The preload library's file name (the cdylib of `inspector/ipc-record`).
pub const PRELOAD_NAME: &str = "libtotem_ipc_record.so";
/// Overrides where the preload library is looked for.
pub const PRELOAD_ENV: &str = "TOTEM_IPC_RECORD_LIB";

/// `record-ipc` arguments.
#[derive(Debug, Args)]
pub struct RecordIpcArgs {
    /// The pcapng file to write (replaced if it exists).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
    /// The preload library (default: $TOTEM_IPC_RECORD_LIB, else libtotem_ipc_record.so
    /// beside this program or one directory up).
    #[arg(long, value_name = "LIB")]
    pub preload: Option<PathBuf>,
    /// The command to run, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

fn find_preload(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(format!("preload library {} not found", p.display()))
        };
    }
    if let Some(p) = std::env::var_os(PRELOAD_ENV) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("{PRELOAD_ENV}={} not found", p.display()))
        };
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    // target/<profile>/totem-inspect, or target/<profile>/deps/<test binary>.
    for candidate in [dir.join(PRELOAD_NAME), dir.join("..").join(PRELOAD_NAME)] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(format!(
        "{PRELOAD_NAME} not found beside {} (build it: cargo build -p totem-ipc-record; or pass --preload)",
        exe.display()
    ))
}

/// Runs the command under the recorder. Errors before the command starts exit with 2.
pub fn run(args: &RecordIpcArgs, err: &mut dyn Write) -> ExitCode {
    match run_inner(args) {
        Ok(code) => code,
        Err(message) => {
            let _ = writeln!(err, "totem-inspect: record-ipc: {message}");
            ExitCode::from(crate::EXIT_BAD_INPUT)
        }
    }
}

fn run_inner(args: &RecordIpcArgs) -> Result<ExitCode, String> {
    let preload = find_preload(args.preload.as_deref())?;
    let preload =
        std::fs::canonicalize(&preload).map_err(|e| format!("{}: {e}", preload.display()))?;
    // The file starts with the pcapng headers, so that it is a valid capture even if the
    // command makes no IPC; every process then only appends packet blocks.
    std::fs::write(&args.output, totem_wire::ipc::record::pcapng_file_header())
        .map_err(|e| format!("{}: {e}", args.output.display()))?;
    // Absolute, because the command may change directory.
    let output = std::fs::canonicalize(&args.output)
        .map_err(|e| format!("{}: {e}", args.output.display()))?;
    let (program, rest) = args
        .command
        .split_first()
        .ok_or_else(|| "no command given".to_string())?;
    let mut ld_preload = preload.into_os_string();
    if let Some(existing) = std::env::var_os("LD_PRELOAD").filter(|v| !v.is_empty()) {
        ld_preload.push(":");
        ld_preload.push(existing);
    }
    let status = Command::new(program)
        .args(rest)
        .env("LD_PRELOAD", ld_preload)
        .env(RECORD_OUTPUT_ENV, &output)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", Path::new(program).display()))?;
    let code = match (status.code(), status.signal()) {
        (Some(code), _) => code,
        // The shell's convention for a command killed by a signal.
        (None, Some(signal)) => 128 + signal,
        (None, None) => 1,
    };
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// The variable naming the output, read by the preload library's constructor
/// (`totem_ipc_record::OUTPUT_ENV`; the inspector does not link that cdylib).
pub const RECORD_OUTPUT_ENV: &str = "TOTEM_IPC_RECORD_OUT";
