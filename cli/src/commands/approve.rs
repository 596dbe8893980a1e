//! `authsome approve RUN_ID PROVIDER[=CONNECTION]` and `authsome deny ...`:
//! answer a run's held request from another terminal. An approval holds for
//! the rest of the run, for the held request only (`--once`), or for the
//! command, in later runs too, for a while (`--for 1h`, a lease). A denial
//! holds for the rest of the run.

use authsome_daemon::wire::{ApprovalScope, GrantView};

use crate::client::enc;
use crate::error::{CliError, CliResult};
use crate::output;
use crate::Ctx;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run (`authsome runs` lists them).
    run: String,
    /// The provider whose requests wait.
    #[arg(value_name = "PROVIDER[=CONNECTION]", add = crate::complete::providers())]
    provider: String,
    /// Let only the held request go; the next one asks again.
    #[arg(long, conflicts_with = "lease")]
    once: bool,
    /// Allow this command for a while, in this run and later ones: a lease
    /// (`30m`, `1h`, `8h`; at most `24h`). `authsome grants` lists leases.
    #[arg(long = "for", value_name = "DURATION", id = "lease")]
    lease: Option<String>,
}

/// Seconds in `30m`, `1h`, `90s`, `2h30m`.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:?} is not a duration (for example 30m, 1h, 8h)");
    let mut total = 0u64;
    let mut digits = String::new();
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: u64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        total += n * match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return Err(bad()),
        };
    }
    if !digits.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(total)
}

/// Runs `approve` (`allow`) or `deny`.
pub fn run(ctx: &Ctx, args: Args, allow: bool) -> CliResult {
    if !allow && (args.once || args.lease.is_some()) {
        return Err(CliError::Usage(
            "a denial holds for the run; --once and --for are for approve".into(),
        ));
    }
    let (scope, seconds) = match (&args.lease, args.once) {
        (Some(d), _) => (
            ApprovalScope::Lease,
            Some(parse_duration(d).map_err(CliError::Usage)?),
        ),
        (None, true) => (ApprovalScope::Once, None),
        (None, false) => (ApprovalScope::Run, None),
    };
    let verb = if allow { "approve" } else { "deny" };
    let answer: serde_json::Value = ctx.client()?.post(
        &format!("/v1/runs/{}/{verb}", enc(&args.run)),
        &serde_json::json!({ "provider": args.provider, "scope": scope, "seconds": seconds }),
    )?;
    if ctx.json {
        return output::json(&answer);
    }
    let what = match (allow, scope) {
        (false, _) => format!("Denied {} for run {}", args.provider, args.run),
        (true, ApprovalScope::Once) => {
            format!("Allowed {} once for run {}", args.provider, args.run)
        }
        (true, ApprovalScope::Run) => {
            format!("Allowed {} for run {}", args.provider, args.run)
        }
        (true, ApprovalScope::Lease) => match serde_json::from_value::<GrantView>(answer) {
            Ok(g) => format!(
                "Allowed {} for command {:?} until {} (lease {}; `authsome grants revoke {}` ends it)",
                args.provider,
                g.command,
                output::when(Some(g.expires_at)),
                g.id,
                g.id
            ),
            Err(_) => format!("Allowed {} for run {}", args.provider, args.run),
        },
    };
    output::line(&what)
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("1h"), Ok(3600));
        assert_eq!(parse_duration("30m"), Ok(1800));
        assert_eq!(parse_duration("2h30m"), Ok(9000));
        assert_eq!(parse_duration("90s"), Ok(90));
        for bad in ["", "1", "h", "1x", "0m", "-1h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
