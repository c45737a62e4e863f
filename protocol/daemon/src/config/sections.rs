//! The `logging`, `quorum`, `system` and `uidgid` sections (`exec/logconfig.c`,
//! `exec/coroparse.c::main_config_parser_cb`, votequorum.5).

use std::path::PathBuf;

use super::reader::{join, Reader, Result};
use super::{Logging, Priority, Quorum, System, Timestamp, UidGid};
use crate::conf_parse::Section;

pub(super) fn read_logging(r: &mut Reader<'_>, s: &Section, l: &mut Logging) -> Result<()> {
    const P: &str = "logging";
    for item in &s.items {
        match item.key.as_str() {
            "to_stderr" => l.to_stderr = r.on_off(P, item)?,
            "to_logfile" | "to_file" => l.to_logfile = r.on_off(P, item)?,
            "to_syslog" => {
                if r.on_off(P, item)? {
                    r.ignored(P, item, "totemd logs to stderr and the logfile only");
                }
            }
            "logfile" => l.logfile = Some(PathBuf::from(&item.value)),
            "logfile_priority" => {
                l.logfile_priority = priority(&item.value).ok_or_else(|| {
                    r.error(
                        "logging.logfile_priority",
                        item.line,
                        "unknown logfile priority specified",
                    )
                })?;
            }
            "debug" => {
                l.debug = match item.value.as_str() {
                    "on" | "trace" => true,
                    "off" => false,
                    _ => {
                        return Err(r.error("logging.debug", item.line, "unknown value for debug"))
                    }
                }
            }
            "timestamp" => {
                l.timestamp = match item.value.as_str() {
                    "on" => Timestamp::On,
                    "hires" => Timestamp::Hires,
                    "off" => Timestamp::Off,
                    _ => {
                        return Err(r.error(
                            "logging.timestamp",
                            item.line,
                            "unknown value for timestamp",
                        ))
                    }
                }
            }
            "fileline" | "function_name" => {
                if r.on_off(P, item)? {
                    r.ignored(P, item, "totemd does not print source locations");
                }
            }
            "syslog_facility" | "syslog_priority" | "syslog_level" | "blackbox" => {
                r.ignored(P, item, "no syslog or blackbox in totemd")
            }
            _ => r.unknown_key(P, item),
        }
    }
    if l.to_logfile && l.logfile.is_none() {
        r.warn(
            "logging.logfile",
            s.line,
            "to_logfile is on but no logfile is set: nothing is written to a file",
        );
    }
    for sub in &s.sections {
        match sub.name.as_str() {
            "logger_subsys" => read_logger_subsys(r, sub, l)?,
            "logging_daemon" => r.warn("logging.logging_daemon", sub.line, "ignored"),
            _ => r.unknown_section(P, sub),
        }
    }
    Ok(())
}

fn read_logger_subsys(r: &mut Reader<'_>, s: &Section, l: &mut Logging) -> Result<()> {
    const P: &str = "logging.logger_subsys";
    let mut subsys = None;
    let mut debug = false;
    for item in &s.items {
        match item.key.as_str() {
            "subsys" => subsys = Some(item.value.clone()),
            "debug" => debug = matches!(item.value.as_str(), "on" | "trace"),
            "to_stderr" | "to_logfile" | "to_syslog" | "logfile" | "logfile_priority"
            | "syslog_facility" | "syslog_priority" | "fileline" | "function_name"
            | "timestamp" => r.ignored(P, item, "per-subsystem destinations are not implemented"),
            _ => r.unknown_key(P, item),
        }
    }
    let Some(subsys) = subsys else {
        return Err(r.error(P, s.line, "No subsys key in logger_subsys directive"));
    };
    if debug {
        l.debug_subsys.push(subsys);
    }
    Ok(())
}

fn priority(name: &str) -> Option<Priority> {
    Some(match name {
        "alert" | "crit" | "emerg" | "err" | "error" => Priority::Error,
        "warning" => Priority::Warning,
        "notice" => Priority::Notice,
        "info" => Priority::Info,
        "debug" | "trace" => Priority::Debug,
        _ => return None,
    })
}

pub(super) fn read_quorum(r: &mut Reader<'_>, s: &Section, q: &mut Quorum) -> Result<()> {
    const P: &str = "quorum";
    for item in &s.items {
        match item.key.as_str() {
            "provider" => {
                if item.value != "corosync_votequorum" {
                    return Err(r.error(
                        "quorum.provider",
                        item.line,
                        format!("Quorum provider: {} failed to initialize.", item.value),
                    ));
                }
                q.provider = Some(item.value.clone());
            }
            "expected_votes" => q.expected_votes = Some(r.u32(P, item)?),
            "two_node" => q.two_node = r.uint(P, item, u64::from(u8::MAX))? != 0,
            "wait_for_all" => q.wait_for_all = Some(r.uint(P, item, u64::from(u8::MAX))? != 0),
            "last_man_standing"
            | "auto_tie_breaker"
            | "allow_downscale"
            | "expected_votes_tracking" => {
                if r.uint(P, item, u64::from(u8::MAX))? != 0 {
                    r.ignored(
                        P,
                        item,
                        "totemd reports quorum in its log only, without this policy",
                    );
                }
            }
            "last_man_standing_window" | "leaving_timeout" | "votes" => {
                r.u32(P, item)?;
                r.ignored(P, item, "totemd reports quorum in its log only");
            }
            "auto_tie_breaker_node" => r.ignored(P, item, "totemd reports quorum in its log only"),
            _ => r.unknown_key(P, item),
        }
    }
    for sub in &s.sections {
        if sub.name == "device" {
            return Err(r.error(
                "quorum.device",
                sub.line,
                "a quorum device (qdevice) is not supported by totemd",
            ));
        }
        r.unknown_section(P, sub);
    }
    if q.provider.is_none() {
        r.warn(
            "quorum.provider",
            s.line,
            "not set: corosync would run without votequorum; totemd still sends its NODEINFO",
        );
    }
    Ok(())
}

pub(super) fn read_system(r: &mut Reader<'_>, s: &Section, sys: &mut System) -> Result<()> {
    const P: &str = "system";
    for item in &s.items {
        match item.key.as_str() {
            "state_dir" => sys.state_dir = PathBuf::from(&item.value),
            "qb_ipc_type" => {
                let v = r.choice(
                    P,
                    item,
                    &["native", "shm", "socket"],
                    "Invalid system.qb_ipc_type",
                )?;
                sys.qb_ipc_type = Some(v.to_owned());
            }
            // main.c: anything but "yes" turns it off.
            "sched_rr" => {
                sys.sched_rr =
                    r.choice(P, item, &["yes", "no"], "Invalid system.sched_rr value")? == "yes";
            }
            "move_to_root_cgroup" => {
                r.choice(
                    P,
                    item,
                    &["yes", "no", "auto"],
                    "Invalid system.move_to_root_cgroup",
                )?;
                r.ignored(P, item, "totemd does not move itself between cgroups");
            }
            "allow_knet_handle_fallback" => {
                r.choice(
                    P,
                    item,
                    &["yes", "no"],
                    "Invalid system.allow_knet_handle_fallback",
                )?;
                r.ignored(P, item, "knet only");
            }
            "priority" => r.ignored(P, item, "totemd does not change its scheduling priority"),
            _ => r.unknown_key(P, item),
        }
    }
    for sub in &s.sections {
        r.unknown_section(P, sub);
    }
    Ok(())
}

pub(super) fn read_uidgid(r: &Reader<'_>, s: &Section, u: &mut UidGid) -> Result<()> {
    for item in &s.items {
        match item.key.as_str() {
            "uid" => u.uids.push(item.value.clone()),
            "gid" => u.gids.push(item.value.clone()),
            _ => {
                return Err(r.error(
                    &join("uidgid", &item.key),
                    item.line,
                    "uidgid: Only uid and gid are allowed items",
                ))
            }
        }
    }
    Ok(())
}
