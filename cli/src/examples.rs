//! The Examples section of every command's `--help`: the commands a person
//! types most, in one table, put on the clap tree at start.

/// (command path, examples). Every command has an entry; a test checks it.
pub const EXAMPLES: &[(&[&str], &str)] = &[
    (&["init"], "authsome init\n  authsome init --key-backend file      # no keychain (servers, CI)"),
    (&["login"], "authsome login openai                  # an API key, asked for without echo\n  echo \"$KEY\" | authsome login openai --stdin\n  authsome login github                  # OAuth in the browser\n  authsome login github --flow device_code\n  authsome login github --connection work --force"),
    (&["list"], "authsome list\n  authsome list --json"),
    (&["get"], "authsome get github\n  authsome get github --field status\n  authsome get openai --field api_key --show-secret"),
    (&["export"], "eval \"$(authsome export openai --format shell)\"\n  authsome export --all --format json"),
    (&["run"], "authsome run -- claude\n  authsome run --allow github --read-only -- agent\n  authsome run --ask -- ./script.sh\n  authsome run --egress proxy --only-providers -- agent"),
    (&["runs"], "authsome runs\n  authsome runs --json"),
    (&["approve"], "authsome approve run-Xc3k9PqLm2Ve github\n  authsome approve --once run-Xc3k9PqLm2Ve github\n  authsome approve --for 1h run-Xc3k9PqLm2Ve github"),
    (&["deny"], "authsome deny run-Xc3k9PqLm2Ve slack"),
    (&["grants"], "authsome grants\n  authsome grants revoke grant-Q2xW9e"),
    (&["grants", "revoke"], "authsome grants revoke grant-Q2xW9e"),
    (&["inspect"], "authsome inspect github\n  authsome inspect github --json"),
    (&["revoke"], "authsome revoke github\n  authsome revoke github --connection work"),
    (&["remove"], "authsome remove github"),
    (&["register"], "authsome register ./acme.json\n  authsome register ./acme.json --force"),
    (&["log"], "authsome log\n  authsome log -n 100 --json\n  authsome log --run run-Xc3k9PqLm2Ve"),
    (&["doctor"], "authsome doctor\n  authsome doctor --json"),
    (&["import"], "authsome import --dry-run\n  authsome import\n  authsome import --from ~/old-project/.env --force"),
    (&["backup"], "authsome backup ~/authsome.age\n  pass show authsome-backup | authsome backup /mnt/usb/authsome.age --stdin"),
    (&["restore"], "authsome restore ~/authsome.age\n  authsome restore ~/authsome.age --force"),
    (&["rekey"], "authsome rekey\n  authsome doctor          # shows when the key was last rotated"),
    (&["status"], "authsome status\n  authsome status --json || echo \"a connection needs a login\""),
    (&["open"], "authsome open"),
    (&["tray"], "authsome tray autostart on\n  authsome tray autostart off"),
    (&["tray", "autostart"], "authsome tray autostart on\n  authsome tray autostart"),
    (&["completions"], "authsome completions bash > ~/.local/share/bash-completion/completions/authsome\n  authsome completions fish > ~/.config/fish/completions/authsome.fish"),
    (&["events"], "authsome events\n  authsome events | jq 'select(.type == \"connection_status\")'"),
    (&["mcp"], "authsome mcp add tracker https://mcp.example.com/mcp\n  authsome mcp config tracker --for claude-code"),
    (&["mcp", "add"], "authsome mcp add tracker https://mcp.example.com/mcp\n  authsome mcp add tracker https://mcp.example.com/mcp --client-id ID --stdin"),
    (&["mcp", "list"], "authsome mcp list"),
    (&["mcp", "config"], "authsome mcp config tracker\n  authsome mcp config tracker --for codex"),
    (&["mcp", "connect"], "authsome mcp connect tracker          # what an MCP host runs"),
    (&["profile"], "authsome profile list\n  authsome profile create work\n  authsome profile use work"),
    (&["profile", "list"], "authsome profile list"),
    (&["profile", "create"], "authsome profile create work"),
    (&["profile", "use"], "authsome profile use work"),
    (&["daemon"], "authsome daemon status\n  authsome daemon stop"),
    (&["daemon", "serve"], "authsome daemon serve                  # in the foreground, e.g. under systemd"),
    (&["daemon", "start"], "authsome daemon start"),
    (&["daemon", "stop"], "authsome daemon stop"),
    (&["daemon", "status"], "authsome daemon status --json"),
];

fn with_examples(cmd: clap::Command, path: &[&str], text: &'static str) -> clap::Command {
    match path {
        [] => cmd.after_help(format!("Examples:\n  {text}")),
        [first, rest @ ..] => {
            let (first, rest) = (first.to_string(), rest.to_vec());
            cmd.mut_subcommand(first, move |c| with_examples(c, &rest, text))
        }
    }
}

/// The command tree with every Examples section.
pub fn command(mut cmd: clap::Command) -> clap::Command {
    for (path, text) in EXAMPLES {
        cmd = with_examples(cmd, path, text);
    }
    cmd
}

#[cfg(test)]
mod tests {
    fn check(cmd: &clap::Command, path: &mut Vec<String>) {
        for sub in cmd.get_subcommands() {
            if sub.get_name() == "help" {
                continue;
            }
            path.push(sub.get_name().to_string());
            let help = sub
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(
                help.starts_with("Examples:\n  authsome ") || help.starts_with("Examples:\n  eval"),
                "`authsome {}` has no Examples section",
                path.join(" ")
            );
            check(sub, path);
            path.pop();
        }
    }

    #[test]
    fn every_command_has_examples() {
        let cmd = super::command(<crate::Cli as clap::CommandFactory>::command());
        let mut path = Vec::new();
        check(&cmd, &mut path);
    }
}
